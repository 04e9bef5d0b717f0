"""Pure decoding of /proc/PID/pagemap entries and /proc/kpageflags bits.

Bytes in, page-state codes and runs out; no I/O. Decoding works on whole
buffers with C-speed bytes operations (slicing every 8th byte, translate,
big-int bit operations, split, map over builtins) instead of a Python loop
per page or per run, so a million pages decode in tens of milliseconds.

pagemap entry (Documentation/admin-guide/mm/pagemap.rst), one u64 per page:
  bits 0-54  PFN if present (0 without CAP_SYS_ADMIN), swap type/offset if swapped
  bit 55     pte is soft-dirty
  bit 56     page exclusively mapped (PM_MMAP_EXCLUSIVE)
  bit 57     pte is uffd-wp write-protected
  bit 58     pte is a guard region (MADV_GUARD_INSTALL, Linux 6.14+); the
             kernel also sets bit 62 for it, but nothing is swapped
  bit 61     page is file-page or shared-anon (PM_FILE)
  bit 62     page swapped
  bit 63     page present
All of bits 56-63 are in the last byte of each little-endian entry, so one
``raw[7::8]`` slice gives every page's flags.

Page state codes are indexes into ``model.PAGE_STATES``.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, chain, compress, islice, pairwise, repeat
from operator import add, sub

from ..model import PAGE_STATES

# state codes (index into model.PAGE_STATES)
C_ABSENT, C_SWAPPED, C_FILE, C_FILE_DIRTY, C_ANON, C_ZERO = range(6)
assert PAGE_STATES[C_FILE_DIRTY] == "file-dirty" and PAGE_STATES[C_ZERO] == "zero"

# pagemap bits
PM_PFN_MASK = (1 << 55) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_GUARD_REGION = 1 << 58
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63

# the same bits within the entry's top byte (bits 56-63)
_T_EXCL = 0x01
_T_GUARD = 0x04
_T_FILE = 0x20
_T_SWAP = 0x40
_T_PRESENT = 0x80

# kpageflags bits (include/uapi/linux/kernel-page-flags.h)
KPF_LOCKED = 0
KPF_REFERENCED = 2
KPF_UPTODATE = 3
KPF_DIRTY = 4
KPF_LRU = 5
KPF_ACTIVE = 6
KPF_MMAP = 11
KPF_ANON = 12
KPF_SWAPCACHE = 13
KPF_SWAPBACKED = 14
KPF_COMPOUND_HEAD = 15
KPF_COMPOUND_TAIL = 16
KPF_HUGE = 17
KPF_UNEVICTABLE = 18
KPF_NOPAGE = 20
KPF_KSM = 21
KPF_THP = 22
KPF_ZERO_PAGE = 24
KPF_IDLE = 25


def _table(fn: Callable[[int], int]) -> bytes:
    return bytes(fn(b) for b in range(256))


def _top_state(t: int) -> int:
    if t & _T_PRESENT:
        return C_FILE if t & _T_FILE else C_ANON
    if t & _T_SWAP and not t & _T_GUARD:
        return C_SWAPPED
    return C_ABSENT  # not mapped, or a guard-region marker


T_STATE = _table(_top_state)
T_EXCL = _table(lambda t: 1 if (t & _T_PRESENT and t & _T_EXCL) else 0)
# kpagecount is looked up for present pages that may be mapped twice: file
# pages and anonymous pages without the exclusive bit (see pages._Chunk)
T_NEEDCOUNT = _table(lambda t: 1 if (t & _T_PRESENT and (t & _T_FILE or not t & _T_EXCL)) else 0)
# page code -> 1 if present (file, file-dirty, anon, zero)
T_PRESENT = bytes(1 if C_FILE <= c <= C_ZERO else 0 for c in range(256))
# page code -> the zero page if present (PAGEMAP_SCAN's PAGE_IS_PFNZERO ranges)
T_TO_ZERO = bytes(C_ZERO if C_FILE <= c <= C_ZERO else c for c in range(256))

ONES_RE = re.compile(b"\x01+")
_NONZERO_RE = re.compile(b"[^\x00]")
_T_GT1 = bytes([0, 0]) + bytes([1]) * 254
_T_NONZERO = bytes([0]) + bytes([1]) * 255


def classify_masks(raw: bytes) -> tuple[bytes, bytes]:
    """Page-state codes and the exclusive-present mask (0/1), one byte per entry."""
    top = raw[7::8]
    return top.translate(T_STATE), top.translate(T_EXCL)


def iter_ones(mask: bytes, base: int = 0) -> Iterator[tuple[int, int]]:
    """(first, count) for each run of 1 bytes in a 0/1 mask."""
    for m in ONES_RE.finditer(mask):
        s, e = m.span()
        yield base + s, e - s


# -- whole-buffer operations: one C-level pass each, no Python loop per page or run


def and_masks(a: bytes, b: bytes) -> bytes:
    """Bytewise AND of two 0/1 masks of equal length."""
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def scatter(values: bytes, mask: bytes) -> bytes:
    """Put ``values`` (one per 1 in ``mask``, in order) at the 1s of ``mask``; 0 elsewhere.

    The inverse of ``bytes(compress(page_bytes, mask))``: each mask byte picks
    either the next value or a zero (``next`` on one of two iterators), in C.
    """
    pick = [repeat(0), iter(values)]
    return bytes(map(next, map(pick.__getitem__, mask)))


def run_lengths(codes: bytes, cuts: Iterable[int]) -> tuple[array[int], bytes, bytes]:
    """Runs of equal codes, also cut at each position in ``cuts`` (0 < cut < len).

    Returns (run lengths, the code of each run, the mask with a 1 where a run
    starts). The mask of run starts comes from one XOR of the codes with
    themselves shifted by one byte (as big integers); splitting it at its 1s
    gives one piece per run, whose length is the run's length minus one
    (pieces of 0 or 1 bytes are cached by CPython: nothing is allocated for
    short runs).
    """
    n = len(codes)
    if not n:
        return array("Q"), b"", b""
    x = int.from_bytes(codes, "little")
    starts = bytearray((x ^ (x << 8)).to_bytes(n + 1, "little")[:n].translate(_T_NONZERO))
    starts[0] = 1
    deque(map(starts.__setitem__, cuts, repeat(1)), maxlen=0)
    mask = bytes(starts)
    lens = array("Q", map((1).__add__, map(len, islice(mask.split(b"\1"), 1, None))))
    return lens, bytes(compress(codes, mask)), mask


def refine(codes: bytes, facts: bytes) -> bytes:
    """Page codes refined by kpageflags facts (both page-aligned): the zero
    page, file-dirty. ``(code << 4) | fact`` per byte indexes one table."""
    n = len(codes)
    key = (int.from_bytes(codes, "little") << 4) | int.from_bytes(facts, "little")
    return key.to_bytes(n + 1, "little")[:n].translate(_T_REFINE)


class PfnLookup:
    """Look up the kpageflags/kpagecount entries of many present pages, in bulk.

    Input: the pages' pagemap entries (page order). Their PFNs are marked in
    a bitmap over [lowest PFN, highest PFN] (one byte per PFN: 3 MiB for 12
    GiB of RAM), which yields the PFNs to read as sorted spans with one regex
    scan, no sort; PFNs closer than ``gap`` share a span (a pread and its
    Python overhead cost about as much as the kernel spends on 16 more
    entries, 180 ns each). Facts are computed on what was read and put back
    in the same bitmap's coordinates, so each page's fact is one index away.
    No Python loop per page or per PFN: C-level map/regex/translate only.
    A PFN range too wide for a bitmap (``MAX_BITMAP``) takes a sort instead.
    """

    MAX_BITMAP = 1 << 25  # PFNs (128 GiB of physical address range)

    def __init__(self, entries: bytes | Iterable[int], gap: int = 16) -> None:
        """``entries``: little-endian u64 bytes, or the entries as integers."""
        ints = memoryview(entries).cast("Q") if isinstance(entries, bytes) else entries
        pfns = list(map(PM_PFN_MASK.__and__, ints))
        self.n = n = len(pfns)
        self.spans: list[tuple[int, int]] = []
        self.any_pfn = False
        if not n:
            return
        lo, hi = min(pfns), max(pfns)
        self.any_pfn = hi > 0  # without CAP_SYS_ADMIN every PFN reads 0
        self._pfns = pfns
        # The bitmap is indexed by PFN - base; base 0 (no subtraction per
        # PFN) unless the PFNs start far above 0.
        self._base = base = 0 if lo < (hi - lo) + (1 << 20) else lo
        if hi - lo < self.MAX_BITMAP:
            marks = bytearray(hi - base + 1)
            deque(map(marks.__setitem__, map(sub, pfns, repeat(base)) if base else pfns, repeat(1)), maxlen=0)
            self.spans = [
                (base + m.start(), base + m.end())
                for m in re.compile(b"\\x01(?:\\x00{0,%d}\\x01)*" % gap).finditer(marks, lo - base)
            ]
            self._sorted: tuple[list[int], list[int], list[int]] | None = None
        else:
            u = sorted(set(pfns))
            far = bytes(map(gap.__lt__, map(sub, islice(u, 1, None), u)))  # 1: u[j+1] opens a span
            sizes = list(map((1).__add__, map(len, far.split(b"\1"))))
            first = list(accumulate(sizes, initial=0))
            self.spans = [(u[a], u[b - 1] + 1) for a, b in pairwise(first)]
            self._sorted = (pfns, u, sizes)

    def read_facts(
        self,
        read_span: Callable[[int, int], bytes],
        facts: Callable[[bytes], bytes],
        read_all: Callable[[list[tuple[int, int]]], bytes | None] | None = None,
    ) -> bytes | None:
        """One fact byte per page, in the order given, or None when every fact is 0.

        ``read_span(lo, hi)`` returns the 8-byte entries of PFNs [lo, hi)
        (short at the end of memory: padded with zeros); ``facts`` turns
        entries into one byte each (``kpageflags_facts``, ``kpagecount_facts``).
        ``read_all(spans)``, if given, reads every span at once (thousands of
        preads in one C-level ``map``) and returns None when a span came back
        short, and then ``read_span`` reads them one by one.
        Most anonymous memory has no fact at all (no zero page, no THP, no
        KSM, not shared): then nothing is mapped back to pages.
        """
        if not self.n:
            return None
        raw = read_all(self.spans) if read_all is not None else None
        if raw is None:
            raw = b"".join(read_span(lo, hi).ljust((hi - lo) * 8, b"\0") for lo, hi in self.spans)
        f = facts(raw)
        if f.count(0) == len(f):
            return None
        if self._sorted is None:  # bitmap coordinates
            lo0 = self._base
            at = bytearray(self.spans[-1][1] - lo0)
            nonzero = len(f) - f.count(0)
            if nonzero * 64 < len(f):  # a few facts: place just those
                base = list(accumulate((hi - lo for lo, hi in self.spans), initial=0))
                for m in _NONZERO_RE.finditer(f):
                    pos = m.start()
                    k = bisect_right(base, pos) - 1
                    at[self.spans[k][0] - lo0 + pos - base[k]] = f[pos]
            else:
                pos = 0
                for lo, hi in self.spans:
                    at[lo - lo0 : hi - lo0] = f[pos : pos + hi - lo]
                    pos += hi - lo
            pfns = self._pfns
            return bytes(map(at.__getitem__, map(sub, pfns, repeat(lo0)) if lo0 else pfns))
        pfns, u, sizes = self._sorted
        bases = accumulate((hi - lo for lo, hi in self.spans), initial=0)
        shift = [b - lo for b, (lo, _) in zip(bases, self.spans)]
        span_of = chain.from_iterable(map(repeat, range(len(sizes)), sizes))
        fact_of = dict(zip(u, map(f.__getitem__, map(add, u, map(shift.__getitem__, span_of)))))
        return bytes(map(fact_of.__getitem__, pfns))


def _or_bytes(a: bytes, b: bytes) -> bytes:
    n = len(a)
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(n, "little")


# kpageflags facts: one byte per page
F_ZERO, F_DIRTY, F_THP, F_KSM = 1, 2, 4, 8
_T_B0 = _table(lambda b: F_DIRTY if b & (1 << KPF_DIRTY) else 0)
_T_B2 = _table(
    lambda b: (F_THP if b & (1 << (KPF_THP - 16)) else 0) | (F_KSM if b & (1 << (KPF_KSM - 16)) else 0)
)
_T_B3 = _table(lambda b: F_ZERO if b & (1 << (KPF_ZERO_PAGE - 24)) else 0)
T_THP = _table(lambda f: 1 if f & F_THP else 0)  # fact byte -> 1 if part of a THP
T_KSM = _table(lambda f: 1 if f & F_KSM else 0)
# fact byte -> state, for a page that pagemap called file / anon. The zero page is
# anon whatever bit 61 says (pagemap marks the huge zero page PM_FILE).
REFINE_FILE = _table(lambda f: C_ZERO if f & F_ZERO else (C_FILE_DIRTY if f & F_DIRTY else C_FILE))
REFINE_ANON = _table(lambda f: C_ZERO if f & F_ZERO else C_ANON)


def _refined(key: int) -> int:
    code, f = key >> 4, key & 15
    if code == C_FILE:
        return REFINE_FILE[f]
    if code == C_ANON:
        return REFINE_ANON[f]
    return code


_T_REFINE = _table(_refined)


def kpageflags_facts(fb: bytes) -> bytes:
    """kpageflags u64s (little-endian) -> one byte each: F_ZERO | F_DIRTY | F_THP | F_KSM."""
    n = len(fb) // 8
    v = (
        int.from_bytes(fb[0::8].translate(_T_B0), "little")
        | int.from_bytes(fb[2::8].translate(_T_B2), "little")
        | int.from_bytes(fb[3::8].translate(_T_B3), "little")
    )
    return v.to_bytes(n, "little")


def kpagecount_facts(cb: bytes) -> bytes:
    """kpagecount u64s (little-endian) -> 1 where the page is mapped more than once, else 0."""
    n = len(cb) // 8
    mask = cb[0::8].translate(_T_GT1)
    high = 0
    for j in range(1, 8):
        high |= int.from_bytes(cb[j::8], "little")
    if high:
        mask = _or_bytes(mask, high.to_bytes(n, "little").translate(_T_NONZERO))
    return mask
