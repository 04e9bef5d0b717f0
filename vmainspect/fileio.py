"""Writing user files safely: temp file in the same folder, fsync, rename."""

from __future__ import annotations

import os
import stat
import sys

from .errors import OutputError


def _create_temp(folder: str) -> tuple[int, str]:
    """A new, uniquely named file in ``folder``, created with mode 0666 minus the
    umask (the kernel applies it: no process-wide os.umask() dance, which would
    race with other threads)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".vmainspect-{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


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


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically and return the path written.

    - ``-`` writes to stdout.
    - A path that exists and is not a regular file (``/dev/null``, a FIFO, a
      terminal) is written directly, never replaced.
    - A symlink is resolved first and its *target* is replaced atomically, so
      the link stays a link (like editors that "write through" links).
    - Otherwise a temporary file in the same folder is written, fsynced and
      renamed over ``path``; a crash mid-write leaves the old file intact.
    Text that cannot be UTF-8 (lone surrogates) is written backslash-escaped
    (``\\udcff``), never a traceback. Raises OutputError (one line) on failure;
    the previous file is then untouched and no temporary file is left.
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
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {path}: is a directory")
        try:
            with open(target, "wb") as f:
                f.write(data)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        return path
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = _create_temp(folder)
    except OSError as e:
        fs = _pseudo_fs(folder)
        if fs is not None:  # /proc/version looks like a regular file, but is the kernel's
            raise OutputError(f"cannot write {path}: not a regular file (a {fs} file)") from None
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:  # root replacing a user's file: keep its owner, as editors do
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass
        os.replace(tmp, target)
    except BaseException as e:  # also Ctrl+C or an encoding error: never leave the temp file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path
