"""Page runs -> grid cells for the page map (pure, no textual).

A cell shows one page, or ``per_cell`` pages when the VMA is larger than the
grid; it takes the state that covers most of its pages. Work is linear in
runs + cells, never in pages, so a 1 TiB reservation costs what a 4 KiB one
does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import PAGE_STATES, FaultTick, PageInfo, Vma

STATE_INDEX = {s: i for i, s in enumerate(PAGE_STATES)}


@dataclass(frozen=True)
class Cell:
    state: str
    shared: bool = False
    changed: bool = False
    faulted: bool = False
    mixed: bool = False  # the cell's pages are not all in one state


def scale_for(npages: int, ncells: int) -> int:
    """Pages per cell: 1, or the smallest power of two that makes the VMA fit."""
    if ncells <= 0 or npages <= ncells:
        return 1
    per = 1
    while (npages + per - 1) // per > ncells:
        per *= 2
    return per


def _counts(pages: PageInfo, npages: int, per: int) -> list[list[int]]:
    ncells = (npages + per - 1) // per
    acc = [[0] * len(PAGE_STATES) for _ in range(ncells)]
    for run in pages.runs:
        si = STATE_INDEX.get(run.state, 0)
        first = run.first
        last = min(run.first + run.count, npages)  # exclusive
        if first >= last:
            continue
        c0, c1 = first // per, (last - 1) // per
        if c0 == c1:
            acc[c0][si] += last - first
            continue
        acc[c0][si] += (c0 + 1) * per - first
        for c in range(c0 + 1, c1):
            acc[c][si] += per
        acc[c1][si] += last - c1 * per
    return acc


def _marks(ranges, npages: int, per: int) -> set[int]:
    out: set[int] = set()
    for first, count in ranges:
        if count <= 0:
            continue
        a = first // per
        b = (min(first + count, npages) - 1) // per
        out.update(range(a, b + 1))
    return out


def cells(
    vma: Vma, page_size: int, per: int, prev: Vma | None = None, faults: FaultTick | None = None
) -> list[Cell]:
    """The grid for ``vma`` (which must have ``pages``) at ``per`` pages a cell."""
    assert vma.pages is not None
    npages = vma.npages(page_size)
    acc = _counts(vma.pages, npages, per)
    shared = _marks(vma.pages.shared_runs or (), npages, per)
    changed: set[int] = set()
    if (
        prev is not None
        and prev.pages is not None
        and prev.start == vma.start
        and prev.pages.runs != vma.pages.runs
    ):
        old = _counts(prev.pages, prev.npages(page_size), per)
        for c in range(len(acc)):
            if c >= len(old) or old[c] != acc[c]:
                changed.add(c)
    faulted: set[int] = set()
    if faults is not None:
        addrs = [s.addr for s in faults.recent]
        addrs.extend(getattr(faults, "pages", ()))
        for a in addrs:
            if vma.start <= a < vma.end:
                faulted.add((a - vma.start) // page_size // per)
    out = []
    made: dict[tuple, Cell] = {}  # few distinct cells: share them (and hash them once)
    marked = shared or changed or faulted
    for c, counts in enumerate(acc):
        used = [i for i, x in enumerate(counts) if x]
        if len(used) == 1:
            best, mixed = used[0], False
        else:
            best = max(range(len(counts)), key=counts.__getitem__)
            mixed = len(used) > 1
        key = (
            (best, c in shared, c in changed, c in faulted, mixed)
            if marked
            else (best, False, False, False, mixed)
        )
        cell = made.get(key)
        if cell is None:
            cell = made[key] = Cell(PAGE_STATES[best], *key[1:])
        out.append(cell)
    return out
