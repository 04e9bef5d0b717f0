"""Pagemap reads decoded into page runs, and the PageInfo of each VMA.

``PageRuns`` takes the pagemap entries of one read at a time (up to
``pages.CHUNK_PAGES`` pages, covering one or more *pieces*: pages of a VMA
read together) and keeps only what the output needs: the length and state of
every run, and per piece its counts. ``Infos`` turns those into the model's
``PageInfo`` per VMA. Every step over pages is a whole-buffer operation (see
``pagemap``): no Python loop runs per page or per run.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from functools import partial
from itertools import accumulate, chain, compress, repeat
from operator import add, itemgetter, mul, sub

from ..model import PageCounts, PageInfo, Vma, runs_from_columns
from . import pagemap as pm
from .reader import ProcReader

# A piece: pages [first, first+n) of VMA vi whose pagemap entries must be
# read, as a tuple (page, n, vi, first): page = the absolute page number of
# ``first`` (address // page_size). Tuples sort by address.
Piece = tuple[int, int, int, int]

# Counts kept per piece (columns of _Pages.counts), and the page codes counted into them.
K_SWAPPED, K_FILE, K_FILE_DIRTY, K_ANON, K_ZERO, K_EXCL, K_THP, K_KSM, K_SHARED = range(9)
_CODE_COLUMNS = (
    (pm.C_SWAPPED, K_SWAPPED),
    (pm.C_FILE, K_FILE),
    (pm.C_FILE_DIRTY, K_FILE_DIRTY),
    (pm.C_ANON, K_ANON),
    (pm.C_ZERO, K_ZERO),
)


class PageRuns:
    """What the pagemap reads found, kept in flat arrays as they come.

    Each read (up to CHUNK_PAGES pages, several pieces) is decoded with
    whole-buffer operations: codes per page (``translate`` of each entry's
    top byte), kpageflags/kpagecount facts for its present pages, then runs
    of equal codes cut at piece boundaries (``pagemap.run_lengths``). The
    runs' lengths and codes are appended to two arrays (9 bytes per run);
    per piece its VMA, first page, run range and counts go into columns.
    Nothing is kept per page once a read is decoded: memory grows with the
    runs found, not with the pages read.
    """

    def __init__(
        self, reader: ProcReader, kf: int | None, kc: int | None, zero: list[tuple[int, int]]
    ) -> None:
        self.reader, self.kf, self.kc = reader, kf, kc
        self.lens = array("Q")  # run lengths, address order (runs in holes between pieces too)
        self.codes = bytearray()  # run codes
        self.vi: list[int] = []  # per piece: VMA index
        self.first: list[int] = []  # first page (VMA-relative)
        self.n: list[int] = []  # pages
        self.r0: list[int] = []  # its runs: lens[r0:r1]
        self.r1: list[int] = []
        self.counts: list[list[int]] = [[] for _ in range(9)]  # K_* columns
        self.shared: dict[int, list[tuple[int, int]]] = {}  # piece -> (first, count) of shared pages
        self.any_present = False
        self.pfn_seen = False  # a present page showed its PFN (root)
        self._zero = zero  # page ranges of the zero page (PAGEMAP_SCAN), address order
        self._zero_starts = [s for s, _ in zero]

    def add(self, start: int, raw: bytes, group: list[Piece]) -> None:
        """Decode one pread (entries of pages [start, start + len(raw) // 8))."""
        size = len(raw) // 8
        top = raw[7::8]
        codes = top.translate(pm.T_STATE)
        a = list(map(sub, map(itemgetter(0), group), repeat(start)))  # piece bounds in this read
        b = list(map(add, a, map(itemgetter(1), group)))
        if sum(b) - sum(a) != size:  # the read spans holes between pieces: not ours, absent
            own = bytearray(size)
            for x, y in zip(a, b):
                own[x:y] = codes[x:y]
            codes = bytes(own)
        pmask = codes.translate(pm.T_PRESENT)
        facts = shared = None
        if pmask.count(0) != size:
            self.any_present = True
            visible = False
            if self.kf is not None or self.kc is not None:
                facts, shared, visible = self._lookup(raw, top, pmask)
            if self._zero and not (visible and self.kf is not None):
                codes = self._mark_zero(codes, start)
            if facts is not None:
                codes = pm.refine(codes, facts)

        cuts = list(chain.from_iterable(zip(a, b)))  # a0 b0 a1 b1 ...: never decreasing
        lens, rcodes, marks = pm.run_lengths(codes, cuts[:-1] if cuts[-1] == size else cuts)
        # run index at each cut: the run starts before it
        at = list(accumulate(map(marks.count, repeat(1), chain((0,), cuts), cuts)))
        base = len(self.lens)
        self.lens += lens
        self.codes += rcodes
        self.vi += map(itemgetter(2), group)
        self.first += map(itemgetter(3), group)
        self.n += map(itemgetter(1), group)
        self.r0 += map(base.__add__, at[0::2])
        self.r1 += map(base.__add__, at[1::2])

        cols = self.counts
        for code, k in _CODE_COLUMNS:
            cols[k] += map(codes.count, repeat(code), a, b) if code in codes else repeat(0, len(a))
        excl = top.translate(pm.T_EXCL)
        cols[K_EXCL] += map(excl.count, repeat(1), a, b) if 1 in excl else repeat(0, len(a))
        for k, mask in ((K_THP, pm.T_THP), (K_KSM, pm.T_KSM)):
            m = facts.translate(mask) if facts is not None else b""
            cols[k] += map(m.count, repeat(1), a, b) if 1 in m else repeat(0, len(a))
        if shared is not None:
            nshared = list(map(shared.count, repeat(1), a, b))
            p0 = len(self.vi) - len(group)
            for i in compress(range(len(a)), nshared):
                f = group[i][3] - a[i]
                self.shared[p0 + i] = [(f + s, n) for s, n in pm.iter_ones(shared[a[i] : b[i]], a[i])]
            cols[K_SHARED] += nshared
        else:
            cols[K_SHARED] += repeat(0, len(a))

    def _lookup(self, raw: bytes, top: bytes, pmask: bytes) -> tuple[bytes | None, bytes | None, bool]:
        """kpageflags facts and the kpagecount>1 mask of a read's present pages
        (page-aligned; None when all 0), and whether PFNs are visible."""
        ints = memoryview(raw).cast("Q")
        look = pm.PfnLookup(compress(ints, pmask))
        if not look.any_pfn:  # PFNs hidden (no CAP_SYS_ADMIN): nothing to look up
            return None, None, False
        self.pfn_seen = True
        facts = shared = None
        reader, kf, kc = self.reader, self.kf, self.kc
        if kf is not None:
            f = look.read_facts(
                lambda lo, hi: reader.pread_global(kf, (hi - lo) * 8, lo * 8, "kpageflags"),
                pm.kpageflags_facts,
                partial(_read_spans, kf),
            )
            if f is not None and f.count(0) != len(f):  # facts of other PFNs in the spans read do not count
                facts = pm.scatter(f, pmask)
        if kc is not None:
            # An anonymous page with pagemap's exclusive bit is mapped once
            # (docs/kernel-notes.md): its kpagecount is 1, it is not looked up.
            cmask = pm.and_masks(top.translate(pm.T_NEEDCOUNT), pmask)
            if 1 in cmask:
                s = pm.PfnLookup(compress(ints, cmask)).read_facts(
                    lambda lo, hi: reader.pread_global(kc, (hi - lo) * 8, lo * 8, "kpagecount"),
                    pm.kpagecount_facts,
                    partial(_read_spans, kc),
                )
                if s is not None and s.count(0) != len(s):
                    shared = pm.scatter(s, cmask)
        return facts, shared, True

    def _mark_zero(self, codes: bytes, start: int) -> bytes:
        """Present pages in PAGE_IS_PFNZERO ranges are the zero page (PAGEMAP_SCAN, no root needed)."""
        end = start + len(codes)
        i = max(bisect_right(self._zero_starts, start) - 1, 0)
        out = None
        while i < len(self._zero) and self._zero[i][0] < end:
            s, e = self._zero[i]
            if e > start:
                if out is None:
                    out = bytearray(codes)
                x, y = max(s, start) - start, min(e, end) - start
                out[x:y] = out[x:y].translate(pm.T_TO_ZERO)
            i += 1
        return codes if out is None else bytes(out)

    def infos(self, vmas: Sequence[Vma], page_size: int, make: Infos) -> list[PageInfo]:
        """Each VMA's PageInfo, in the order of ``vmas``."""
        vi_of, firsts, ns, r0s, r1s = self.vi, self.first, self.n, self.r0, self.r1
        rows = list(zip(*self.counts))  # per piece: its counts, K_* order
        lens = self.lens.tobytes()  # 8 bytes per run
        codes = bytes(self.codes)
        npieces = len(vi_of)
        out = []
        pi = 0
        for vi, v in enumerate(vmas):
            npages = (v.end - v.start) // page_size
            if pi >= npieces or vi_of[pi] != vi:  # nothing read: all absent
                out.append(make.absent(npages))
                continue
            pj = pi + 1
            while pj < npieces and vi_of[pj] == vi:
                pj += 1
            if pj == pi + 1 and firsts[pi] == 0 and ns[pi] == npages:
                # one piece, the whole VMA: its runs as read
                r0, r1 = r0s[pi], r1s[pi]
                out.append(
                    make.info(npages, lens[r0 * 8 : r1 * 8], codes[r0:r1], rows[pi], self.shared.get(pi))
                )
            else:
                row = tuple(map(sum, zip(*rows[pi:pj])))
                shared = [r for k in range(pi, pj) for r in self.shared.get(k, ())]
                jl, jc = self._join(pi, pj, npages)
                out.append(make.info(npages, jl.tobytes(), jc, row, shared))
            pi = pj
        return out

    def _join(self, pi: int, pj: int, npages: int) -> tuple[array[int], bytes]:
        """The runs of a VMA read in several pieces, or in part: absent between
        and around them, equal runs merged where pieces meet."""
        lens = array("Q")
        codes = bytearray()
        pos = 0
        for k in range(pi, pj):
            f, r0, r1 = self.first[k], self.r0[k], self.r1[k]
            if f > pos:
                _append(lens, codes, f - pos, pm.C_ABSENT)
            if r0 < r1:
                _append(lens, codes, self.lens[r0], self.codes[r0])
                lens += self.lens[r0 + 1 : r1]
                codes += self.codes[r0 + 1 : r1]
            pos = f + self.n[k]
        if pos < npages:
            _append(lens, codes, npages - pos, pm.C_ABSENT)
        return lens, bytes(codes)


def _read_spans(fd: int, spans: list[tuple[int, int]]) -> bytes | None:
    """The 8-byte entries of every PFN span of /proc/kpageflags or kpagecount
    (open on ``fd``), one pread each in a C-level ``map``; None when one fails
    or comes back short (past the end of memory): the caller then reads span
    by span through ProcReader, which pads and names errors."""
    los, his = zip(*spans)
    try:
        data = b"".join(
            map(os.pread, repeat(fd), map(mul, map(sub, his, los), repeat(8)), map(mul, los, repeat(8)))
        )
    except OSError:
        return None
    return data if len(data) == (sum(his) - sum(los)) * 8 else None


def _append(lens: array[int], codes: bytearray, n: int, code: int) -> None:
    if codes and codes[-1] == code:
        lens[-1] += n
    else:
        lens.append(n)
        codes.append(code)


# -- results -----------------------------------------------------------------


class Infos:
    """Builds PageInfo objects from runs (lengths as u64 bytes, codes) and
    counts. Equal ones are built once and shared (they are immutable): 20,000
    VMAs often have only a few shapes."""

    def __init__(self, use_kf: bool, use_kc: bool, zero_known: bool) -> None:
        self.use_kf, self.use_kc, self.zero_known = use_kf, use_kc, zero_known
        self._counts: dict[tuple[int, ...], PageCounts] = {}
        self._infos: dict[tuple[object, ...], PageInfo] = {}

    def absent(self, npages: int) -> PageInfo:
        if not npages:
            return self.info(0, b"", b"", (0,) * 9, None)
        return self.info(npages, npages.to_bytes(8, "little"), bytes([pm.C_ABSENT]), (0,) * 9, None)

    def counts(self, k: tuple[int, ...]) -> PageCounts:
        """PageCounts from a row of K_* counts; unknown (None) what this view cannot see."""
        pc = self._counts.get(k)
        if pc is None:
            use_kf = self.use_kf
            file = k[K_FILE] + k[K_FILE_DIRTY]
            anon = k[K_ANON] + k[K_ZERO]
            pc = self._counts[k] = PageCounts(
                file + anon,
                k[K_SWAPPED],
                file,
                anon,
                k[K_EXCL],
                k[K_FILE_DIRTY] + k[K_ANON] if use_kf else None,
                k[K_ZERO] if self.zero_known else None,
                k[K_THP] if use_kf else None,
                k[K_KSM] if use_kf else None,
                k[K_SHARED] if self.use_kc else None,
            )
        return pc

    def info(
        self, npages: int, lens: bytes, codes: bytes, k: tuple[int, ...], shared: list[tuple[int, int]] | None
    ) -> PageInfo:
        srun = (_merge_pairs(shared) if shared else ()) if self.use_kc else None
        key = (lens, codes, k, srun)
        info = self._infos.get(key)
        if info is None:
            n = memoryview(lens).cast("Q")
            info = self._infos[key] = PageInfo(
                counts=self.counts(k),
                runs=runs_from_columns(accumulate(n, initial=0), n, codes),
                shared_runs=srun,
            )
        return info


def _merge_pairs(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for f, n in sorted(pairs):
        if out and out[-1][0] + out[-1][1] == f:
            out[-1][1] += n
        else:
            out.append([f, n])
    return tuple((f, n) for f, n in out)
