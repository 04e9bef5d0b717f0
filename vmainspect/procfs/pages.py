"""Per-page state of every VMA: pagemap (and PAGEMAP_SCAN) plus, as root, kpageflags/kpagecount.

Two ways to the same answer:

- **pagemap**: every VMA's /proc/PID/pagemap is read (nearby VMAs with one
  pread, a huge VMA in chunks) and decoded in bulk.
- **scan** (Linux 6.7+): one PAGEMAP_SCAN ioctl first finds the ranges that
  hold present or swapped pages (and the zero page); only those are read
  from pagemap. A mostly empty address space (a 64 GiB reservation with a
  few pages in use) costs what its used pages cost, not what its size does.
  On a dense one (smaps: one page in ``DENSE_RATIO`` resident or swapped)
  the regions would cost more than they save (a fragmented heap returns one
  per page): every page is read, and the ioctl only finds the zero page.

Either way every page's state comes from its pagemap entry (present, swap,
file and exclusive bits), so both paths give the same answer. As root the
PFNs of present pages are looked up in /proc/kpageflags and
/proc/kpagecount, read in contiguous PFN spans, one pagemap read at a time
(memory follows the runs found, not the pages read: see ``pageruns``):
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

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from operator import lt, sub

from .. import gcpause
from ..errors import AccessDenied, ProcessGone, Unsupported
from ..model import PageInfo, Vma
from . import locktime
from .locktime import LockTime, measured
from .pageruns import Infos, PageRuns, Piece
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
# only finds the zero page (see _scan_pieces, and docs/kernel-notes.md,
# "PAGEMAP_SCAN on a fragmented heap").
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


def read_pages(
    reader: ProcReader,
    vmas: Sequence[Vma],
    page_size: int,
    *,
    use_scan: bool | None = None,
    lock_time: LockTime | None = None,
) -> PageResult:
    """Per-page state of ``vmas`` (address order) of ``reader``'s process.

    ``use_scan``: None = PAGEMAP_SCAN when the kernel has it (Linux 6.7+),
    True = require it (``Unsupported`` otherwise), False = plain pagemap reads.
    Raises ``ProcessGone``/``AccessDenied`` (via ProcReader) for the process;
    /proc/kpageflags and /proc/kpagecount being unreadable is not an error:
    what they would tell is then unknown (None). ``lock_time``: gets the CPU
    time of the PAGEMAP_SCAN ioctls and pagemap reads (they hold the process's
    mmap lock; the kpageflags/kpagecount reads do not), as ``"pagemap"``.
    """
    # Nothing made here forms a reference cycle: the cyclic garbage collector
    # would only rescan the arrays' neighbours.
    with gcpause.paused():
        return _read_pages(reader, vmas, page_size, use_scan, lock_time)


def _read_pages(
    reader: ProcReader, vmas: Sequence[Vma], page_size: int, use_scan: bool | None, timer: LockTime | None
) -> PageResult:
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
                with measured(timer, "pagemap"):
                    pieces, zero = _scan_pieces(reader, fd, vmas, page_size)
                used_scan = True
            except ScanUnsupported as e:
                if use_scan:
                    raise Unsupported(f"{e}: PAGEMAP_SCAN needs Linux 6.7 or newer") from None
                notes.append("PAGEMAP_SCAN unavailable (needs Linux 6.7+): read /proc/PID/pagemap instead")
        if not used_scan:
            pieces = _all_pieces(vmas, page_size)
        found = PageRuns(reader, kf, kc, zero)
        bad = 0
        for start, raw, group in _fetch(reader, fd, pieces, _TOP_USER // page_size, timer):
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
    infos = found.infos(vmas, page_size, Infos(use_kf, use_kc, zero_known))

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
    reader: ProcReader, fd: int, pieces: list[Piece], top_page: int, timer: LockTime | None = None
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
        t = locktime.now()
        try:
            raw: bytes | None = reader.pread(fd, want, start * 8, "pagemap")
        except OSError:
            raw = None  # e.g. a VM_IO area the kernel refuses: absent
        finally:
            if timer is not None:  # the pread only: kpageflags and decoding take no lock of the process
                timer.add("pagemap", locktime.now() - t)
        if raw is not None and len(raw) < want:
            if start + len(raw) // 8 < top_page:
                raise ProcessGone(reader.pid, "it exited while its pages were read")
            # the kernel stops at the end of the user address space ([vsyscall])
            raw = raw[: len(raw) - len(raw) % 8].ljust(want, b"\0")
        yield start, raw, pieces[i:j]
        i = j
