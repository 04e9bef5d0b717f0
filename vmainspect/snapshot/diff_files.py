"""The mapped files' page-cache state between two snapshots (part of ``vmainspect diff``).

Files pair by device and inode. A file's counts are pages (cachestat); the
page cache changes without the process doing anything (another process
reads the file, the flusher writes it back, reclaim evicts it), so these
changes are reported but do not make two snapshots "different" (diff's exit
status is about the memory map). A snapshot taken without ``files`` (before
they existed, or with them turned off) gives None: nothing is compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import MappedFile, Snapshot
from ..model.diff import DeltaRecord, FileChangeRecord
from ..units import human_bytes

COUNTS = ("cached", "dirty", "writeback", "evicted")


@dataclass(frozen=True)
class Delta:
    """A quantity in A and in B (bytes, or pages for files); None where a snapshot does not know it."""

    a: int | None
    b: int | None

    @property
    def delta(self) -> int | None:
        if self.a is None or self.b is None:
            return None
        return self.b - self.a

    @property
    def changed(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class FileChange:
    status: str  # "added", "removed" or "changed"
    path: str
    dev: str
    inode: int
    counts: dict[str, Delta]  # COUNTS keys, pages


def has_files(s: Snapshot) -> bool:
    """Were the mapped files collected? (an empty list is only known-empty without file VMAs)"""
    return bool(s.files) or not any(v.inode and v.path and v.path.startswith("/") for v in s.vmas)


def _counts(f: MappedFile | None) -> dict[str, int | None]:
    if f is None:
        return dict.fromkeys(COUNTS, 0)
    c = f.page_cache
    return {"cached": c.cached, "dirty": c.dirty, "writeback": c.writeback, "evicted": c.evicted}


def diff_files(a: Snapshot, b: Snapshot) -> tuple[FileChange, ...] | None:
    """The files added, removed or whose counts changed, in B's order then A's; None if a side has none."""
    if not (has_files(a) and has_files(b)):
        return None
    by_a = {(f.dev, f.inode): f for f in a.files}
    by_b = {(f.dev, f.inode): f for f in b.files}
    out = []
    for key, fb in by_b.items():
        fa = by_a.get(key)
        ca, cb = _counts(fa), _counts(fb)
        if fa is not None and ca == cb:
            continue
        counts = {k: Delta(ca[k], cb[k]) for k in COUNTS}
        out.append(FileChange("added" if fa is None else "changed", fb.path, fb.dev, fb.inode, counts))
    for key, fa in by_a.items():
        if key not in by_b:
            ca, cb = _counts(fa), _counts(None)
            counts = {k: Delta(ca[k], cb[k]) for k in COUNTS}
            out.append(FileChange("removed", fa.path, fa.dev, fa.inode, counts))
    return tuple(out)


def file_records(changes: tuple[FileChange, ...] | None) -> tuple[FileChangeRecord, ...] | None:
    """The changes as diff@1's ``files``."""
    if changes is None:
        return None
    return tuple(
        FileChangeRecord(
            status=f.status,  # type: ignore[arg-type]
            path=f.path,
            dev=f.dev,
            inode=f.inode,
            **{k: DeltaRecord(n.a, n.b, n.delta) for k, n in f.counts.items()},
        )
        for f in changes
    )


def _cell(n: Delta) -> str:
    """B's count and the change from A: "120 (+8)"."""
    if n.b is None:
        return "?"
    d = n.delta
    return f"{n.b:,}" + ("" if not d else f" ({d:+,})" if d is not None else " (?)")


def render_files(changes: tuple[FileChange, ...] | None, page_size: int) -> list[str]:
    """The text report's section on mapped files (paths still to be escaped by the caller)."""
    if changes is None:
        return []
    if not changes:
        return ["", "page cache of mapped files: no changes"]
    lines = ["", "page cache of mapped files (pages; not counted in 'different'):"]
    lines.append(f"  {'CACHED':>14} {'DIRTY':>12} {'WRITEBACK':>10} {'EVICTED':>12}  FILE")
    for c in changes:
        mark = {"added": "+", "removed": "-", "changed": "~"}[c.status]
        n = c.counts
        lines.append(
            f"{mark} {_cell(n['cached']):>14} {_cell(n['dirty']):>12} {_cell(n['writeback']):>10} "
            f"{_cell(n['evicted']):>12}  {c.path}"
        )
    dirty = sum(c.counts["dirty"].b or 0 for c in changes)
    if dirty:
        lines.append(f"  {human_bytes(dirty * page_size)} of the changed files' pages are dirty in B")
    return lines
