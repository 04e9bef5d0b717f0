"""Per-page state of every VMA: pagemap (or PAGEMAP_SCAN) plus, as root, kpageflags/kpagecount.

Two ways to the same answer:

- **scan** (Linux 6.7+): one PAGEMAP_SCAN ioctl returns run-length regions
  (absent / swapped / present, file or not, zero page). Only the present
  ranges are then read from /proc/PID/pagemap, for what the ioctl does not
  say: the exclusive bit (56) and, as root, the PFNs.
- **pagemap**: every VMA's pagemap is read (in chunks) and decoded.

Where both are read, the pagemap entries are authoritative (they are read
last, so on a running process they are the newer truth). As root the PFNs
of present pages are looked up in /proc/kpageflags and /proc/kpagecount,
read in contiguous PFN spans.

What each path can know without root differs in one place: PAGEMAP_SCAN's
PAGE_IS_PFNZERO flags the shared zero page (and the huge zero page) without
privileges, plain pagemap cannot (the PFN is hidden), so without root the
scan path reports ``zero`` pages and a count, the pagemap path reports them
as ``anon`` (or ``file``: pagemap sets bit 61 on the huge zero page) and
``zero = None``. Everything else is equal, and tests check it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..errors import AccessDenied, Unsupported
from ..model import PAGE_STATES, PageCounts, PageInfo, PageRun, Vma
from . import pagemap as pm
from .reader import ProcReader
from .scan import (DEFAULT_VEC_LEN, PAGE_IS_GUARD, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED,
                   PageScanner, ScanUnsupported)

CHUNK_PAGES = 1 << 18       # pages per pagemap read (2 MiB of entries)
GAP_PAGES = 64              # read across holes this small rather than issue another pread
SCAN_VEC_LEN = DEFAULT_VEC_LEN  # regions per PAGEMAP_SCAN call
_TOP_USER = 1 << 47         # PAGEMAP_SCAN refuses ranges outside the user address space ([vsyscall])


@dataclass(frozen=True)
class PageResult:
    infos: list[PageInfo]        # one per VMA, same order as the vmas passed in
    pfn_visible: bool
    kpageflags: bool
    kpagecount: bool
    pagemap_scan: bool           # True when the PAGEMAP_SCAN ioctl was used
    notes: tuple[str, ...]


@dataclass
class _Piece:
    """Pages [first, first+n) of VMA ``vi`` whose pagemap entries must be read."""

    vi: int
    first: int
    page: int            # absolute page number of ``first`` (address // page_size)
    n: int
    zero: bool = False   # PAGEMAP_SCAN said PAGE_IS_PFNZERO for all of it


class _Acc:
    """Per-VMA accumulator."""

    __slots__ = ("runs", "present", "exclusive")

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, int]] = []            # non-present runs (final)
        self.present: list[tuple[int, int, int, int]] = []    # (first, n, code, pfn offset)
        self.exclusive = 0


def read_pages(reader: ProcReader, vmas: Sequence[Vma], page_size: int, *,
               use_scan: bool | None = None) -> PageResult:
    """Per-page state of ``vmas`` (address order) of ``reader``'s process."""
    notes: list[str] = []
    kf = _open_optional(reader, "kpageflags")
    kc = _open_optional(reader, "kpagecount")
    fd = reader.open("pagemap")
    try:
        accs = [_Acc() for _ in vmas]
        want_pfn = kf is not None or kc is not None
        pfnlist: list[int] = []
        used_scan = False
        pieces: list[_Piece] = []
        if use_scan is not False:
            try:
                pieces = _scan_pieces(reader, fd, vmas, page_size, accs)
                used_scan = True
            except ScanUnsupported as e:
                if use_scan:
                    raise Unsupported(f"{e}: PAGEMAP_SCAN needs Linux 6.7 or newer") from None
                notes.append("PAGEMAP_SCAN unavailable (needs Linux 6.7+): read /proc/PID/pagemap instead")
        if not used_scan:
            pieces = _all_pieces(vmas, page_size)
        bad = 0
        for piece, raw in _fetch(reader, fd, pieces):
            if raw is None:
                bad += 1
            _decode(piece, raw, accs[piece.vi], pfnlist if want_pfn else None)
        if bad:
            notes.append(f"{bad} pagemap range(s) could not be read: shown as absent")

        pfn_visible = any(pfnlist) if pfnlist else (want_pfn and not any(a.present for a in accs))
        if want_pfn and pfnlist and not pfn_visible:
            notes.append("PFNs hidden although /proc/kpageflags is readable (CAP_SYS_ADMIN missing in this user namespace)")
        masks = shared = None
        if pfn_visible and pfnlist:
            masks, shared = _enrich(reader, pfnlist, kf, kc)
        use_kf = pfn_visible and kf is not None
        use_kc = pfn_visible and kc is not None
        zero_known = use_kf or used_scan
        infos = [_finish(a, v.npages(page_size), masks, shared, use_kf, use_kc, zero_known)
                 for a, v in zip(accs, vmas)]
    finally:
        os.close(fd)
        for f in (kf, kc):
            if f is not None:
                os.close(f)

    if not pfn_visible:
        unknown = "dirty/THP/KSM/shared counts unknown" if used_scan else "dirty/zero/THP/KSM/shared counts unknown"
        notes.append(f"PFNs hidden: not root (CAP_SYS_ADMIN); {unknown}")
        if used_scan:
            notes.append("zero page found with PAGEMAP_SCAN (PAGE_IS_PFNZERO), which needs no root")
    else:
        for name, ok in (("kpageflags", use_kf), ("kpagecount", use_kc)):
            if not ok:
                notes.append(f"/proc/{name} not readable: "
                             + ("dirty/zero/THP/KSM" if name == "kpageflags" else "shared") + " counts unknown")
    if not zero_known:
        odd = sum(i.counts.file for v, i in zip(vmas, infos) if _private_anon(v))
        if odd:
            notes.append(f"{odd} pages of private anonymous memory carry pagemap's file bit: the huge "
                         "zero page looks like that; root or PAGEMAP_SCAN can tell them apart")
    if use_kf:
        notes.append("anonymous pages count as dirty (kpageflags DIRTY is set only on file pages)")
    return PageResult(infos, bool(pfn_visible), use_kf, use_kc, used_scan, tuple(notes))


def _private_anon(v: Vma) -> bool:
    p = v.path
    return (v.inode == 0 and v.perms.endswith("p")
            and (p is None or p in ("[heap]", "[stack]") or p.startswith("[anon:")))


def _open_optional(reader: ProcReader, name: str) -> int | None:
    try:
        return reader.open_global(name)
    except AccessDenied:
        return None


# -- which pages need pagemap reads --------------------------------------------

def _all_pieces(vmas: Sequence[Vma], page_size: int) -> list[_Piece]:
    pieces = []
    for vi, v in enumerate(vmas):
        p0 = v.start // page_size
        n = v.npages(page_size)
        for f in range(0, n, CHUNK_PAGES):
            pieces.append(_Piece(vi, f, p0 + f, min(CHUNK_PAGES, n - f)))
    return pieces


def _scan_pieces(reader: ProcReader, fd: int, vmas: Sequence[Vma], page_size: int,
                 accs: list[_Acc]) -> list[_Piece]:
    """Run PAGEMAP_SCAN; record absent/swapped runs, return the present ranges to read."""
    scannable = [vi for vi, v in enumerate(vmas) if v.end <= _TOP_USER]
    pieces: list[_Piece] = []
    out_of_range = [vi for vi, v in enumerate(vmas) if v.end > _TOP_USER]
    if scannable:
        sc = PageScanner(reader, fd, vec_len=SCAN_VEC_LEN)
        lo, hi = vmas[scannable[0]].start, vmas[scannable[-1]].end
        regions = sc.regions(lo, hi)
        reg = next(regions, None)
        for vi in scannable:
            v = vmas[vi]
            acc = accs[vi]
            p0 = v.start // page_size
            while reg is not None and reg[1] <= v.start:
                reg = next(regions, None)
            while reg is not None and reg[0] < v.end:
                s, e, cat = max(reg[0], v.start), min(reg[1], v.end), reg[2]
                f, n = (s - v.start) // page_size, (e - s) // page_size
                if cat & PAGE_IS_PRESENT:
                    zero = bool(cat & PAGE_IS_PFNZERO)
                    for c in range(0, n, CHUNK_PAGES):
                        pieces.append(_Piece(vi, f + c, p0 + f + c, min(CHUNK_PAGES, n - c), zero))
                elif cat & PAGE_IS_SWAPPED and not cat & PAGE_IS_GUARD:
                    acc.runs.append((f, n, pm.C_SWAPPED))
                # anything else is absent: merge_runs fills the gaps
                if reg[1] > v.end:
                    break            # the region continues into the next VMA
                reg = next(regions, None)
    # [vsyscall] lies above the user address space: read its pagemap (empty: absent)
    for vi in out_of_range:
        v = vmas[vi]
        pieces.append(_Piece(vi, 0, v.start // page_size, min(v.npages(page_size), CHUNK_PAGES)))
    pieces.sort(key=lambda p: p.page)
    return pieces


# -- reading -----------------------------------------------------------------

def _fetch(reader: ProcReader, fd: int, pieces: list[_Piece]) -> Iterator[tuple[_Piece, bytes | None]]:
    """Each piece with its pagemap bytes; nearby pieces share one pread."""
    i = 0
    while i < len(pieces):
        j = i + 1
        start = pieces[i].page
        end = start + pieces[i].n
        while (j < len(pieces) and 0 <= pieces[j].page - end <= GAP_PAGES
               and pieces[j].page + pieces[j].n - start <= CHUNK_PAGES):
            end = pieces[j].page + pieces[j].n
            j += 1
        want = (end - start) * 8
        try:
            raw: bytes | None = reader.pread(fd, want, start * 8, "pagemap")
        except OSError:
            raw = None           # e.g. a VM_IO area the kernel refuses: absent
        if raw is not None and len(raw) < want:
            raw = raw[: len(raw) - len(raw) % 8] + bytes(want - len(raw) + len(raw) % 8)
        for p in pieces[i:j]:
            if raw is None:
                yield p, None
            elif i + 1 == j:
                yield p, raw
            else:
                off = (p.page - start) * 8
                yield p, raw[off: off + p.n * 8]
        i = j


def _decode(piece: _Piece, raw: bytes | None, acc: _Acc, pfnlist: list[int] | None) -> None:
    if raw is None:
        return
    codes, excl = pm.classify(raw)
    acc.exclusive += excl
    for s, n, code in pm.iter_runs(codes):
        if code == pm.C_FILE or code == pm.C_ANON:
            if piece.zero:
                code = pm.C_ZERO
            off = -1
            if pfnlist is not None:
                off = len(pfnlist)
                pfnlist.extend(pm.pfns(raw, s, s + n))
            acc.present.append((piece.first + s, n, code, off))
        elif code == pm.C_SWAPPED:
            acc.runs.append((piece.first + s, n, code))
        # absent pages need no run: merge_runs fills gaps with absent (on the
        # scan path this also covers a page that went away after the scan)


def _enrich(reader: ProcReader, pfnlist: list[int], kf: int | None, kc: int | None):
    """kpageflags masks and the kpagecount>1 mask, aligned with ``pfnlist``."""
    uniq = sorted(set(pfnlist))
    spans = pm.pfn_spans(uniq)
    masks = shared = None
    if kf is not None:
        masks = pm.FlagMasks(_lookup(reader, kf, "kpageflags", uniq, spans, pfnlist))
    if kc is not None:
        shared = pm.shared_mask(_lookup(reader, kc, "kpagecount", uniq, spans, pfnlist))
    return masks, shared


def _lookup(reader: ProcReader, fd: int, name: str, uniq: list[int],
            spans: list[tuple[int, int]], pfnlist: list[int]) -> list[int]:
    table: dict[int, int] = {}
    k = 0
    for lo, hi in spans:
        raw = reader.pread_global(fd, (hi - lo) * 8, lo * 8, name)
        raw = raw[: len(raw) - len(raw) % 8]
        vals = memoryview(raw).cast("Q").tolist()
        j = k
        while j < len(uniq) and uniq[j] < hi:
            j += 1
        got = len(vals)
        table.update((p, vals[p - lo] if p - lo < got else 0) for p in uniq[k:j])
        k = j
    return list(map(table.__getitem__, pfnlist))


# -- results -----------------------------------------------------------------

def _finish(acc: _Acc, npages: int, masks: pm.FlagMasks | None, shared: bytes | None,
            use_kf: bool, use_kc: bool, zero_known: bool) -> PageInfo:
    runs = list(acc.runs)
    thp = ksm = nshared = 0
    shared_runs: list[tuple[int, int]] = []
    for first, n, code, off in acc.present:
        if masks is not None and use_kf and off >= 0:
            for s, m, c in pm.iter_runs(masks.refine(code, off, n), first):
                runs.append((s, m, c))
            thp += masks.thp.count(1, off, off + n)
            ksm += masks.ksm.count(1, off, off + n)
        else:
            runs.append((first, n, code))
        if shared is not None and use_kc and off >= 0:
            sub = shared[off: off + n]
            nshared += sub.count(1)
            shared_runs.extend(pm.iter_ones(sub, first))
    merged = pm.merge_runs(runs, npages)
    by = [0] * len(PAGE_STATES)
    for _, n, c in merged:
        by[c] += n
    file = by[pm.C_FILE] + by[pm.C_FILE_DIRTY]
    anon = by[pm.C_ANON] + by[pm.C_ZERO]
    counts = PageCounts(
        present=file + anon,
        swapped=by[pm.C_SWAPPED],
        file=file,
        anon=anon,
        exclusive=acc.exclusive,
        dirty=by[pm.C_FILE_DIRTY] + by[pm.C_ANON] if use_kf else None,
        zero=by[pm.C_ZERO] if zero_known else None,
        thp=thp if use_kf else None,
        ksm=ksm if use_kf else None,
        shared=nshared if use_kc else None,
    )
    return PageInfo(
        counts=counts,
        runs=tuple(PageRun(f, n, PAGE_STATES[c]) for f, n, c in merged),
        shared_runs=_merge_pairs(shared_runs) if use_kc else None,
    )


def _merge_pairs(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for f, n in sorted(pairs):
        if out and out[-1][0] + out[-1][1] == f:
            out[-1][1] += n
        else:
            out.append([f, n])
    return tuple((f, n) for f, n in out)
