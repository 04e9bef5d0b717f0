"""Page runs -> grid cells for the page map (pure, no textual).

A cell shows one page, or ``per`` pages when the range is larger than the
grid. A cell never hides a page: it takes the most significant state among
its pages (dirty file page before swapped, swapped before anonymous,
anonymous before clean file, file before the zero page, anything before
absent), ``mixed`` says its pages are not all in that state, and the
``changed`` and ``faulted`` marks win over every state. 64 touched pages in
1024 at 8 pages a cell therefore show as 64 anonymous cells, never as a grey
map. ``cells(..., first=, count=)`` draws a part of the VMA only (the
lecture zooms to a step's own range). Work is linear in runs + cells, never
in pages, so a 1 TiB reservation costs what a 4 KiB one does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model import ABSENT, ANON, FILE, FILE_DIRTY, PAGE_STATES, SWAPPED, ZERO, FaultTick, PageInfo, Vma

STATE_INDEX = {s: i for i, s in enumerate(PAGE_STATES)}
# most significant last: the state a multi-page cell shows is the highest present
SIGNIFICANCE = (ABSENT, ZERO, FILE, ANON, SWAPPED, FILE_DIRTY)
_RANK = [SIGNIFICANCE.index(s) for s in PAGE_STATES]


@dataclass(frozen=True)
class Cell:
    state: str
    shared: bool = False
    changed: bool = False
    faulted: bool = False
    mixed: bool = False  # the cell's pages are not all in one state


def scale_for(npages: int, ncells: int) -> int:
    """Pages per cell: 1, or the smallest power of two that makes the range fit."""
    if ncells <= 0 or npages <= ncells:
        return 1
    per = 1
    while (npages + per - 1) // per > ncells:
        per *= 2
    return per


def _counts(pages: PageInfo, first: int, npages: int, per: int) -> list[list[int]]:
    """Per cell, how many of its pages are in each state (pages ``first`` .. ``first + npages``)."""
    ncells = (npages + per - 1) // per
    acc = [[0] * len(PAGE_STATES) for _ in range(ncells)]
    for run in pages.runs:
        si = STATE_INDEX.get(run.state, 0)
        lo = max(run.first, first) - first
        hi = min(run.first + run.count, first + npages) - first  # exclusive
        if lo >= hi:
            continue
        c0, c1 = lo // per, (hi - 1) // per
        if c0 == c1:
            acc[c0][si] += hi - lo
            continue
        acc[c0][si] += (c0 + 1) * per - lo
        for c in range(c0 + 1, c1):
            acc[c][si] += per
        acc[c1][si] += hi - c1 * per
    return acc


def _marks(ranges: Iterable[tuple[int, int]], first: int, npages: int, per: int) -> set[int]:
    out: set[int] = set()
    for f, count in ranges:
        lo, hi = max(f, first) - first, min(f + count, first + npages) - first
        if lo < hi:
            out.update(range(lo // per, (hi - 1) // per + 1))
    return out


def cells(
    vma: Vma,
    page_size: int,
    per: int,
    prev: Vma | None = None,
    faults: FaultTick | None = None,
    *,
    first: int = 0,
    count: int | None = None,
) -> list[Cell]:
    """The grid for pages ``first`` .. ``first + count`` of ``vma`` (which must have ``pages``)."""
    assert vma.pages is not None
    total = vma.npages(page_size)
    first = max(0, min(first, total))
    npages = total - first if count is None else max(0, min(count, total - first))
    acc = _counts(vma.pages, first, npages, per)
    shared = _marks(vma.pages.shared_runs or (), first, npages, per)
    changed: set[int] = set()
    if (
        prev is not None
        and prev.pages is not None
        and prev.start == vma.start
        and prev.pages.runs != vma.pages.runs
    ):
        old = _counts(prev.pages, first, min(npages, max(0, prev.npages(page_size) - first)), per)
        for c in range(len(acc)):
            if c >= len(old) or old[c] != acc[c]:
                changed.add(c)
    faulted: set[int] = set()
    if faults is not None:
        addrs = [s.addr for s in faults.recent]
        addrs.extend(faults.pages)
        lo, hi = vma.start + first * page_size, vma.start + (first + npages) * page_size
        for a in addrs:
            if lo <= a < hi:
                faulted.add((a - lo) // page_size // per)
    out = []
    made: dict[tuple[int, bool, bool, bool, bool], Cell] = {}  # few distinct cells: share them
    for c, counts in enumerate(acc):
        used = [i for i, x in enumerate(counts) if x]
        best = max(used, key=_RANK.__getitem__) if used else STATE_INDEX[ABSENT]
        key = (best, c in shared, c in changed, c in faulted, len(used) > 1)
        cell = made.get(key)
        if cell is None:
            cell = made[key] = Cell(PAGE_STATES[best], *key[1:])
        out.append(cell)
    return out
