"""The VMA table's data: one frame's rows, what changed, sorting and filtering.

Pure Python, no textual. ``build_rows`` runs in the polling worker (off the
UI thread): it merges the new snapshot with the previous one so the table can
show new VMAs, removed ones (kept greyed for one tick) and RSS/dirty growth.
Sorting and filtering work on lists of row indices, never on widgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..model import FaultTick, Snapshot, Vma


def rss(v: Vma) -> int:
    return v.smaps.get("rss", 0)


def dirty(v: Vma) -> int:
    s = v.smaps
    return s.get("private_dirty", 0) + s.get("shared_dirty", 0)


def swap(v: Vma) -> int:
    return v.smaps.get("swap", 0)


@dataclass
class Rows:
    """Rows of the table for one frame: the snapshot's VMAs plus ghosts."""

    vmas: list[Vma]  # address order; ghosts merged in
    ghost: set[int] = field(default_factory=set)  # row indices of VMAs removed since the last tick
    new: set[int] = field(default_factory=set)  # row indices of VMAs that appeared
    rss_delta: dict[int, int] = field(default_factory=dict)  # row -> bytes (changed rows only)
    dirty_delta: dict[int, int] = field(default_factory=dict)
    resized: set[int] = field(default_factory=set)  # same start, different end
    faults: dict[int, tuple[float, float]] = field(default_factory=dict)  # row -> (minor/s, major/s)
    fault_period: int = 1  # above 1: ``faults`` are estimates (samples x period, FaultTick.period)
    _hay: list[str] | None = None
    _keys: dict = field(default_factory=dict)  # column key -> sort keys (built on first use)
    _orders: dict = field(default_factory=dict)  # (sort, reverse, filter) -> row indices

    def __len__(self) -> int:
        return len(self.vmas)

    def haystack(self) -> list[str]:
        """Lower-case "path kind perms" per row, built on first use (filtering)."""
        if self._hay is None:
            self._hay = [f"{v.path or ''} {v.kind} {v.perms}".lower() for v in self.vmas]
        return self._hay


def build_rows(prev: Snapshot | None, snap: Snapshot, faults: FaultTick | None = None) -> Rows:
    """Merge ``snap`` with ``prev`` (matched by VMA start address)."""
    cur = snap.vmas
    if prev is None:
        rows = Rows(list(cur))
    else:
        old = prev.vmas
        out: list[Vma] = []
        ghost: set[int] = set()
        new: set[int] = set()
        rss_d: dict[int, int] = {}
        dirty_d: dict[int, int] = {}
        resized: set[int] = set()
        i = j = 0
        n, m = len(cur), len(old)
        while i < n or j < m:
            if j >= m or (i < n and cur[i].start < old[j].start):
                new.add(len(out))
                out.append(cur[i])
                i += 1
            elif i >= n or old[j].start < cur[i].start:
                ghost.add(len(out))
                out.append(old[j])
                j += 1
            else:
                a, b = cur[i], old[j]
                if a is not b:
                    # compare only what is shown (a dataclass == walks every page run)
                    k = len(out)
                    sa, sb = a.smaps, b.smaps
                    if sa is not sb:
                        d = sa.get("rss", 0) - sb.get("rss", 0)
                        if d:
                            rss_d[k] = d
                        d = (
                            sa.get("private_dirty", 0)
                            + sa.get("shared_dirty", 0)
                            - sb.get("private_dirty", 0)
                            - sb.get("shared_dirty", 0)
                        )
                        if d:
                            dirty_d[k] = d
                    if a.end != b.end:
                        resized.add(k)
                out.append(a)
                i += 1
                j += 1
        rows = Rows(out, ghost, new, rss_d, dirty_d, resized)
    if faults is not None and faults.by_vma:
        w = faults.window_s or 1.0
        rows.fault_period = faults.period
        starts = (
            {v.start: k for k, v in enumerate(rows.vmas) if k not in rows.ghost}
            if len(faults.by_vma) > 64
            else None
        )
        for start, (mi, ma) in faults.by_vma.items():
            row = starts.get(start) if starts is not None else find_start(rows, start)
            if row is not None:
                rows.faults[row] = (mi / w, ma / w)
    return rows


def find_start(rows: Rows, start: int) -> int | None:
    """Row index of the (non-ghost) VMA starting at ``start`` (binary search)."""
    vmas = rows.vmas
    lo, hi = 0, len(vmas)
    while lo < hi:
        mid = (lo + hi) // 2
        if vmas[mid].start < start:
            lo = mid + 1
        else:
            hi = mid
    while lo < len(vmas) and vmas[lo].start == start:
        if lo not in rows.ghost:
            return lo
        lo += 1
    return None


def find_address(rows: Rows, address: int) -> tuple[int | None, bool]:
    """(row, exact): the live VMA containing ``address`` (exact=True), else the
    next one above it (exact=False), else the last one; (None, False) if empty."""
    vmas = rows.vmas
    lo, hi = 0, len(vmas)
    while lo < hi:
        mid = (lo + hi) // 2
        if vmas[mid].end <= address:
            lo = mid + 1
        else:
            hi = mid
    k = lo
    while k < len(vmas) and k in rows.ghost:
        k += 1
    if k < len(vmas):
        return k, vmas[k].start <= address
    k = len(vmas) - 1
    while k >= 0 and k in rows.ghost:
        k -= 1
    return (k, False) if k >= 0 else (None, False)


# --- columns -----------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int  # 0: takes the rest of the line
    right: bool  # right-aligned (numbers)
    sort_key: Callable[[Rows], list]


def _keys(f: Callable[[Vma], object]) -> Callable[[Rows], list]:
    return lambda rows: [f(v) for v in rows.vmas]


def _flt_keys(rows: Rows) -> list:
    fl = rows.faults
    return [sum(fl[k]) if k in fl else -1.0 for k in range(len(rows.vmas))]


COLUMNS: tuple[Column, ...] = (
    Column("address", "Address range", 25, False, _keys(lambda v: v.start)),
    Column("perms", "Perm", 4, False, _keys(lambda v: v.perms)),
    Column("kind", "Kind", 12, False, _keys(lambda v: v.kind)),
    Column("size", "Size", 5, True, _keys(lambda v: v.end - v.start)),
    Column("rss", "RSS", 5, True, _keys(rss)),
    Column("dirty", "Dirty", 5, True, _keys(dirty)),
    Column("swap", "Swap", 5, True, _keys(swap)),
    Column("flt", "flt/s", 5, True, _flt_keys),
    Column("path", "Path", 0, False, _keys(lambda v: v.path or "")),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
_BY_KEY: Mapping[str, Column] = {c.key: c for c in COLUMNS}
# Numbers sort biggest first by default, like htop.
DESCENDING_FIRST = frozenset({"size", "rss", "dirty", "swap", "flt"})


def order(rows: Rows, sort: str = "address", reverse: bool = False, filter_text: str = "") -> list[int]:
    """Row indices to show: filtered (all words must occur in path/kind/perms), then sorted.

    Results (and each column's sort keys) are kept on ``rows`` for the frame's
    life: flipping between sorts or filters costs a lookup the second time.
    The caller must not modify the returned list."""
    words = filter_text.lower().split()
    view = (sort, reverse, " ".join(words))
    cached = rows._orders.get(view)
    if cached is not None:
        return cached
    n = len(rows.vmas)
    if words:
        hay = rows.haystack()
        if len(words) == 1:
            w = words[0]
            idx = [k for k, h in enumerate(hay) if w in h]
        else:
            idx = [k for k, h in enumerate(hay) if all(w in h for w in words)]
    else:
        idx = list(range(n))
    if sort == "address":
        # rows are already in address order (ghosts merged in)
        if reverse:
            idx.reverse()
    else:
        keys = rows._keys.get(sort)
        if keys is None:
            keys = rows._keys[sort] = _BY_KEY[sort].sort_key(rows)
        # stable: ties stay in address order
        idx.sort(key=keys.__getitem__, reverse=reverse)
    if len(rows._orders) >= 16:
        rows._orders.clear()
    rows._orders[view] = idx
    return idx
