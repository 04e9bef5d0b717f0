"""Compare two snapshots: what changed in a process's memory between two moments.

Pure and stdlib only: two :class:`~vmainspect.model.Snapshot` objects in, a
:class:`Diff` out, rendered as a readable table or as JSON
(``vmainspect/diff@1``). Never reads /proc and never imports textual.

Pairing VMAs between the two snapshots (the kernel merges, splits and grows
them, so addresses are the only identity there is):

1. same start and end: the same region;
2. then same start (a heap or a mapping that grew or shrank at its end), then
   same end (a stack that grew down): the same region, *resized*;
3. the rest are *added* (only in B) or *removed* (only in A).

Page-state transitions are counted over the address overlap of a pair, page
by page, when both snapshots carry page runs (``--pages``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..model import Snapshot, Vma
from ..model.diff import (
    ChangeRecord,
    DeltaRecord,
    DiffReport,
    SideRecord,
    Summary,
    Transition,
    VmaRefRecord,
)
from ..safetext import printable
from ..units import human_bytes
from .diff_files import Delta, FileChange, diff_files, file_records, render_files

DIFF_SCHEMA = "vmainspect/diff@1"

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"

# The per-VMA quantities compared, each a sum of smaps fields (bytes).
METRICS: dict[str, tuple[str, ...]] = {
    "rss": ("rss",),
    "dirty": ("private_dirty", "shared_dirty"),
    "swap": ("swap",),
}
# The totals shown (from smaps_rollup).
TOTALS: dict[str, tuple[str, ...]] = {
    "rss": ("rss",),
    "pss": ("pss",),
    "dirty": ("private_dirty", "shared_dirty"),
    "anonymous": ("anonymous",),
    "swap": ("swap",),
}


@dataclass(frozen=True)
class VmaRef:
    """Enough of a VMA to name it."""

    start: int
    end: int
    perms: str
    path: str | None
    kind: str

    @classmethod
    def of(cls, v: Vma) -> VmaRef:
        return cls(v.start, v.end, v.perms, v.path, v.kind)


@dataclass(frozen=True)
class VmaChange:
    status: str  # ADDED, REMOVED or CHANGED
    a: VmaRef | None
    b: VmaRef | None
    metrics: Mapping[str, Delta]  # METRICS keys
    resized: bool = False
    perms_changed: bool = False
    path_changed: bool = False
    # (from_state, to_state, pages), most pages first; None: a side has no page runs
    transitions: tuple[tuple[str, str, int], ...] | None = None
    overlap_pages: int | None = None  # pages compared for transitions
    # added: the old VMA it was split from / grew out of; removed: the new VMA
    # it was merged into (same inode, overlapping addresses)
    overlaps: VmaRef | None = None

    @property
    def start(self) -> int:
        return (self.b or self.a).start  # type: ignore[union-attr]


@dataclass(frozen=True)
class Side:
    label: str
    pid: int
    name: str
    taken_at: str
    create_time: float | None
    pages: bool


@dataclass(frozen=True)
class Diff:
    a: Side
    b: Side
    changes: tuple[VmaChange, ...]  # address order; only VMAs with a difference
    unchanged: int  # paired VMAs with no difference
    totals: Mapping[str, Delta]
    notes: tuple[str, ...] = ()
    page_size: int = 4096
    files: tuple[FileChange, ...] | None = None  # mapped files' page cache (diff_files.py)

    @property
    def different(self) -> bool:
        return bool(self.changes)

    def count(self, what: str) -> int:
        if what in (ADDED, REMOVED):
            return sum(1 for c in self.changes if c.status == what)
        if what == "resized":
            return sum(1 for c in self.changes if c.resized)
        if what == "perms":
            return sum(1 for c in self.changes if c.perms_changed)
        if what == CHANGED:
            return sum(1 for c in self.changes if c.status == CHANGED)
        raise ValueError(what)


# --- building ---------------------------------------------------------------


def _sum(fields: Mapping[str, int], names: Iterable[str]) -> int | None:
    total = 0
    for n in names:
        v = fields.get(n)
        if v is None:
            return None
        total += v
    return total


def _metrics(a: Vma | None, b: Vma | None) -> dict[str, Delta]:
    return {
        k: Delta(_sum(a.smaps, names) if a else 0, _sum(b.smaps, names) if b else 0)
        for k, names in METRICS.items()
    }


def _page_ranges(v: Vma, page_size: int) -> list[tuple[int, int, str]]:
    """(first_page_number, end_page_number, state) in absolute page numbers."""
    base = v.start // page_size
    return [(base + r.first, base + r.first + r.count, r.state) for r in v.pages.runs]  # type: ignore[union-attr]


def page_transitions(a: Vma, b: Vma, page_size: int) -> tuple[tuple[tuple[str, str, int], ...], int] | None:
    """Pages whose state differs between ``a`` and ``b``, over their address overlap.

    Returns ((from, to, pages), ...) most first, and the number of pages
    compared; None when either VMA has no page runs.
    """
    if a.pages is None or b.pages is None:
        return None
    lo = max(a.start, b.start) // page_size
    hi = min(a.end, b.end) // page_size
    if hi <= lo:
        return (), 0
    ra, rb = _page_ranges(a, page_size), _page_ranges(b, page_size)
    counts: dict[tuple[str, str], int] = {}
    i = j = 0
    while i < len(ra) and ra[i][1] <= lo:
        i += 1
    while j < len(rb) and rb[j][1] <= lo:
        j += 1
    pos = lo
    while pos < hi and i < len(ra) and j < len(rb):
        # runs cover their VMA exactly; a gap (hostile file) counts as "unknown"
        sa, ea = (ra[i][2], ra[i][1]) if ra[i][0] <= pos else ("unknown", ra[i][0])
        sb, eb = (rb[j][2], rb[j][1]) if rb[j][0] <= pos else ("unknown", rb[j][0])
        end = min(ea, eb, hi)
        if sa != sb:
            counts[(sa, sb)] = counts.get((sa, sb), 0) + (end - pos)
        pos = end
        if ra[i][1] <= pos:
            i += 1
        if rb[j][1] <= pos:
            j += 1
    out = sorted(((f, t, n) for (f, t), n in counts.items()), key=lambda x: (-x[2], x[0], x[1]))
    return tuple(out), hi - lo


def _pair(va: tuple[Vma, ...], vb: tuple[Vma, ...]) -> tuple[list[tuple[Vma, Vma]], list[Vma], list[Vma]]:
    pairs: list[tuple[Vma, Vma]] = []
    by_range = {(v.start, v.end): v for v in vb}
    rest_a: list[Vma] = []
    used: set[int] = set()
    for v in va:
        w = by_range.get((v.start, v.end))
        if w is not None and id(w) not in used:
            pairs.append((v, w))
            used.add(id(w))
        else:
            rest_a.append(v)
    rest_b = [w for w in vb if id(w) not in used]
    for key in (lambda v: v.start, lambda v: v.end):
        index: dict[int, Vma] = {}
        for w in rest_b:
            index.setdefault(key(w), w)
        still: list[Vma] = []
        for v in rest_a:
            w = index.get(key(v))
            if w is not None and id(w) not in used and w.inode == v.inode:
                pairs.append((v, w))
                used.add(id(w))
            else:
                still.append(v)
        rest_a = still
        rest_b = [w for w in rest_b if id(w) not in used]
    return pairs, rest_a, rest_b


class _ByAddress:
    """VMAs in address order, for "which of them overlaps this range" in O(log n + overlaps).

    Snapshots hold VMAs in address order without overlaps (the kernel's order,
    checked when a file is loaded), so the first candidate is found by bisection
    and the scan stops at the first VMA starting past the range: diffing two runs
    of a program, where ASLR moved every VMA, is O(n log n), not O(n^2).
    """

    def __init__(self, vmas: tuple[Vma, ...]) -> None:
        self.vmas = sorted(vmas, key=lambda v: v.start)
        self.starts = [v.start for v in self.vmas]

    def overlapping(self, v: Vma) -> Vma | None:
        """The VMA (same inode) with the largest address overlap with ``v``."""
        vmas = self.vmas
        best, most = None, 0
        i = max(0, bisect_right(self.starts, v.start) - 1)  # the last one starting at or before v
        while i < len(vmas):
            w = vmas[i]
            i += 1
            if w.start >= v.end:
                break
            if w.end <= v.start:
                continue
            n = min(v.end, w.end) - max(v.start, w.start)
            if n > most and w.inode == v.inode:
                best, most = w, n
        return best


def _side(label: str, s: Snapshot) -> Side:
    p = s.process
    return Side(label, p.pid, p.name, s.taken_at, p.create_time, bool(s.capabilities.pages))


def diff_snapshots(a: Snapshot, b: Snapshot, *, label_a: str = "A", label_b: str = "B") -> Diff:
    """What changed from ``a`` to ``b``."""
    page_size = b.host.page_size or a.host.page_size or 4096
    notes: list[str] = []
    pa, pb = a.process, b.process
    if pa.pid != pb.pid or (
        pa.create_time is not None
        and pb.create_time is not None
        and abs(pa.create_time - pb.create_time) > 0.5
    ):
        notes.append(
            f"the snapshots are of different processes "
            f"(pid {pa.pid} {pa.name!r} and pid {pb.pid} {pb.name!r})"
        )
    if a.host.page_size != b.host.page_size or a.host.kernel != b.host.kernel:
        notes.append(
            f"taken on different kernels or page sizes "
            f"({a.host.kernel}/{a.host.page_size} and {b.host.kernel}/{b.host.page_size})"
        )
    if a.capabilities.pages != b.capabilities.pages:
        notes.append("only one snapshot has page state (--pages): page transitions not counted")
    elif not a.capabilities.pages:
        notes.append("no page state in the snapshots (take them with --pages to count page transitions)")

    pairs, removed, added = _pair(a.vmas, b.vmas)
    changes: list[VmaChange] = []
    unchanged = 0
    for v, w in pairs:
        metrics = _metrics(v, w)
        resized = (v.start, v.end) != (w.start, w.end)
        perms = v.perms != w.perms
        path = v.path != w.path
        tr = page_transitions(v, w, page_size)
        transitions, overlap = tr if tr is not None else (None, None)
        if resized or perms or path or transitions or any(d.changed for d in metrics.values()):
            changes.append(
                VmaChange(
                    CHANGED, VmaRef.of(v), VmaRef.of(w), metrics, resized, perms, path, transitions, overlap
                )
            )
        else:
            unchanged += 1
    in_a, in_b = _ByAddress(a.vmas), _ByAddress(b.vmas)
    for v in removed:
        o = in_b.overlapping(v)
        tr = page_transitions(v, o, page_size) if o else None
        changes.append(
            VmaChange(
                REMOVED,
                VmaRef.of(v),
                None,
                _metrics(v, None),
                transitions=tr[0] if tr else None,
                overlap_pages=tr[1] if tr else None,
                overlaps=VmaRef.of(o) if o else None,
            )
        )
    for w in added:
        o = in_a.overlapping(w)
        tr = page_transitions(o, w, page_size) if o else None
        changes.append(
            VmaChange(
                ADDED,
                None,
                VmaRef.of(w),
                _metrics(None, w),
                transitions=tr[0] if tr else None,
                overlap_pages=tr[1] if tr else None,
                overlaps=VmaRef.of(o) if o else None,
            )
        )
    changes.sort(key=lambda c: (c.start, c.status != REMOVED))
    totals = {k: Delta(_sum(a.totals, names), _sum(b.totals, names)) for k, names in TOTALS.items()}
    sides = (_side(label_a, a), _side(label_b, b))
    return Diff(*sides, tuple(changes), unchanged, totals, tuple(notes), page_size, diff_files(a, b))


# --- JSON -------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    # JSON_SCHEMA: the JSON Schema (draft 2020-12) of ``vmainspect diff --json``,
    # shipped as vmainspect/schemas/diff-1.json (loaded on first use)
    if name == "JSON_SCHEMA":
        from ..schemas import load

        return load(DIFF_SCHEMA)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ref(r: VmaRef | None) -> VmaRefRecord | None:
    if r is None:
        return None
    return VmaRefRecord(r.start, r.end, r.perms, r.path, r.kind)  # type: ignore[arg-type]


def _delta(d: Delta) -> DeltaRecord:
    return DeltaRecord(d.a, d.b, d.delta)


def report(d: Diff) -> DiffReport:
    """The diff as its ``vmainspect/diff@1`` document (``model.diff``)."""

    def side(s: Side) -> SideRecord:
        return SideRecord(s.label, s.pid, s.name, s.taken_at, s.create_time, s.pages)

    return DiffReport(
        a=side(d.a),
        b=side(d.b),
        different=d.different,
        page_size=d.page_size,
        summary=Summary(
            added=d.count(ADDED),
            removed=d.count(REMOVED),
            resized=d.count("resized"),
            perms_changed=d.count("perms"),
            changed=d.count(CHANGED),
            unchanged=d.unchanged,
        ),
        totals={k: _delta(v) for k, v in d.totals.items()},
        vmas=tuple(
            ChangeRecord(
                status=c.status,  # type: ignore[arg-type]
                a=_ref(c.a),
                b=_ref(c.b),
                resized=c.resized,
                perms_changed=c.perms_changed,
                path_changed=c.path_changed,
                rss=_delta(c.metrics["rss"]),
                dirty=_delta(c.metrics["dirty"]),
                swap=_delta(c.metrics["swap"]),
                overlap_pages=c.overlap_pages,
                transitions=None
                if c.transitions is None
                else tuple(Transition(f, t, n) for f, t, n in c.transitions),  # type: ignore[arg-type]
                overlaps=_ref(c.overlaps),
            )
            for c in d.changes
        ),
        notes=d.notes,
        files=file_records(d.files),
    )


def to_dict(d: Diff) -> dict[str, Any]:
    """The diff as JSON-ready data (schema ``vmainspect/diff@1``)."""
    out: dict[str, Any] = msgspec.to_builtins(report(d))
    return out


# --- text -------------------------------------------------------------------


def _signed(n: int | None) -> str:
    if n is None:
        return "?"
    if n == 0:
        return "0"
    return ("+" if n > 0 else "") + human_bytes(n)


def _range(r: VmaRef) -> str:
    return f"{r.start:012x}-{r.end:012x}"


def render_text(d: Diff) -> str:
    """A readable report: header, totals, one row per changed VMA."""
    lines = []
    for tag, s in (("---", d.a), ("+++", d.b)):
        lines.append(f"{tag} {s.label}  pid {s.pid} ({s.name})  {s.taken_at}")
    for n in d.notes:
        lines.append(f"note: {n}")
    np = d.count("perms")
    lines.append(
        f"{d.count(ADDED)} added, {d.count(REMOVED)} removed, {d.count('resized')} resized, "
        f"{np} permission change{'' if np == 1 else 's'}, {d.count(CHANGED)} changed, "
        f"{d.unchanged} unchanged VMAs"
    )
    tot = "  ".join(
        f"{k} {human_bytes(v.b)} ({_signed(v.delta)})"
        for k, v in d.totals.items()
        if v.a is not None or v.b is not None
    )
    if tot:
        lines.append(f"totals: {tot}")
    if not d.changes:
        lines.append("no differences")
        return _text(lines + render_files(d.files, d.page_size))
    header = f"  {'ADDRESS RANGE':<25} {'PERMS':<10} {'SIZE':>6} {'RSS':>7} {'DIRTY':>7} {'SWAP':>7}  PATH"
    lines += ["", header]
    for c in d.changes:
        mark = {"added": "+", "removed": "-", "changed": "~"}[c.status]
        ref = c.b or c.a
        assert ref is not None
        perms = f"{c.a.perms}->{c.b.perms}" if c.perms_changed and c.a and c.b else ref.perms
        size = human_bytes(ref.end - ref.start)
        m = c.metrics
        path = ref.path or f"[{ref.kind}]"
        if c.path_changed and c.a and c.b:
            path = f"{c.a.path} -> {c.b.path}"
        lines.append(
            f"{mark} {_range(ref):<25} {perms:<10} {size:>6} {_signed(m['rss'].delta):>7} "
            f"{_signed(m['dirty'].delta):>7} {_signed(m['swap'].delta):>7}  {path}"
        )
        if c.resized and c.a and c.b:
            lines.append(f"    resized from {_range(c.a)} ({human_bytes(c.a.end - c.a.start)})")
        if c.overlaps is not None:
            how = "split from / grew out of" if c.status == ADDED else "merged into / replaced by"
            lines.append(f"    {how} {_range(c.overlaps)} {c.overlaps.perms}")
        if c.transitions:
            parts = ", ".join(f"{f}->{t} {n}" for f, t, n in c.transitions)
            lines.append(f"    pages: {parts} (of {c.overlap_pages} compared)")
    return _text(lines + render_files(d.files, d.page_size))


def _text(lines: list[str]) -> str:
    """The report's lines: paths and names come from the target, so control characters are escaped."""
    return "\n".join(printable(line) for line in lines) + "\n"
