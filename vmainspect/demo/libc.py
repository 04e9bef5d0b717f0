"""The memory system calls the stdlib lacks, through ctypes (stdlib only).

Python's ``mmap.mmap`` keeps its own duplicate of the file descriptor and
cannot mprotect, madvise, mremap or msync a part of a mapping, so the demo
maps memory with these thin wrappers instead. Each raises OSError with the
errno on failure, like the os module does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os

PAGE = mmap.PAGESIZE

PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x01, 0x02, 0x20
MREMAP_MAYMOVE = 1
MS_SYNC = 4
MADV_DONTNEED = 4
MADV_NOHUGEPAGE = 15
PR_SET_PDEATHSIG = 1
PR_SET_VMA = 0x53564D41
PR_SET_VMA_ANON_NAME = 0

_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mremap.restype = ctypes.c_void_p
_libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> int:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def mmap_(length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); returns the address."""
    addr = _libc.mmap(None, length, prot, flags, fd, offset)
    if addr in (None, _MAP_FAILED):
        e = ctypes.get_errno()
        raise OSError(e, f"mmap: {os.strerror(e)}")
    return int(addr)


def munmap(addr: int, length: int) -> None:
    _check(_libc.munmap(addr, length), "munmap")


def mprotect(addr: int, length: int, prot: int) -> None:
    _check(_libc.mprotect(addr, length, prot), "mprotect")


def madvise(addr: int, length: int, advice: int) -> None:
    _check(_libc.madvise(addr, length, advice), "madvise")


def msync(addr: int, length: int, flags: int = MS_SYNC) -> None:
    _check(_libc.msync(addr, length, flags), "msync")


def mremap(addr: int, old_len: int, new_len: int, flags: int = MREMAP_MAYMOVE) -> int:
    new = _libc.mremap(addr, old_len, new_len, flags)
    if new in (None, _MAP_FAILED):
        e = ctypes.get_errno()
        raise OSError(e, f"mremap: {os.strerror(e)}")
    return int(new)


def mincore(addr: int, length: int) -> bytes:
    """One byte per page; bit 0 set when the page is in the page cache / memory."""
    n = (length + PAGE - 1) // PAGE
    buf = ctypes.create_string_buffer(n)
    _check(_libc.mincore(addr, length, buf), "mincore")
    return buf.raw


def set_pdeathsig(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent thread dies."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def name_anon(addr: int, length: int, name: str) -> bool:
    """Name an anonymous mapping ([anon:NAME] in maps); False if the kernel lacks it."""
    buf = ctypes.create_string_buffer(name.encode())
    ret = _libc.prctl(
        PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, ctypes.cast(buf, ctypes.c_void_p).value or 0
    )
    return ret == 0


def write_byte(addr: int, value: int) -> None:
    ctypes.c_ubyte.from_address(addr).value = value & 0xFF


def read_byte(addr: int) -> int:
    return ctypes.c_ubyte.from_address(addr).value


def write_bytes(addr: int, data: bytes) -> None:
    ctypes.memmove(addr, data, len(data))


def read_bytes(addr: int, n: int) -> bytes:
    return ctypes.string_at(addr, n)


def page_cache_pages(path: str) -> tuple[int, int]:
    """(pages of ``path`` in the page cache, pages of the file), measured with mincore.

    Maps the file read-only without touching it: mincore reports the page
    cache, and nothing is faulted in.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, 0
        addr = mmap_(size, PROT_READ, MAP_SHARED, fd, 0)
    finally:
        os.close(fd)
    try:
        vec = mincore(addr, size)
    finally:
        munmap(addr, size)
    return sum(b & 1 for b in vec), len(vec)
