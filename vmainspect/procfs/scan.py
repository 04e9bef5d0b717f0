"""The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+), feature-detected.

One ioctl walks the page tables of an address range and returns run-length
``page_region``s ``(start, end, categories)``: consecutive pages with the same
categories come back as one region, so a 4 GiB area that is 25% written costs
a few regions instead of a million 8-byte pagemap entries.

What the kernel reports (fs/proc/task_mmu.c, include/uapi/linux/fs.h):
- with ``category_anyof_mask`` = PRESENT|SWAPPED only pages that are in
  memory or in swap come back (absent pages would come back with categories
  0: half of all regions, for nothing); address ranges that are not in any
  VMA are never reported, and neither are VM_PFNMAP areas ([vvar], device
  maps): all of these are absent;
- two regions that touch and have equal categories are merged even across a
  VMA boundary, so the caller splits them by VMA;
- a call that fills the buffer stops early and sets ``walk_end``; on Linux
  6.18 ``walk_end`` can point at an earlier stop after a call that returned
  more than 512 regions and then *completed* (docs/kernel-notes.md), so a call that
  returns fewer regions than the buffer holds is the end of the walk, and
  regions that start before the cursor are trimmed (never duplicated);
- PAGE_IS_PFNZERO marks the shared zero page and the huge zero page (Linux
  6.18, measured), and works without root;
- a MADV_GUARD_INSTALL marker is a swap-type entry: SWAPPED (and GUARD on
  6.14+), though nothing is swapped.

This module only talks to the kernel; ``pages.py`` uses the regions to pick
the pagemap ranges worth reading and to find the zero page without root.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
from collections.abc import Iterator

from ..errors import AccessDenied, ProcessGone
from .reader import PRIVILEGE_FOR, ProcReader

# include/uapi/linux/fs.h
PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_FILE = 1 << 2
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PAGE_IS_PFNZERO = 1 << 5
PAGE_IS_HUGE = 1 << 6
PAGE_IS_SOFT_DIRTY = 1 << 7
PAGE_IS_GUARD = 1 << 8  # Linux 6.14+: MADV_GUARD_INSTALL marker (a swap-type pte, not swapped)

# What we ask for. Unknown bits in return_mask make older kernels fail with
# EINVAL, so PAGE_IS_GUARD is only requested when the kernel accepts it.
RETURN_BASE = PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO

_ARG = struct.Struct("=12Q")  # struct pm_scan_arg: 12 x __u64 = 96 bytes
_REGION_WORDS = 3  # struct page_region {start, end, categories}


def _iowr(type_: int, nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (type_ << 8) | nr


PAGEMAP_SCAN = _iowr(ord("f"), 16, _ARG.size)  # 0xc0606610

DEFAULT_VEC_LEN = 1 << 15  # regions per call (768 KiB buffer)


class ScanUnsupported(Exception):
    """The kernel has no PAGEMAP_SCAN (before Linux 6.7) or refused our arguments."""


class PageScanner:
    """PAGEMAP_SCAN on an open pagemap fd; reusable for several ranges."""

    def __init__(
        self,
        reader: ProcReader,
        fd: int,
        vec_len: int = DEFAULT_VEC_LEN,
        anyof: int = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        return_mask: int = RETURN_BASE | PAGE_IS_GUARD,
    ) -> None:
        """``anyof``: report only pages with one of these categories (0: every
        page); ``return_mask``: the categories reported (regions split where they change)."""
        self.reader = reader
        self.anyof = anyof
        self.fd = fd
        self.vec_len = vec_len
        self._buf = (ctypes.c_uint64 * (vec_len * _REGION_WORDS))()
        self._addr = ctypes.addressof(self._buf)
        self._view = memoryview(self._buf).cast("B").cast("Q")
        self.return_mask = return_mask
        self.calls = 0

    def _ioctl(self, start: int, end: int) -> tuple[int, int]:
        arg = bytearray(
            _ARG.pack(
                _ARG.size, 0, start, end, 0, self._addr, self.vec_len, 0, 0, 0, self.anyof, self.return_mask
            )
        )
        try:
            n = fcntl.ioctl(self.fd, PAGEMAP_SCAN, arg, True)
        except OSError as e:
            if e.errno == errno.EINVAL and self.return_mask & PAGE_IS_GUARD:
                # Linux 6.7-6.13 reject the unknown PAGE_IS_GUARD bit: ask without it.
                self.return_mask &= ~PAGE_IS_GUARD
                return self._ioctl(start, end)
            raise self._error(e) from None
        self.calls += 1
        return n, _ARG.unpack(arg)[4]

    def _error(self, e: OSError) -> Exception:
        if e.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
            return ScanUnsupported(f"PAGEMAP_SCAN: {e.strerror}")
        if e.errno in (errno.EACCES, errno.EPERM):
            return AccessDenied(self.reader.pid, "pagemap", PRIVILEGE_FOR["pagemap"])
        if e.errno in (errno.ESRCH, errno.ENOENT) or not self.reader.exists():
            return ProcessGone(self.reader.pid)
        return e

    def regions(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, categories) of the pages of [start, end) with an ``anyof`` category.

        In order, never overlapping. Categories are masked to ``return_mask``.
        Unmapped holes between VMAs and VM_PFNMAP areas are never reported;
        with the default ``anyof`` absent pages are not reported either.
        """
        for starts, ends, cats in self.batches(start, end):
            yield from zip(starts, ends, cats)

    def batches(self, start: int, end: int) -> Iterator[tuple[list[int], list[int], list[int]]]:
        """The regions of ``regions()``, one ioctl's worth at a time, as three
        lists (starts, ends, categories): no Python object per region beyond
        its three integers (a fragmented heap returns one region per page)."""
        cursor = start
        view = self._view
        while cursor < end:
            n, walk_end = self._ioctl(cursor, end)
            words = view[: n * _REGION_WORDS]
            starts = words[0::_REGION_WORDS].tolist()
            ends = words[1::_REGION_WORDS].tolist()
            cats = words[2::_REGION_WORDS].tolist()
            # defensive: never report a page twice (a region before the cursor is trimmed)
            while starts and starts[0] < cursor:
                if ends[0] <= cursor:
                    del starts[0], ends[0], cats[0]
                else:
                    starts[0] = cursor
            if starts:
                yield starts, ends, cats
            if n < self.vec_len:
                return  # the walk completed (walk_end may be stale)
            nxt = max(walk_end, ends[-1] if ends else cursor)
            if nxt <= cursor:  # no progress: should not happen; do not loop
                return
            cursor = nxt


def probe(reader: ProcReader, fd: int) -> bool:
    """True when this kernel answers PAGEMAP_SCAN on ``fd`` (an empty range costs nothing)."""
    sc = PageScanner(reader, fd, vec_len=1)
    try:
        sc._ioctl(0, 0)
    except ScanUnsupported:
        return False
    return True
