"""The one place that touches /proc.

Every open and read of /proc goes through ``ProcReader``; OSError becomes a
domain error here and nowhere else: ``ProcessGone`` (no such process, it
exited mid-read) or ``AccessDenied`` (naming the missing privilege). The proc
root is passed in (tests may point it at a fixture tree), never global.
"""

from __future__ import annotations

import errno
import os

from ..errors import AccessDenied, ProcessGone

_GONE = (errno.ENOENT, errno.ESRCH)
_DENIED = (errno.EACCES, errno.EPERM)

# What the kernel wants before it lets us read each file (the fallback when
# ptrace_denied_reason cannot tell which check refused; yama's ptrace_scope
# applies to attaching, not to these reads: docs/kernel-notes.md).
_PTRACE_READ = "needs to be the process's user or root (ptrace read access: CAP_SYS_PTRACE)"
_ROOT_ONLY = "needs root (CAP_SYS_ADMIN)"
PRIVILEGE_FOR = {
    "maps": _PTRACE_READ,
    "smaps": _PTRACE_READ,
    "smaps_rollup": _PTRACE_READ,
    "pagemap": _PTRACE_READ,
    "environ": _PTRACE_READ,
    "exe": _PTRACE_READ,
    "clear_refs": "needs to be the process's user or root (the file is writable by its owner only)",
    "kpageflags": _ROOT_ONLY,
    "kpagecount": _ROOT_ONLY,
}


CAP_NAMES = (  # bit numbers of linux/capability.h
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
CAP_SYS_PTRACE = 19


def cap_names(mask: int) -> list[str]:
    """``CAP_*`` names of the bits set in ``mask`` (unknown bits as ``cap_N``)."""
    return [
        f"CAP_{CAP_NAMES[b]}" if b < len(CAP_NAMES) else f"cap_{b}"
        for b in range(mask.bit_length())
        if mask >> b & 1
    ]


def _status_fields(data: bytes) -> dict[str, list[str]]:
    out = {}
    for line in data.splitlines():
        key, _, rest = line.partition(b":")
        out[key.decode("ascii", "replace")] = rest.decode("ascii", "replace").split()
    return out


def ptrace_denied_reason(pid: int, proc_root: str = "/proc") -> str:
    """Why the kernel refused ptrace read access to ``pid`` (smaps, pagemap...), as far as can be told.

    The checks (kernel/ptrace.c ``__ptrace_may_access``, security/commoncap.c):
    the same uids and gids as the target, else CAP_SYS_PTRACE; a target that is
    not dumpable needs CAP_SYS_PTRACE; and the reader's effective capabilities
    must include all the target's permitted ones, else CAP_SYS_PTRACE. Beyond
    those, a security module may refuse. See docs/kernel-notes.md.
    """
    try:
        with open(f"{proc_root}/{pid}/status", "rb") as f:
            target = _status_fields(f.read())
        with open(f"{proc_root}/self/status", "rb") as f:
            me = _status_fields(f.read())
        t_uids = [int(x) for x in target["Uid"][:3]]
        t_gids = [int(x) for x in target["Gid"][:3]]
        t_prm = int(target["CapPrm"][0], 16)
        my_eff = int(me["CapEff"][0], 16)
        my_fsuid, my_fsgid = int(me["Uid"][3]), int(me["Gid"][3])
        owner = os.stat(f"{proc_root}/{pid}").st_uid
    except (OSError, KeyError, IndexError, ValueError):
        return _PTRACE_READ
    has_ptrace = bool(my_eff >> CAP_SYS_PTRACE & 1)
    same_ids = all(u == my_fsuid for u in t_uids) and all(g == my_fsgid for g in t_gids)
    if not same_ids and not has_ptrace:
        who = "root here lacks CAP_SYS_PTRACE (a container or sandbox dropped it)" if my_fsuid == 0 else ""
        return (
            f"needs to be the process's user (uid {t_uids[0]}) or root (ptrace read access: CAP_SYS_PTRACE)"
            + (f"; {who}" if who else "")
        )
    missing = t_prm & ~my_eff
    if missing and not has_ptrace:
        return (
            f"the process holds capabilities this one lacks ({', '.join(cap_names(missing))}); "
            "reading it needs them all, or CAP_SYS_PTRACE"
        )
    if owner == 0 and t_uids[0] != 0 and not has_ptrace:
        return (
            "the process is not dumpable (set-user-ID, file capabilities or prctl PR_SET_DUMPABLE 0): "
            "reading it needs CAP_SYS_PTRACE"
        )
    if has_ptrace and missing:
        return (
            f"the process holds {', '.join(cap_names(missing))}, which this one lacks, and the kernel "
            "refused CAP_SYS_PTRACE's override (a security module or sandbox policy)"
        )
    if has_ptrace:
        return (
            "refused although this process has CAP_SYS_PTRACE: a security module or sandbox policy "
            "forbids it, or the process belongs to another user namespace"
        )
    return _PTRACE_READ


def read_all_fd(fd: int) -> bytes:
    """Read an fd to EOF (the fd stays open).

    /proc files report size 0 and a seq_file read returns about one page per
    call whatever the buffer size, so a loop of large ``os.read`` calls would
    allocate and shrink a big buffer per 4 KiB. ``FileIO.readall`` reads into
    one growing buffer: about as fast as ``cat`` on a 15 MB smaps.
    """
    with open(fd, "rb", buffering=0, closefd=False) as f:
        return f.readall()


class ProcReader:
    """Reads one process's /proc files (and the global page files)."""

    def __init__(self, pid: int, proc_root: str = "/proc") -> None:
        self.pid = pid
        self.proc_root = proc_root
        self.base = f"{proc_root}/{pid}"

    # -- errors ---------------------------------------------------------
    def _error(self, e: OSError, name: str, *, global_file: bool = False) -> Exception:
        if e.errno in _DENIED:
            if global_file:
                return AccessDenied(None, name, PRIVILEGE_FOR.get(name, _ROOT_ONLY))
            why = PRIVILEGE_FOR.get(name, _PTRACE_READ)
            if why is _PTRACE_READ:
                why = ptrace_denied_reason(self.pid, self.proc_root)
            return AccessDenied(self.pid, name, why)
        if e.errno in _GONE and not global_file:
            return ProcessGone(self.pid)
        if global_file and e.errno == errno.ENOENT:
            return AccessDenied(
                None, f"{self.proc_root}/{name}", "the kernel does not provide it (CONFIG_PROC_PAGE_MONITOR)"
            )
        # a process that exits during a read can also surface as EINVAL/EIO
        if not global_file and not os.path.exists(self.base):
            return ProcessGone(self.pid)
        return e

    # -- per-process files ---------------------------------------------
    def path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def read(self, name: str) -> bytes:
        """The whole of /proc/PID/NAME."""
        try:
            fd = os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, name) from None
        try:
            return read_all_fd(fd)
        except OSError as e:
            raise self._error(e, name) from None
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` to /proc/PID/NAME in one write (e.g. clear_refs)."""
        try:
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, name) from None
        try:
            os.write(fd, data)
        except OSError as e:
            raise self._error(e, name) from None
        finally:
            os.close(fd)

    def open(self, name: str, *, what: str | None = None) -> int:
        """An fd on /proc/PID/NAME (for pread/ioctl); the caller closes it.

        ``what``: the file an error names, when NAME is opened on its behalf."""
        try:
            return os.open(self.path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, what or name) from None

    def readlink(self, name: str) -> str | None:
        """/proc/PID/NAME link target, or None if it cannot be read (kernel thread, no access)."""
        try:
            return os.readlink(self.path(name))
        except OSError as e:
            if e.errno in _GONE and not os.path.exists(self.base):
                raise ProcessGone(self.pid) from None
            return None

    def pread(self, fd: int, size: int, offset: int, name: str = "pagemap") -> bytes:
        try:
            return os.pread(fd, size, offset)
        except OSError as e:
            raise self._error(e, name) from None

    def read_some(self, fd: int, size: int, name: str) -> bytes:
        """One read(2) of at most ``size`` bytes from an fd ``open`` gave (seq_file: the first records)."""
        try:
            return os.read(fd, size)
        except OSError as e:
            raise self._error(e, name) from None

    def exists(self) -> bool:
        return os.path.exists(self.base)

    # -- global files (/proc/kpageflags, /proc/kpagecount) ---------------
    def open_global(self, name: str) -> int:
        try:
            return os.open(f"{self.proc_root}/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, name, global_file=True) from None

    def pread_global(self, fd: int, size: int, offset: int, name: str) -> bytes:
        try:
            return os.pread(fd, size, offset)
        except OSError as e:
            raise self._error(e, name, global_file=True) from None

    def read_global(self, name: str) -> bytes:
        fd = self.open_global(name)
        try:
            return read_all_fd(fd)
        except OSError as e:
            raise self._error(e, name, global_file=True) from None
        finally:
            os.close(fd)
