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

# What the kernel wants before it lets us read each file.
_PTRACE_READ = (
    "needs to be the process's user or root "
    "(ptrace read access: CAP_SYS_PTRACE; kernel.yama.ptrace_scope may forbid it)"
)
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
            return AccessDenied(
                None if global_file else self.pid, name, PRIVILEGE_FOR.get(name, _PTRACE_READ)
            )
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
