"""Page-cache state of a file: cachestat(2), with a mincore(2) fallback.

cachestat (Linux 6.5+) counts, for a byte range of an open file, the pages in
the page cache, how many of them are dirty or under writeback, and how many
were evicted (recently or not). No root is needed: the kernel allows it on a
file the caller owns or could open for writing (it answers EPERM otherwise,
like mincore; see docs/kernel-notes.md, "cachestat: who may ask").

On a kernel without it (ENOSYS) the fallback maps the file read-only without
touching it and asks mincore which pages are resident: residency only,
everything else unknown (None). mincore has the same owner-or-writer rule
and, for other files, reports only pages mapped in the caller's own page
tables (none: the mapping is never touched), so a fallback answer for such a
file would be a false zero: it is refused with EPERM instead.

Stdlib only (ctypes). Functions take an open fd; opening the right file is
the caller's job (``procfs/mapped.py`` for another process's mappings).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import platform
import stat
import threading
from dataclasses import dataclass

PAGE = mmap.PAGESIZE

# __NR_cachestat per architecture (the unified syscall table gives 451 to
# every architecture that takes its numbers from it; alpha and the MIPS ABIs
# add their own offsets). An architecture not listed uses the fallback.
_SYSCALL_NR = {
    "x86_64": 451,
    "i386": 451,
    "i686": 451,
    "aarch64": 451,
    "arm64": 451,
    "armv7l": 451,
    "armv8l": 451,
    "riscv64": 451,
    "ppc64le": 451,
    "ppc64": 451,
    "s390x": 451,
    "loongarch64": 451,
    "alpha": 561,
}

SOURCE_CACHESTAT = "cachestat"
SOURCE_MINCORE = "mincore"


class _Range(ctypes.Structure):
    # struct cachestat_range { __u64 off; __u64 len; };  len 0: to the end of the file
    _fields_ = (("off", ctypes.c_uint64), ("len", ctypes.c_uint64))


class _Stat(ctypes.Structure):
    # struct cachestat { __u64 nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };
    _fields_ = (
        ("nr_cache", ctypes.c_uint64),
        ("nr_dirty", ctypes.c_uint64),
        ("nr_writeback", ctypes.c_uint64),
        ("nr_evicted", ctypes.c_uint64),
        ("nr_recently_evicted", ctypes.c_uint64),
    )


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """Pages of a file range in each page-cache state; None = unknown (mincore fallback)."""

    cached: int
    dirty: int | None
    writeback: int | None
    evicted: int | None
    recently_evicted: int | None
    source: str  # SOURCE_CACHESTAT or SOURCE_MINCORE

    def __add__(self, other: CacheCounts) -> CacheCounts:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        return CacheCounts(
            self.cached + other.cached,
            add(self.dirty, other.dirty),
            add(self.writeback, other.writeback),
            add(self.evicted, other.evicted),
            add(self.recently_evicted, other.recently_evicted),
            self.source if self.source == other.source else SOURCE_MINCORE,
        )


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_munmap = _libc.munmap
_munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_mincore = _libc.mincore
_mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
_MAP_FAILED = ctypes.c_void_p(-1).value

_state: dict[str, bool | None] = {
    "have": None
}  # None: not asked yet; True/False once the kernel has answered
_lock = threading.Lock()


def syscall_number(machine: str | None = None) -> int | None:
    """__NR_cachestat for ``machine`` (default: this one), or None if not known."""
    return _SYSCALL_NR.get(machine or platform.machine())


_NR = syscall_number()
_NR_ARG = ctypes.c_long(_NR or 0)
_ZERO_FLAGS = ctypes.c_uint(0)
_buffers = threading.local()  # one range/result pair per thread, reused: a tree walk makes 10^5 calls


def counts(fd: int, offset: int = 0, length: int = 0) -> tuple[int, int, int, int, int]:
    """cachestat(2) on ``fd`` for ``length`` bytes from ``offset`` (0: to the end), as
    (cached, dirty, writeback, evicted, recently_evicted) pages.

    Raises OSError: ENOSYS (no cachestat in this kernel or architecture),
    EPERM (neither the owner nor allowed to write), EOPNOTSUPP (hugetlbfs),
    EBADF.
    """
    if _NR is None or _state["have"] is False:
        raise OSError(errno.ENOSYS, "cachestat: " + os.strerror(errno.ENOSYS))
    b = getattr(_buffers, "b", None)
    if b is None:
        rng, out = _Range(), _Stat()
        b = _buffers.b = (rng, out, ctypes.byref(rng), ctypes.byref(out))
    rng, out, rng_p, out_p = b
    rng.off, rng.len = offset, length
    if _syscall(_NR_ARG, ctypes.c_uint(fd), rng_p, out_p, _ZERO_FLAGS) != 0:
        e = ctypes.get_errno()
        if e == errno.ENOSYS:
            _state["have"] = False
        raise OSError(e, "cachestat: " + os.strerror(e))
    _state["have"] = True
    return out.nr_cache, out.nr_dirty, out.nr_writeback, out.nr_evicted, out.nr_recently_evicted


def cachestat(fd: int, offset: int = 0, length: int = 0) -> CacheCounts:
    """``counts`` as a CacheCounts (raises OSError as ``counts`` does)."""
    return CacheCounts(*counts(fd, offset, length), SOURCE_CACHESTAT)


def have_cachestat() -> bool:
    """Does this kernel answer cachestat? (asked once, on /dev/null, then remembered)."""
    with _lock:
        if _state["have"] is None:
            try:
                fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return syscall_number() is not None
            try:
                cachestat(fd)
            except OSError as e:
                _state["have"] = e.errno != errno.ENOSYS
            finally:
                os.close(fd)
        return bool(_state["have"])


# mincore answers one byte per page: scan at most this many pages per call
_MINCORE_CHUNK_PAGES = 1 << 18  # 1 GiB of 4 KiB pages, a 256 KiB vector
_BIT0 = bytes([b & 1 for b in range(256)])  # maps each vector byte to its residency bit


def mincore_resident(fd: int, offset: int = 0, length: int = 0) -> int:
    """Resident pages of ``fd`` in [offset, offset+length) (length 0: to the end), by mincore.

    The file is mapped read-only and never touched, so nothing is faulted in.
    Raises OSError (EPERM when mincore would only see our own page tables).
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "mincore: not a regular file")
    if not _mincore_sees_cache(st):
        raise OSError(errno.EPERM, "mincore: not the file's owner nor allowed to write it")
    start = offset - offset % PAGE
    end = st.st_size if length == 0 else min(st.st_size, offset + length)
    resident = 0
    vec = ctypes.create_string_buffer(_MINCORE_CHUNK_PAGES)
    pos = start
    while pos < end:
        n = min(end - pos, _MINCORE_CHUNK_PAGES * PAGE)
        addr = _mmap(None, n, mmap.PROT_READ, mmap.MAP_SHARED, fd, pos)
        if addr in (None, _MAP_FAILED):
            e = ctypes.get_errno()
            raise OSError(e, "mmap: " + os.strerror(e))
        try:
            if _mincore(addr, n, vec) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "mincore: " + os.strerror(e))
        finally:
            _munmap(addr, n)
        pages = (n + PAGE - 1) // PAGE
        resident += pages - vec.raw[:pages].translate(_BIT0).count(0)
        pos += n
    return resident


def _mincore_sees_cache(st: os.stat_result) -> bool:
    """The kernel's can_do_mincore() rule for a file mapping: owner, or may write it."""
    uid = os.geteuid()
    if uid == 0 or st.st_uid == uid:
        return True
    # mode bits only (an ACL granting write is not seen: the answer is then a refusal, never a false zero)
    if st.st_gid in {os.getegid(), *os.getgroups()}:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def page_cache(fd: int, offset: int = 0, length: int = 0) -> CacheCounts:
    """cachestat, or on a kernel without it mincore residency (the rest None).

    Raises OSError as ``cachestat`` and ``mincore_resident`` do.
    """
    try:
        return cachestat(fd, offset, length)
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
    return CacheCounts(mincore_resident(fd, offset, length), None, None, None, None, SOURCE_MINCORE)


def page_cache_of(path: str, offset: int = 0, length: int = 0) -> CacheCounts:
    """``page_cache`` of the file at ``path`` (opened read-only, non-blocking, not followed if a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        return page_cache(fd, offset, length)
    finally:
        os.close(fd)
