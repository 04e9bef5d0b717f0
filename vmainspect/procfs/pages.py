"""Per-page state of every VMA: pagemap (and PAGEMAP_SCAN) plus, as root, kpageflags/kpagecount.

Two ways to the same answer:

- **pagemap**: every VMA's /proc/PID/pagemap is read (nearby VMAs with one
  pread, a huge VMA in chunks) and decoded in bulk.
- **scan** (Linux 6.7+): one PAGEMAP_SCAN ioctl first finds the ranges that
  hold present or swapped pages (and the zero page); only those are read
  from pagemap. A mostly empty address space (a 64 GiB reservation with a
  few pages in use) costs what its used pages cost, not what its size does.
  On a dense one it costs about what the pagemap path does.

Either way every page's state comes from its pagemap entry (present, swap,
file and exclusive bits), so both paths give the same answer. As root the
PFNs of present pages are looked up in /proc/kpageflags and
/proc/kpagecount, read in contiguous PFN spans:
- dirty: KPF_DIRTY on file/shmem pages (per folio: one write can mark a
  whole large folio); present anonymous pages are dirty by nature (the
  kernel does not set KPF_DIRTY on them), the zero page is not;
- zero: KPF_ZERO_PAGE (the shared zero page and the huge zero page);
- thp: KPF_THP, which the kernel sets on every page of a large folio: PMD
  THPs, mTHPs, large page-cache folios and the huge zero page;
- ksm: KPF_KSM; shared: kpagecount > 1.

What the two paths can know without root differs in one place: PAGEMAP_SCAN's
PAGE_IS_PFNZERO flags the shared zero page (and the huge zero page) without
privileges, plain pagemap cannot (the PFN is hidden). So without root the
scan path reports ``zero`` pages and a count, the pagemap path reports them
as ``anon`` (or ``file``: pagemap sets bit 61 on the huge zero page) and
``zero = None``. Everything else is equal, and tests check it.
"""

from __future__ import annotations

import gc
import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, itemgetter, lt, sub

from ..errors import AccessDenied, ProcessGone, Unsupported
from ..model import PAGE_STATES, PageCounts, PageInfo, PageRun, Vma
from . import pagemap as pm
from .reader import ProcReader
from .scan import (
    DEFAULT_VEC_LEN,
    PAGE_IS_PFNZERO,
    PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED,
    PageScanner,
    ScanUnsupported,
)

CHUNK_PAGES = 1 << 18  # pages per pagemap read (2 MiB of entries)
GAP_PAGES = 64  # read across holes this small rather than issue another pread
SCAN_VEC_LEN = DEFAULT_VEC_LEN  # regions per PAGEMAP_SCAN call
# PAGEMAP_SCAN picks the pages to read unless smaps says at least one page in
# DENSE_RATIO is resident or swapped: then every page is read, and the ioctl
# only finds the zero page (see _scan_pieces).
DENSE_RATIO = 8
_TOP_USER = 1 << 47  # PAGEMAP_SCAN refuses ranges outside the user address space ([vsyscall])


@dataclass(frozen=True)
class PageResult:
    infos: list[PageInfo]  # one per VMA, same order as the vmas passed in
    pfn_visible: bool
    kpageflags: bool
    kpagecount: bool
    pagemap_scan: bool  # True when the PAGEMAP_SCAN ioctl was used
    notes: tuple[str, ...]


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
_T_THP = bytes(1 if f & pm.F_THP else 0 for f in range(256))
_T_KSM = bytes(1 if f & pm.F_KSM else 0 for f in range(256))


def read_pages(
    reader: ProcReader, vmas: Sequence[Vma], page_size: int, *, use_scan: bool | None = None
) -> PageResult:
    """Per-page state of ``vmas`` (address order) of ``reader``'s process.

    ``use_scan``: None = PAGEMAP_SCAN when the kernel has it (Linux 6.7+),
    True = require it (``Unsupported`` otherwise), False = plain pagemap reads.
    Raises ``ProcessGone``/``AccessDenied`` (via ProcReader) for the process;
    /proc/kpageflags and /proc/kpagecount being unreadable is not an error:
    what they would tell is then unknown (None).
    """
    # Nothing made here forms a reference cycle: the cyclic garbage collector
    # would only rescan the arrays' neighbours.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _read_pages(reader, vmas, page_size, use_scan)
    finally:
        if was_enabled:
            gc.enable()


def _read_pages(reader: ProcReader, vmas: Sequence[Vma], page_size: int, use_scan: bool | None) -> PageResult:
    notes: list[str] = []
    kf = _open_optional(reader, "kpageflags")
    kc = _open_optional(reader, "kpagecount")
    fd = None
    try:
        fd = reader.open("pagemap")
        used_scan = False
        pieces: list[Piece] = []
        zero: list[tuple[int, int]] = []
        if use_scan is not False:
            try:
                pieces, zero = _scan_pieces(reader, fd, vmas, page_size)
                used_scan = True
            except ScanUnsupported as e:
                if use_scan:
                    raise Unsupported(f"{e}: PAGEMAP_SCAN needs Linux 6.7 or newer") from None
                notes.append("PAGEMAP_SCAN unavailable (needs Linux 6.7+): read /proc/PID/pagemap instead")
        if not used_scan:
            pieces = _all_pieces(vmas, page_size)
        found = _Pages(reader, kf, kc, zero)
        bad = 0
        for start, raw, group in _fetch(reader, fd, pieces, _TOP_USER // page_size):
            if raw is None:
                bad += 1
                raw = bytes(8 * (group[-1][0] + group[-1][1] - start))  # shown as absent
            found.add(start, raw, group)
        if bad:
            notes.append(f"{bad} pagemap range(s) could not be read: shown as absent")
    finally:
        for f in (fd, kf, kc):
            if f is not None:
                os.close(f)

    want_pfn = kf is not None or kc is not None
    looked_up = want_pfn and found.any_present
    pfn_visible = found.pfn_seen if looked_up else want_pfn
    if looked_up and not pfn_visible:
        notes.append(
            "PFNs hidden although /proc/kpageflags is readable (CAP_SYS_ADMIN missing in this user namespace)"
        )
    use_kf = bool(pfn_visible and kf is not None)
    use_kc = bool(pfn_visible and kc is not None)
    zero_known = use_kf or used_scan
    infos = found.infos(vmas, page_size, _Infos(use_kf, use_kc, zero_known))

    if not pfn_visible:
        unknown = "dirty/THP/KSM/shared" if used_scan else "dirty/zero/THP/KSM/shared"
        notes.append(f"PFNs hidden: not root (CAP_SYS_ADMIN); {unknown} counts unknown")
        if used_scan:
            notes.append("zero page found with PAGEMAP_SCAN (PAGE_IS_PFNZERO), which needs no root")
    else:
        if not use_kf:
            notes.append("/proc/kpageflags not readable: dirty/zero/THP/KSM counts unknown")
        if not use_kc:
            notes.append("/proc/kpagecount not readable: shared counts unknown")
    if not zero_known:
        odd = sum(i.counts.file for v, i in zip(vmas, infos) if _private_anon(v))
        if odd:
            notes.append(
                f"{odd} pages of private anonymous memory carry pagemap's file bit: the huge "
                "zero page looks like that; root or PAGEMAP_SCAN can tell them apart"
            )
    if use_kf:
        notes.append("anonymous pages count as dirty (kpageflags DIRTY is set only on file pages)")
    return PageResult(infos, bool(pfn_visible), use_kf, use_kc, used_scan, tuple(notes))


def _private_anon(v: Vma) -> bool:
    p = v.path
    return (
        v.inode == 0
        and v.perms.endswith("p")
        and (p is None or p in ("[heap]", "[stack]") or p.startswith("[anon:"))
    )


def _open_optional(reader: ProcReader, name: str) -> int | None:
    """An fd on /proc/NAME, or None when it cannot be read (not root, not built in)."""
    try:
        return reader.open_global(name)
    except (AccessDenied, OSError):
        return None


# -- which pages need pagemap reads --------------------------------------------


def _all_pieces(vmas: Sequence[Vma], page_size: int, index: Sequence[int] | None = None) -> list[Piece]:
    """Every page of ``vmas`` (``index``: their VMA indexes, default 0, 1, ...)."""
    pieces = []
    for vi, v in zip(index if index is not None else range(len(vmas)), vmas):
        p0 = v.start // page_size
        n = (v.end - v.start) // page_size
        if n <= CHUNK_PAGES:
            pieces.append((p0, n, vi, 0))
        else:
            for f in range(0, n, CHUNK_PAGES):
                pieces.append((p0 + f, min(CHUNK_PAGES, n - f), vi, f))
    return pieces


def _scan_ranges(sc: PageScanner, lo: int, hi: int, gap: int) -> tuple[list[int], list[int], list[int]]:
    """PAGEMAP_SCAN regions in [lo, hi) merged where less than ``gap`` bytes
    apart: (starts, ends, and the zero page's regions as start, end, ...).
    Whole-list operations per ioctl: a fragmented heap returns a region per page."""
    rs: list[int] = []
    re_: list[int] = []
    zero: list[int] = []
    for s, e, cat in sc.batches(lo, hi):
        if any(cat):
            zero.extend(chain.from_iterable(compress(zip(s, e), cat)))
        # region k+1 opens a new range when it starts more than ``gap`` after region k ends
        opens = list(compress(range(1, len(s)), map(lt, repeat(gap), map(sub, islice(s, 1, None), e))))
        starts = [s[0], *map(s.__getitem__, opens)]
        ends = [*map(e.__getitem__, map(sub, opens, repeat(1))), e[-1]]
        if re_ and starts[0] - re_[-1] <= gap:  # joins the previous ioctl's last range
            re_[-1] = ends[0]
            del starts[0], ends[0]
        rs += starts
        re_ += ends
    return rs, re_, zero


def _dense(vmas: Sequence[Vma], page_size: int) -> bool:
    """True when smaps counts at least one page in DENSE_RATIO as resident or
    swapped (False when the VMAs carry no smaps). On such a process the regions
    PAGEMAP_SCAN returns cost more to handle than the absent pages they let
    us skip (a fragmented heap returns one region per page)."""
    try:
        used = sum(v.smaps["rss"] + v.smaps["swap"] for v in vmas)
    except KeyError:
        return False
    return used * DENSE_RATIO >= sum(v.end - v.start for v in vmas)


def _scan_pieces(
    reader: ProcReader, fd: int, vmas: Sequence[Vma], page_size: int
) -> tuple[list[Piece], list[tuple[int, int]]]:
    """PAGEMAP_SCAN: the pieces of VMAs that hold present or swapped pages, and
    the page ranges of the zero page.

    On a dense process (``_dense``) every page is read, and the ioctl only
    reports the zero page: the same answer, as the pages it would have let us
    skip read as absent."""
    scannable = [vi for vi, v in enumerate(vmas) if v.end <= _TOP_USER]
    pieces: list[Piece] = []
    zero: list[tuple[int, int]] = []
    dense = _dense(vmas, page_size)
    if scannable:
        # Only pages present or swapped (guard markers count as swapped) come
        # back, and only the zero-page category splits regions: few regions
        # (but one per page on a fragmented heap). Dense: the zero page only.
        sc = PageScanner(
            reader,
            fd,
            vec_len=SCAN_VEC_LEN,
            anyof=PAGE_IS_PFNZERO if dense else PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask=PAGE_IS_PFNZERO,
        )
        lo, hi = vmas[scannable[0]].start, vmas[scannable[-1]].end
        rs, re_, z = _scan_ranges(sc, lo, hi, GAP_PAGES * page_size)
        zero = list(zip(map(page_size.__rfloordiv__, z[0::2]), map(page_size.__rfloordiv__, z[1::2])))
        if dense:
            return _all_pieces(vmas, page_size), zero
        ri, nr = 0, len(rs)
        for vi in scannable:
            if ri >= nr:
                break
            v = vmas[vi]
            vs, ve = v.start, v.end
            while ri < nr and re_[ri] <= vs:
                ri += 1
            j = ri
            while j < nr and rs[j] < ve:
                s, e = max(rs[j], vs) // page_size, min(re_[j], ve) // page_size
                f = s - vs // page_size
                if e - s <= CHUNK_PAGES:
                    pieces.append((s, e - s, vi, f))
                else:
                    for c in range(s, e, CHUNK_PAGES):
                        pieces.append((c, min(CHUNK_PAGES, e - c), vi, f + c - s))
                if re_[j] > ve:
                    break  # the range continues into the next VMA
                j += 1
            ri = j
    # Above 128 TiB (the [vsyscall] page; with 5-level paging maybe more) the
    # ioctl refuses to go: read pagemap ([vsyscall] reads empty: absent).
    high = [(vi, v) for vi, v in enumerate(vmas) if v.end > _TOP_USER]
    pieces += _all_pieces([v for _, v in high], page_size, [vi for vi, _ in high])
    pieces.sort()
    return pieces, zero


# -- reading -----------------------------------------------------------------


def _fetch(
    reader: ProcReader, fd: int, pieces: list[Piece], top_page: int
) -> Iterator[tuple[int, bytes | None, list[Piece]]]:
    """(first page, pagemap bytes, pieces) per pread; nearby pieces share one pread.

    Below ``top_page`` (the end of the user address space) the kernel always
    returns every entry asked for while the process lives; after it exits,
    reads on the open pagemap return nothing: ``ProcessGone``, never "absent".
    """
    i = 0
    npieces = len(pieces)
    while i < npieces:
        start, n = pieces[i][0], pieces[i][1]
        end = start + n
        j = i + 1
        while j < npieces:
            page, n = pieces[j][0], pieces[j][1]
            if page - end > GAP_PAGES or page + n - start > CHUNK_PAGES:
                break
            if page + n > end:
                end = page + n
            j += 1
        want = (end - start) * 8
        try:
            raw: bytes | None = reader.pread(fd, want, start * 8, "pagemap")
        except OSError:
            raw = None  # e.g. a VM_IO area the kernel refuses: absent
        if raw is not None and len(raw) < want:
            if start + len(raw) // 8 < top_page:
                raise ProcessGone(reader.pid, "it exited while its pages were read")
            # the kernel stops at the end of the user address space ([vsyscall])
            raw = raw[: len(raw) - len(raw) % 8].ljust(want, b"\0")
        yield start, raw, pieces[i:j]
        i = j


class _Pages:
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
        for k, mask in ((K_THP, _T_THP), (K_KSM, _T_KSM)):
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

    def infos(self, vmas: Sequence[Vma], page_size: int, make: _Infos) -> list[PageInfo]:
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


def _append(lens: array[int], codes: bytearray, n: int, code: int) -> None:
    if codes and codes[-1] == code:
        lens[-1] += n
    else:
        lens.append(n)
        codes.append(code)


# -- results -----------------------------------------------------------------


class _Infos:
    """Builds PageInfo objects from runs (lengths as u64 bytes, codes) and
    counts. Equal ones are built once and shared (they are immutable): 20,000
    VMAs often have only a few shapes."""

    def __init__(self, use_kf: bool, use_kc: bool, zero_known: bool) -> None:
        self.use_kf, self.use_kc, self.zero_known = use_kf, use_kc, zero_known
        self._runs: dict[tuple[int, int, int], PageRun] = {}
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
            run = self._run
            info = self._infos[key] = PageInfo(
                counts=self.counts(k),
                runs=tuple(map(run, accumulate(n, initial=0), n, codes)),
                shared_runs=srun,
            )
        return info

    def _run(self, first: int, count: int, code: int) -> PageRun:
        r = (first, count, code)
        run = self._runs.get(r)
        if run is None:
            run = self._runs[r] = PageRun(first, count, PAGE_STATES[code])
        return run


def _merge_pairs(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for f, n in sorted(pairs):
        if out and out[-1][0] + out[-1][1] == f:
            out[-1][1] += n
        else:
            out.append([f, n])
    return tuple((f, n) for f, n in out)
