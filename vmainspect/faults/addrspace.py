"""Where each sampled fault landed: the mapping as it was when the fault happened.

A window's faults are placed, in order of preference, in

1. the VMAs of the snapshot read at the window's end (most faults: one bisect
   per VMA that took faults);
2. the mappings the kernel reported during this window or the one before
   (PERF_RECORD_MMAP2 records of ``mmap``, ``mremap`` and brk growth: a heap that
   grew, was written and shrank again before the map was read is still
   reported at its largest), the newest covering record first;
3. the VMAs of the snapshot read at the window's start (a mapping unmapped
   during the window, which no record reports).

What none of them covers is "unattributed" (a mapping made and unmapped in a
window whose record was lost, for example). Rows are keyed by the mapping's
identity, ``(start, kind, path)``, not by its extent: a heap that grows and
shrinks is one row, shown with the largest extent seen. The heap is one
identity whatever its start: the kernel names the whole brk range "[heap]",
and madvise or mprotect on part of it splits it into several VMAs (the row
then spans from the lowest start to the highest end seen).

Faults at an address that was unmapped and mapped again within one window go
to the mapping there at the window's end (the sampler keeps no per-sample
time for that; see docs/faults.md).
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import KIND_HEAP
from ..procfs.parse import decode_path, vma_kind
from .perf import MmapRecord

MAP_SHARED = 0x01
MAX_RECORDS = 4096  # records kept from one window to the next (a process mmapping in a loop)

AddrCounts = tuple[list[int], Counter[int]]  # sorted distinct addresses, and their counts


@dataclass(frozen=True)
class Mapping:
    """A mapping's identity (start, kind, path) and the extent and permissions last seen."""

    start: int
    end: int
    perms: str
    kind: str
    path: str | None

    @property
    def key(self) -> tuple[int, str, str | None]:
        return identity(self.start, self.kind, self.path)


def identity(start: int, kind: str, path: str | None) -> tuple[int, str, str | None]:
    """The row key of a mapping: (start, kind, path); the brk heap is one row whatever its start."""
    return (0 if kind == KIND_HEAP else start, kind, path)


def widest(seen: Mapping | None, m: Mapping) -> Mapping:
    """The extent of both (the heap's split parts, one mapping seen at two sizes)."""
    if seen is None:
        return m
    if m.start >= seen.start and m.end <= seen.end:
        return seen
    return Mapping(min(seen.start, m.start), max(seen.end, m.end), m.perms, m.kind, m.path)


def from_vma(v: Any) -> Mapping:
    return Mapping(v.start, v.end, v.perms, v.kind, v.path)


def from_record(r: MmapRecord) -> Mapping:
    perms = (
        ("r" if r.prot & 1 else "-")
        + ("w" if r.prot & 2 else "-")
        + ("x" if r.prot & 4 else "-")
        + ("s" if r.flags & MAP_SHARED else "p")
    )
    path = (
        None if r.filename in ("//anon", "") else decode_path(r.filename.encode("utf-8", "surrogateescape"))
    )
    return Mapping(r.addr, r.end, perms, vma_kind(perms, path), path)


@dataclass
class Attribution:
    """One window's faults per mapping identity, and what no source covered."""

    by_mapping: dict[tuple[int, str, str | None], list[int]]  # key -> [minor, major]
    mappings: dict[tuple[int, str, str | None], Mapping]
    by_start: dict[int, list[int]]  # start of the end snapshot's VMA (or of the mapping) -> [minor, major]
    unattributed: int
    from_history: int  # faults placed by records or the window-start snapshot


def _place(
    intervals: Sequence[tuple[int, int, Mapping]],
    starts: list[int],
    keys: list[int],
    get: Any,
    into: dict[Mapping, int],
) -> list[int]:
    """Count the addresses ``keys`` (sorted) into the intervals (sorted, disjoint); the leftovers."""
    left: list[int] = []
    p, n = 0, len(keys)
    while p < n:
        a = keys[p]
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < intervals[i][1]:
            q = bisect.bisect_left(keys, intervals[i][1], p)
            m = intervals[i][2]
            into[m] = into.get(m, 0) + sum(map(get, keys[p:q]))
        else:
            nxt = starts[i + 1] if i + 1 < len(starts) else 1 << 64
            q = bisect.bisect_left(keys, nxt, p)
            left.extend(keys[p:q])
        p = q
    return left


def _place_in_snapshot(snapshot: Any, keys: list[int], get: Any, into: dict[Mapping, int]) -> list[int]:
    """``_place`` over a snapshot's VMAs (one ``vma_at`` per block of addresses; no list built)."""
    left: list[int] = []
    starts: list[int] | None = None
    p, n = 0, len(keys)
    while p < n:
        v = snapshot.vma_at(keys[p])
        if v is not None:
            q = bisect.bisect_left(keys, v.end, p)
            m = from_vma(v)
            into[m] = into.get(m, 0) + sum(map(get, keys[p:q]))
        else:
            if starts is None:
                starts = [x.start for x in snapshot.vmas]
            i = bisect.bisect_right(starts, keys[p])
            nxt = starts[i] if i < len(starts) else 1 << 64
            q = bisect.bisect_left(keys, nxt, p)
            left.extend(keys[p:q])
        p = q
    return left


def _record_intervals(records: Iterable[MmapRecord]) -> list[tuple[int, int, Mapping]]:
    """Disjoint intervals painted from the records, the newest on top."""
    out: list[tuple[int, int, Mapping]] = []
    for r in sorted(records, key=lambda r: r.time):
        if r.length <= 0:
            continue
        m = from_record(r)
        lo, hi = r.addr, r.end
        kept: list[tuple[int, int, Mapping]] = []
        for a, b, old in out:  # few records per window: a plain pass
            if b <= lo or a >= hi:
                kept.append((a, b, old))
                continue
            if a < lo:
                kept.append((a, lo, old))
            if b > hi:
                kept.append((hi, b, old))
        kept.append((lo, hi, m))
        kept.sort(key=lambda t: t[0])
        out = kept
    return out


def one_mapping(raw: bytearray, snapshot: Any, elf_data: Callable[[Any, Any], bool]) -> AddrCounts | None:
    """All of a window's addresses in one mapping, when nobody needs them one by one.

    For a caller that lists no faulted pages, and outside ELF data (``elf_data``: no
    object symbols to name), only the count per mapping is used: when the lowest and
    the highest address (two C-level passes) lie in one VMA of ``snapshot``, the window
    is that count at one address, and the per-address ``Counter`` (three times the
    cost) is skipped."""
    if not raw or snapshot is None:
        return None
    with memoryview(raw) as whole, whole.cast("Q") as mv:
        lo, hi, n = min(mv), max(mv), len(mv)
    v = snapshot.vma_at(lo)
    if v is None or hi >= v.end or elf_data(v, snapshot):
        return None
    return [lo], Counter({lo: n})


class AddressSpace:
    """The process's mappings through the windows: snapshots at their ends and the records between."""

    def __init__(self, baseline: Any = None) -> None:
        self.previous = baseline  # the snapshot at the current window's start
        self._older: list[MmapRecord] = []  # the previous window's records
        self._records: deque[MmapRecord] = deque(maxlen=MAX_RECORDS)

    def add(self, records: Iterable[MmapRecord]) -> None:
        self._records.extend(records)

    def attribute(self, snapshot: Any, lists: Sequence[AddrCounts]) -> Attribution:
        """Place one window's faults (per kind: minor, major); ``advance`` moves on to the next window."""
        res = Attribution({}, {}, {}, 0, 0)
        records = self._older + list(self._records)
        ivs: list[tuple[int, int, Mapping]] | None = None
        for kind, (keys, cnt) in enumerate(lists):
            get = cnt.__getitem__
            counts: dict[Mapping, int] = {}
            left = keys
            if snapshot is not None:
                left = _place_in_snapshot(snapshot, left, get, counts)
            placed = sum(counts.values())
            if left and records:
                if ivs is None:
                    ivs = _record_intervals(records)
                left = _place(ivs, [t[0] for t in ivs], left, get, counts)
            if left and self.previous is not None and self.previous is not snapshot:
                left = _place_in_snapshot(self.previous, left, get, counts)
            res.from_history += sum(counts.values()) - placed
            res.unattributed += sum(map(get, left))
            for m, c in counts.items():
                row = res.by_mapping.setdefault(m.key, [0, 0])
                row[kind] += c
                res.mappings[m.key] = widest(res.mappings.get(m.key), m)
                res.by_start.setdefault(m.start, [0, 0])[kind] += c
        return res

    def advance(self, snapshot: Any) -> None:
        """The window is closed: ``snapshot`` is the next one's start; its records become the older ones."""
        if snapshot is not None:
            self.previous = snapshot
        self._older = list(self._records)
        self._records.clear()
