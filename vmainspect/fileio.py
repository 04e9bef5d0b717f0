"""Writing user files safely: no redirection through other users' links, atomic replacement.

vmainspect often runs as root and writes where it is told, /tmp included.
The rules (docs/security.md, "Output files"):

- The path is resolved here, one component at a time, relative to directory
  file descriptors opened with O_NOFOLLOW, never with realpath(): a symbolic
  link is followed only if it is *trusted*, as the kernel's
  fs.protected_symlinks decides (which this code does not rely on being on):
  it is not in a world-writable directory, or it belongs to us or to the
  directory's owner. A link planted by another user in /tmp is refused
  (OutputError), whether it is the file name or a folder on the way.
- In a world-writable directory, an existing file (or FIFO) that belongs to
  someone else is not replaced or written (fs.protected_regular's rule): its
  owner could read what we write, or have chosen the name for us.
- A regular file is written to a new temporary file beside it (O_CREAT|O_EXCL|
  O_NOFOLLOW, mode 0600 while being written), fsynced, given its final mode
  (the old file's, or 0666 minus the umask) and renamed over the name: a crash
  leaves the old file intact, and a rename never follows a link.
- A trusted link is written through: its target is replaced and the link stays.
- An existing non-regular file (/dev/null, a FIFO, a terminal) is written
  directly (opened with O_NOFOLLOW), never replaced.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import IO

from .errors import OutputError

MAX_LINKS = 40  # as the kernel's MAXSYMLINKS: a loop is an error, not a hang


def _umask() -> int:
    """This process's umask, read without os.umask() (which would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _untrusted(dir_st: os.stat_result, st: os.stat_result) -> bool:
    """True for an entry another user could have planted: in a world-writable
    directory, owned neither by us nor by the directory's owner."""
    return bool(dir_st.st_mode & stat.S_IWOTH) and st.st_uid not in (os.geteuid(), dir_st.st_uid)


class _Target:
    """Where a path leads: a directory fd and a final name in it (followed through trusted links)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dfd = -1
        self.name = ""
        self.st: os.stat_result | None = None  # the final entry (not a link), None if absent
        self.through_link = False  # the name is a trusted link to a special file (/dev/stdout)
        self._links = 0
        self._resolve(path)

    def close(self) -> None:
        if self.dfd >= 0:
            os.close(self.dfd)
            self.dfd = -1

    def _refuse(self, why: str) -> OutputError:
        self.close()
        return OutputError(f"cannot write {self.path}: {why}")

    def _check_link(self, dfd: int, name: str, st: os.stat_result) -> None:
        """Refuse (closing ``dfd``) a link we may not follow."""
        self._links += 1
        if self._links > MAX_LINKS:
            os.close(dfd)
            raise self._refuse("Too many levels of symbolic links")
        if _untrusted(os.fstat(dfd), st):
            os.close(dfd)
            raise self._refuse(
                f"refusing to follow the symbolic link {name!r}, owned by uid {st.st_uid} "
                "in a world-writable directory (another user could have planted it)"
            )

    def _follow(self, dfd: int, name: str, st: os.stat_result) -> str:
        """The text of the link ``name`` in ``dfd``, if we may follow it."""
        self._check_link(dfd, name, st)
        try:
            return os.readlink(name, dir_fd=dfd)
        except OSError:
            os.close(dfd)
            raise

    def _open_dir(self, path: str) -> int:
        """An O_PATH fd of the directory ``path``, walked one component at a time."""
        flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        dfd = os.open("/" if path.startswith("/") else ".", flags)
        parts = [p for p in path.split("/") if p and p != "."]
        while parts:
            part = parts.pop(0)
            try:
                st = os.stat(part, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    link = self._follow(dfd, part, st)
                    parts = [p for p in link.split("/") if p and p != "."] + parts
                    if link.startswith("/"):
                        os.close(dfd)
                        dfd = os.open("/", flags)
                    continue
                nfd = os.open(part, flags, dir_fd=dfd)
            except OSError:
                os.close(dfd)
                raise
            os.close(dfd)
            dfd = nfd
        return dfd

    def _resolve(self, path: str) -> None:
        while True:
            folder, name = os.path.split(path)
            if name in ("", ".", ".."):
                raise OutputError(f"cannot write {self.path}: is a directory")
            self.name = name
            try:
                self.dfd = self._open_dir(folder or ".")
                st = os.stat(name, dir_fd=self.dfd, follow_symlinks=False)
            except FileNotFoundError:
                if self.dfd < 0:
                    raise self._refuse("No such file or directory") from None
                return  # a new file in an existing folder
            except OSError as e:
                raise self._refuse(e.strerror or str(e)) from None
            if not stat.S_ISLNK(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    raise self._refuse("is a directory")
                if _untrusted(os.fstat(self.dfd), st):
                    raise self._refuse(
                        f"refusing to write a file owned by uid {st.st_uid} in a world-writable "
                        "directory (another user could read it or have chosen it)"
                    )
                self.st = st
                return
            try:
                final = os.stat(name, dir_fd=self.dfd)
            except OSError:
                final = None
            if final is not None and not (stat.S_ISREG(final.st_mode) or stat.S_ISDIR(final.st_mode)):
                # a link to a pipe, terminal or device (/dev/stdout -> /proc/self/fd/1 -> pipe:[N]):
                # written through the kernel's own link, if we may follow it; nothing is created
                self._check_link(self.dfd, name, st)
                self.st, self.through_link = final, True
                return
            dfd, self.dfd = self.dfd, -1
            link = self._follow(dfd, name, st)
            if not link.startswith("/"):
                # relative to the link's folder: continue from there, by its path
                link = os.path.join(folder or ".", link)
            os.close(dfd)
            path = link

    def fsync_dir(self) -> None:
        try:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.dfd)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


# statfs f_type of the kernel's own filesystems, whose files stat as regular
# files but cannot be created or replaced (linux/magic.h).
_PSEUDO_FS = {
    0x9FA0: "procfs",
    0x62656572: "sysfs",
    0x63677270: "cgroup2",
    0x27E0EB: "cgroup",
    0x64626720: "debugfs",
    0x74726163: "tracefs",
    0x73636673: "securityfs",
    0x62656570: "configfs",
    0xCAFE4A11: "bpf",
}


def _pseudo_fs(folder: str) -> str | None:
    """The name of the kernel filesystem ``folder`` is on (procfs, sysfs...), or None."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = ctypes.create_string_buffer(512)  # struct statfs; f_type is its first field, a long
    if libc.statfs(os.fsencode(folder), buf) != 0:
        return None
    return _PSEUDO_FS.get(ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF)


def _create_temp(dfd: int, name: str) -> tuple[int, str]:
    """A new, uniquely named file beside ``name`` in ``dfd``: O_EXCL|O_NOFOLLOW, mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = f".vmainspect-{os.urandom(6).hex()}.tmp"
        try:
            return os.open(tmp, flags, 0o600, dir_fd=dfd), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name}")


class AtomicFile:
    """A file being written under a temporary name beside its target, renamed over it by commit().

    An existing non-regular target (``special``: /dev/null, a FIFO) is opened
    and written directly instead; commit() then only flushes and closes.
    """

    def __init__(self, path: str, *, binary: bool = True) -> None:
        self.path = path
        self._t = _Target(path)
        st = self._t.st
        self.special = st is not None and not stat.S_ISREG(st.st_mode)
        self.exists = st is not None
        self._tmp: str | None = None
        try:
            if self.special:
                nofollow = 0 if self._t.through_link else os.O_NOFOLLOW
                fd = os.open(self._t.name, os.O_WRONLY | nofollow | os.O_CLOEXEC, dir_fd=self._t.dfd)
            else:
                fd, self._tmp = _create_temp(self._t.dfd, self._t.name)
        except OSError as e:
            fs = _pseudo_fs(f"/proc/self/fd/{self._t.dfd}")
            self._t.close()
            if fs is not None:  # /proc/version looks like a regular file, but is the kernel's
                raise OutputError(f"cannot write {path}: not a regular file (a {fs} file)") from None
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        self.file: IO[bytes] = os.fdopen(fd, "wb")

    @property
    def temp_name(self) -> str | None:
        return self._tmp

    def commit(self) -> None:
        """fsync, set the final mode (and owner), rename over the target, fsync the folder."""
        t = self._t
        try:
            self.file.flush()
            if self._tmp is None:
                self.file.close()
                return
            os.fsync(self.file.fileno())
            st = t.st
            fd = self.file.fileno()
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:  # root replacing a user's file: keep its owner, as editors do
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:
                    pass
            self.file.close()
            os.replace(self._tmp, t.name, src_dir_fd=t.dfd, dst_dir_fd=t.dfd)
            self._tmp = None
            t.fsync_dir()
        except BaseException as e:
            self.discard()
            if isinstance(e, OSError):
                raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
            raise
        finally:
            t.close()

    def discard(self) -> None:
        """Close and remove the temporary file (the target is untouched)."""
        try:
            self.file.close()
        except Exception:  # cleanup after a failure: the failure is what gets reported
            pass
        if self._tmp is not None and self._t.dfd >= 0:
            try:
                os.unlink(self._tmp, dir_fd=self._t.dfd)
            except OSError:
                pass
            self._tmp = None
        self._t.close()


def create_new(path: str) -> IO[bytes] | None:
    """Create ``path`` (O_EXCL) for writing, by the rules above; None if the name exists."""
    t = _Target(path)
    try:
        if t.st is not None:
            raise FileExistsError
        fd = os.open(
            t.name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666,  # the kernel applies the umask
            dir_fd=t.dfd,
        )
    except FileExistsError:
        return None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        t.close()
    return os.fdopen(fd, "wb")


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically (by the rules above) and return the path written.

    ``-`` writes to stdout. Text that cannot be UTF-8 (lone surrogates) is
    written backslash-escaped (``\\udcff``), never a traceback. Raises
    OutputError (one line) on failure; the previous file is then untouched
    and no temporary file is left.
    """
    return write_bytes(path, text.encode("utf-8", "backslashreplace"))


def write_bytes(path: str, data: bytes | bytearray) -> str:
    """``write_text`` for text already encoded as UTF-8 (no second copy of a
    text that can be tens of MB)."""
    if path == "-":
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a replaced stdout (tests, embedding): text only
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()
        else:
            sys.stdout.flush()
            out.write(data)
            out.flush()
        return path
    f = AtomicFile(path)
    try:
        f.file.write(data)
    except BaseException as e:  # also Ctrl+C or an encoding error: never leave the temp file
        f.discard()
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    f.commit()
    return path
