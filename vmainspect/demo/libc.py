"""The memory system calls the stdlib lacks, and memory access through libc (ctypes, stdlib only).

Python's ``mmap.mmap`` keeps its own duplicate of the file descriptor and
cannot mprotect, madvise, mremap or msync a part of a mapping, so the demo
maps memory with these thin wrappers instead. Each raises OSError with the
errno on failure, like the os module does.

The workload touches memory only through libc's ``memset``, ``memcpy`` and
``read``: a page fault it takes then happens inside a function a student
knows (the fault sampler names it), not inside the interpreter's ctypes
internals.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os

PAGE = mmap.PAGESIZE

PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MREMAP_MAYMOVE = 1
MS_SYNC = 4
MADV_DONTNEED = 4
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_PAGEOUT = 21
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
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.memset.restype = ctypes.c_void_p
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
_libc.memcpy.restype = ctypes.c_void_p
_libc.memcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.read.restype = ctypes.c_ssize_t
_libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]


def _check(ret: int, what: str) -> int:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


def mmap_(length: int, prot: int, flags: int, fd: int = -1, offset: int = 0, addr: int = 0) -> int:
    """mmap(2); returns the address."""
    got = _libc.mmap(addr or None, length, prot, flags, fd, offset)
    if got in (None, _MAP_FAILED):
        e = ctypes.get_errno()
        raise OSError(e, f"mmap: {os.strerror(e)}")
    return int(got)


def munmap(addr: int, length: int) -> None:
    _check(_libc.munmap(addr, length), "munmap")


def munmap_errno(addr: int, length: int) -> int:
    """munmap(2) as the sample code of the article calls it: 0, or the errno it failed with (never raises)."""
    if _libc.munmap(addr, length) == 0:
        return 0
    return ctypes.get_errno()


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


def set_pdeathsig(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent thread dies."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def name_anon(addr: int, length: int, name: str) -> bool:
    """Name an anonymous mapping ([anon:NAME] in maps); False if the kernel lacks it."""
    buf = ctypes.create_string_buffer(name.encode())
    ret = _libc.prctl(
        PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, ctypes.cast(buf, ctypes.c_void_p).value or 0
    )
    return int(ret) == 0


def memset(addr: int, value: int, n: int) -> None:
    """libc memset: the first write to a page faults inside it."""
    _libc.memset(addr, value & 0xFF, n)


def write_bytes(addr: int, data: bytes) -> None:
    """libc memcpy of ``data`` to ``addr``."""
    _libc.memcpy(addr, data, len(data))


def read_bytes(addr: int, n: int) -> bytes:
    """libc memcpy of ``n`` bytes at ``addr`` into a fresh buffer."""
    buf = ctypes.create_string_buffer(n)
    _libc.memcpy(buf, addr, n)
    return buf.raw


def read_into(fd: int, addr: int, n: int) -> int:
    """libc read(2) of up to ``n`` bytes from ``fd`` into memory at ``addr``; bytes read."""
    got = int(_libc.read(fd, addr, n))
    if got < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"read: {os.strerror(e)}")
    return got
