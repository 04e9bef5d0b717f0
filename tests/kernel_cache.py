"""The kernel's page-cache counts, asked directly, for comparisons in tests.

Deliberately independent of vmainspect's own code: a raw cachestat(2) call
(x86-64/arm64/... number 451) through ctypes, and the system Dirty figure
read from /proc/meminfo the simplest way.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)


class _Range(ctypes.Structure):
    _fields_ = (("off", ctypes.c_uint64), ("len", ctypes.c_uint64))


class _Stat(ctypes.Structure):
    _fields_ = tuple((n, ctypes.c_uint64) for n in ("cache", "dirty", "writeback", "evicted", "recent"))


def kernel_cachestat(path: str, off: int = 0, length: int = 0) -> dict[str, int]:
    """{cache, dirty, writeback, evicted, recent} pages of ``path`` (OSError on failure)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        r, s = _Range(off, length), _Stat()
        if _libc.syscall(451, ctypes.c_uint(fd), ctypes.byref(r), ctypes.byref(s), ctypes.c_uint(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return {n: getattr(s, n) for n, _ in _Stat._fields_}
    finally:
        os.close(fd)


def have_cachestat() -> bool:
    try:
        kernel_cachestat("/dev/null")
    except OSError as e:
        return e.errno != 38  # ENOSYS
    return True


def write_file(path: str, pages: int, *, drop_cache: bool = False) -> None:
    """A file of ``pages`` pages, written back (fsync); with ``drop_cache`` then evicted
    from the page cache (POSIX_FADV_DONTNEED), so that only later reads cache it."""
    with open(path, "wb") as f:
        f.write(b"." * pages * os.sysconf("SC_PAGE_SIZE"))
        f.flush()
        os.fsync(f.fileno())
        if drop_cache:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
