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
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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
_Piece = tuple


class _Acc:
    """Per-VMA accumulator."""

    __slots__ = ("exclusive", "present", "runs")

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, int]] = []  # non-present runs (final)
        self.present: list[tuple[int, int, int, int, int]] = []  # (first, n, code, pfn offset, count offset)
        self.exclusive = 0


class _Accs(dict):
    """VMA index -> _Acc, made on first use (most VMAs of a big process have no pages)."""

    def __missing__(self, vi: int) -> _Acc:
        acc = self[vi] = _Acc()
        return acc


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
    # This builds some 100,000 small tuples and no reference cycles: the
    # cyclic garbage collector would only rescan them (20% of the time here).
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
        accs = _Accs()
        want_pfn = kf is not None or kc is not None
        pfns = _Pfns() if want_pfn else None
        used_scan = False
        pieces: list[_Piece] = []
        zero_ranges: list[tuple[int, int]] = []
        if use_scan is not False:
            try:
                pieces, zero_ranges = _scan_pieces(reader, fd, vmas, page_size)
                used_scan = True
            except ScanUnsupported as e:
                if use_scan:
                    raise Unsupported(f"{e}: PAGEMAP_SCAN needs Linux 6.7 or newer") from None
                notes.append("PAGEMAP_SCAN unavailable (needs Linux 6.7+): read /proc/PID/pagemap instead")
        if not used_scan:
            pieces = _all_pieces(vmas, page_size)
        bad = 0
        for start, raw, group in _fetch(reader, fd, pieces, _TOP_USER // page_size):
            if raw is None:
                bad += 1
            else:
                _decode(start, raw, group, accs, pfns)
        if bad:
            notes.append(f"{bad} pagemap range(s) could not be read: shown as absent")

        has_present = any(a.present for a in accs.values())
        look = pm.PfnLookup(b"".join(pfns.parts)) if pfns is not None and pfns.n else None
        pfn_visible = look.any_pfn if look is not None else (want_pfn and not has_present)
        if look is not None and not pfn_visible:
            notes.append(
                "PFNs hidden although /proc/kpageflags is readable "
                "(CAP_SYS_ADMIN missing in this user namespace)"
            )
        masks = shared = None
        if pfn_visible and look is not None:
            masks, shared = _enrich(reader, look, pfns, kf, kc)
    finally:
        for f in (fd, kf, kc):
            if f is not None:
                os.close(f)

    use_kf = bool(pfn_visible and kf is not None)
    use_kc = bool(pfn_visible and kc is not None)
    zero_known = use_kf or used_scan
    if zero_ranges and not use_kf:  # kpageflags, when readable, says it for every page
        _mark_zero(accs, vmas, zero_ranges, page_size)
    fin = _Finisher(masks, shared, use_kf, use_kc, zero_known)
    get = accs.get
    infos = [fin.info(get(vi), v.npages(page_size)) for vi, v in enumerate(vmas)]

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


def _all_pieces(vmas: Sequence[Vma], page_size: int, index: Sequence[int] | None = None) -> list[_Piece]:
    """Every page of ``vmas`` (``index``: their VMA indexes, default 0, 1, ...)."""
    pieces = []
    for vi, v in zip(index if index is not None else range(len(vmas)), vmas):
        p0 = v.start // page_size
        n = v.npages(page_size)
        for f in range(0, n, CHUNK_PAGES):
            pieces.append((p0 + f, min(CHUNK_PAGES, n - f), vi, f))
    return pieces


def _scan_pieces(
    reader: ProcReader, fd: int, vmas: Sequence[Vma], page_size: int
) -> tuple[list[_Piece], list[tuple[int, int]]]:
    """PAGEMAP_SCAN: the pieces of VMAs that hold present or swapped pages, and
    the address ranges of the zero page."""
    scannable = [vi for vi, v in enumerate(vmas) if v.end <= _TOP_USER]
    pieces: list[_Piece] = []
    zero: list[tuple[int, int]] = []
    ranges: list[list[int]] = []  # page ranges worth reading, nearby ones merged
    if scannable:
        # Only pages present or swapped (guard markers count as swapped) come
        # back, and only the zero-page category splits regions: few regions.
        sc = PageScanner(
            reader,
            fd,
            vec_len=SCAN_VEC_LEN,
            anyof=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask=PAGE_IS_PFNZERO,
        )
        lo, hi = vmas[scannable[0]].start, vmas[scannable[-1]].end
        last = None
        for s, e, cat in sc.regions(lo, hi):
            if cat:
                zero.append((s, e))
            ps, pe = s // page_size, e // page_size
            if last is not None and ps - last[1] <= GAP_PAGES:
                last[1] = pe
            else:
                last = [ps, pe]
                ranges.append(last)
        ri, nr = 0, len(ranges)
        for vi in scannable:
            if ri >= nr:
                break
            v = vmas[vi]
            vs, ve = v.start // page_size, v.end // page_size
            while ri < nr and ranges[ri][1] <= vs:
                ri += 1
            j = ri
            while j < nr and ranges[j][0] < ve:
                s, e = max(ranges[j][0], vs), min(ranges[j][1], ve)
                for c in range(s, e, CHUNK_PAGES):
                    pieces.append((c, min(CHUNK_PAGES, e - c), vi, c - vs))
                if ranges[j][1] > ve:
                    break  # the range continues into the next VMA
                j += 1
            ri = j
    # Above 128 TiB (the [vsyscall] page; with 5-level paging maybe more) the
    # ioctl refuses to go: read pagemap ([vsyscall] reads empty: absent).
    high = [(vi, v) for vi, v in enumerate(vmas) if v.end > _TOP_USER]
    pieces += _all_pieces([v for _, v in high], page_size, [vi for vi, _ in high])
    pieces.sort()
    return pieces, zero


def _mark_zero(accs: _Accs, vmas: Sequence[Vma], zero: list[tuple[int, int]], page_size: int) -> None:
    """Present pages in PAGE_IS_PFNZERO ranges are the zero page (PAGEMAP_SCAN, no root needed)."""
    starts = [v.start for v in vmas]
    for s, e in zero:
        vi = max(bisect_right(starts, s) - 1, 0)
        while vi < len(vmas) and vmas[vi].start < e:
            v = vmas[vi]
            acc = accs.get(vi)
            if acc is not None and v.end > s:
                zs = (max(s, v.start) - v.start) // page_size
                ze = (min(e, v.end) - v.start) // page_size
                out = []
                for entry in acc.present:
                    first, n, code, off, coff = entry
                    end = first + n
                    if end <= zs or first >= ze:
                        out.append(entry)
                        continue
                    a, b = max(first, zs), min(end, ze)
                    for x, y, c in ((first, a, code), (a, b, pm.C_ZERO), (b, end, code)):
                        if y > x:
                            d = x - first
                            out.append(
                                (x, y - x, c, off + d if off >= 0 else -1, coff + d if coff >= 0 else -1)
                            )
                acc.present = out
            vi += 1


# -- reading -----------------------------------------------------------------


def _fetch(
    reader: ProcReader, fd: int, pieces: list[_Piece], top_page: int
) -> Iterator[tuple[int, bytes | None, list[_Piece]]]:
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


class _Pfns:
    """Pagemap entries of present pages (page order), for kpageflags (all of
    them) and kpagecount (``cparts``: not all of them).

    An anonymous page with pagemap's exclusive bit is mapped once
    (precise mapcount 1, or on CONFIG_NO_PAGE_MAPCOUNT kernels: one mm, and an
    anonymous page cannot be mapped twice in one mm), so its kpagecount is 1:
    it is not looked up. That skips kpagecount for most anonymous memory.
    """

    __slots__ = ("cn", "cparts", "n", "parts")

    def __init__(self) -> None:
        self.parts: list[memoryview] = []
        self.n = 0
        self.cparts: list[memoryview] = []
        self.cn = 0


def _decode(start: int, raw: bytes, group: list[_Piece], accs: _Accs, pfns: _Pfns | None) -> None:
    """Decode one pread's entries and hand each run to the VMA (piece) it belongs to."""
    codes, excl = pm.classify_masks(raw)
    view = memoryview(raw) if pfns is not None else None
    count = excl.count
    C_ABSENT, C_SWAPPED, C_FILE = pm.C_ABSENT, pm.C_SWAPPED, pm.C_FILE
    pit = iter(group)
    piece = next(pit)
    ps = piece[0] - start
    pe = ps + piece[1]
    acc = None  # made when the piece has a page that is not absent
    for m in pm.RUN_RE.finditer(codes):
        s, e = m.span()
        code = codes[s]
        if code == C_ABSENT:
            continue  # merge_runs fills gaps with absent
        while s < e:
            while pe <= s:
                piece = next(pit, None)
                if piece is None:
                    return
                ps = piece[0] - start
                pe = ps + piece[1]
                acc = None
            if ps >= e:
                break  # between pieces: the scan said absent here
            a = s if s > ps else ps
            b = e if e < pe else pe
            first = piece[3] + a - ps
            if acc is None:
                acc = accs[piece[2]]
            if code == C_SWAPPED:
                acc.runs.append((first, b - a, code))
            else:
                nexcl = count(1, a, b)
                acc.exclusive += nexcl
                off = coff = -1
                if view is not None:
                    part = view[a * 8 : b * 8]
                    off = pfns.n
                    pfns.parts.append(part)
                    pfns.n += b - a
                    if code == C_FILE or nexcl < b - a:
                        coff = pfns.cn
                        pfns.cparts.append(part)
                        pfns.cn += b - a
                acc.present.append((first, b - a, code, off, coff))
            s = b


def _enrich(
    reader: ProcReader, look: pm.PfnLookup, pfns: _Pfns, kf: int | None, kc: int | None
) -> tuple[pm.FlagMasks | None, bytes | None]:
    """kpageflags facts (aligned with pfns.parts) and the kpagecount>1 mask (with pfns.cparts).

    The shared mask is None when no page is shared.
    """
    masks = shared = None
    if kf is not None:
        masks = pm.FlagMasks(
            look.read_facts(
                lambda lo, hi: reader.pread_global(kf, (hi - lo) * 8, lo * 8, "kpageflags"),
                pm.kpageflags_facts,
            )
        )
    if kc is not None and pfns.cn:
        shared = pm.PfnLookup(b"".join(pfns.cparts)).read_facts(
            lambda lo, hi: reader.pread_global(kc, (hi - lo) * 8, lo * 8, "kpagecount"), pm.kpagecount_facts
        )
    return masks, shared


# -- results -----------------------------------------------------------------


class _Finisher:
    """Builds each VMA's PageInfo. Equal runs, counts and infos are built once
    and shared (they are frozen): 20,000 VMAs often have only a few shapes."""

    def __init__(
        self, masks: pm.FlagMasks | None, shared: bytes | None, use_kf: bool, use_kc: bool, zero_known: bool
    ) -> None:
        if masks is not None and masks.trivial:
            masks = None  # no page has a kpageflags fact: nothing to refine
        self.masks = masks if use_kf else None
        self.shared = shared if use_kc else None
        self.use_kf, self.use_kc, self.zero_known = use_kf, use_kc, zero_known
        self._runs: dict[tuple[int, int, int], PageRun] = {}
        self._infos: dict[tuple, PageInfo] = {}
        # A VMA none of whose pages has a kpageflags fact or is shared gets
        # its info from its raw runs alone: equal raw runs (common: 20,000
        # VMAs of a few shapes) are built once.
        self._shapes: dict[tuple, PageInfo] = {}

    def info(self, acc: _Acc | None, npages: int) -> PageInfo:
        if acc is None:  # nothing present or swapped
            return self._info((((0, npages, pm.C_ABSENT),) if npages else ()), 0, 0, 0, 0, [])
        masks, shared = self.masks, self.shared
        if masks is not None or shared is not None:
            facts = masks.facts if masks is not None else None
            for _, n, _, off, coff in acc.present:
                if (facts is not None and off >= 0 and facts.count(0, off, off + n) != n) or (
                    shared is not None and coff >= 0 and shared.count(0, coff, coff + n) != n
                ):
                    return self._build(acc, npages)
        key = (npages, acc.exclusive, tuple([p[:3] for p in acc.present]), tuple(acc.runs))
        info = self._shapes.get(key)
        if info is None:
            info = self._shapes[key] = self._build(acc, npages)
        return info

    def _build(self, acc: _Acc, npages: int) -> PageInfo:
        masks, shared = self.masks, self.shared
        runs = list(acc.runs)
        thp = ksm = nshared = 0
        shared_runs: list[tuple[int, int]] = []
        for first, n, code, off, coff in acc.present:
            if masks is not None and off >= 0:
                sub = masks.refine(code, off, n)
                if sub.count(sub[0]) == n:
                    runs.append((first, n, sub[0]))
                else:
                    runs.extend(pm.iter_runs(sub, first))
                thp += masks.thp.count(1, off, off + n)
                ksm += masks.ksm.count(1, off, off + n)
            else:
                runs.append((first, n, code))
            if shared is not None and coff >= 0:
                k = shared.count(1, coff, coff + n)
                if k:
                    nshared += k
                    shared_runs.extend(pm.iter_ones(shared[coff : coff + n], first))
        merged = tuple(pm.merge_runs(runs, npages))
        return self._info(merged, acc.exclusive, thp, ksm, nshared, shared_runs)

    def _info(
        self,
        merged: tuple[tuple[int, int, int], ...],
        exclusive: int,
        thp: int,
        ksm: int,
        nshared: int,
        shared_runs: list[tuple[int, int]],
    ) -> PageInfo:
        by = [0] * len(PAGE_STATES)
        for _, n, c in merged:
            by[c] += n
        use_kf = self.use_kf
        file = by[pm.C_FILE] + by[pm.C_FILE_DIRTY]
        anon = by[pm.C_ANON] + by[pm.C_ZERO]
        counts = (
            file + anon,
            by[pm.C_SWAPPED],
            file,
            anon,
            exclusive,
            by[pm.C_FILE_DIRTY] + by[pm.C_ANON] if use_kf else None,
            by[pm.C_ZERO] if self.zero_known else None,
            thp if use_kf else None,
            ksm if use_kf else None,
            nshared if self.use_kc else None,
        )
        srun = (_merge_pairs(shared_runs) if shared_runs else ()) if self.use_kc else None
        key = (merged, counts, srun)
        info = self._infos.get(key)
        if info is None:
            info = PageInfo(
                counts=PageCounts(*counts), runs=tuple(self._run(r) for r in merged), shared_runs=srun
            )
            self._infos[key] = info
        return info

    def _run(self, r: tuple[int, int, int]) -> PageRun:
        run = self._runs.get(r)
        if run is None:
            run = self._runs[r] = PageRun(r[0], r[1], PAGE_STATES[r[2]])
        return run


def _merge_pairs(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for f, n in sorted(pairs):
        if out and out[-1][0] + out[-1][1] == f:
            out[-1][1] += n
        else:
            out.append([f, n])
    return tuple((f, n) for f, n in out)
