"""``vmainspect diff --json``: ``vmainspect/diff@1``.

What changed in a process's memory between two snapshots. Sizes are bytes;
null means unknown (a side that does not know a quantity), never zero.
``snapshot.diff`` computes a ``Diff`` and turns it into a ``DiffReport``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct, field

from .snapshot import U64, Count, PageState, VmaKind

DIFF_SCHEMA = "vmainspect/diff@1"

IntOrNull = int | None


class DeltaRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """A quantity in A and in B, and b - a (null when either is unknown)."""

    a: IntOrNull
    b: IntOrNull
    delta: IntOrNull


class VmaRefRecord(Struct, frozen=True):
    """Enough of a VMA to name it; null when it does not exist on that side."""

    start: U64
    end: U64
    perms: Annotated[str, Meta(pattern=r"^[r-][w-][x-][psS-]$")]
    path: str | None
    kind: VmaKind


class SideRecord(Struct, frozen=True):
    source: Annotated[
        str, Meta(description="Where the snapshot came from: a file, a recording moment, or a live PID.")
    ]
    pid: Count
    name: str
    taken_at: str
    create_time: Annotated[
        float | None, Meta(description="Process start time (seconds since the epoch), null if unknown.")
    ]
    pages: Annotated[bool, Meta(description="The snapshot carries per-page runs.")]


class Summary(Struct, frozen=True):
    """Counts of VMAs by kind of change; resized and perms_changed are subsets of changed."""

    added: Count
    removed: Count
    resized: Count
    perms_changed: Count
    changed: Count
    unchanged: Count


class Transition(Struct, frozen=True):
    from_: PageState = field(name="from")
    to: PageState
    pages: Annotated[int, Meta(ge=1)]


class ChangeRecord(Struct, frozen=True):
    status: Literal["added", "removed", "changed"]
    a: VmaRefRecord | None
    b: VmaRefRecord | None
    resized: bool
    perms_changed: bool
    path_changed: bool
    rss: DeltaRecord
    dirty: DeltaRecord
    swap: DeltaRecord
    overlap_pages: Annotated[
        IntOrNull,
        Meta(description="Pages compared over the address overlap; null without pages on both sides."),
    ]
    transitions: Annotated[
        tuple[Transition, ...] | None,
        Meta(
            description="Pages whose state changed over the overlap, most first; null without pages on both sides."
        ),
    ]
    overlaps: Annotated[
        VmaRefRecord | None,
        Meta(
            description=(
                "For an added or removed VMA: the VMA of the other side it overlaps (split, merged, replaced)."
            )
        ),
    ]


class FileChangeRecord(Struct, frozen=True):
    """A mapped file whose page-cache state changed (pages, from cachestat), by device and inode."""

    status: Literal["added", "removed", "changed"]
    path: str
    dev: Annotated[str, Meta(pattern=r"^[0-9a-f]{1,8}:[0-9a-f]{1,8}$")]
    inode: U64
    cached: DeltaRecord
    dirty: DeltaRecord
    writeback: DeltaRecord
    evicted: DeltaRecord


class DiffReport(Struct, frozen=True, tag_field="schema", tag=DIFF_SCHEMA):
    schema: ClassVar[str] = DIFF_SCHEMA

    a: Annotated[SideRecord, Meta(description="The earlier snapshot (A).")]
    b: Annotated[SideRecord, Meta(description="The later snapshot (B).")]
    different: Annotated[bool, Meta(description="True when any VMA was added, removed or changed.")]
    page_size: Annotated[int, Meta(ge=1)]
    summary: Summary
    totals: Annotated[
        dict[str, DeltaRecord],
        Meta(description="smaps_rollup totals (rss, pss, dirty, anonymous, swap) in A and B."),
    ]
    vmas: Annotated[
        tuple[ChangeRecord, ...],
        Meta(description="One entry per VMA that was added, removed or changed, in address order."),
    ]
    notes: tuple[str, ...]
    files: Annotated[
        tuple[FileChangeRecord, ...] | None,
        Meta(
            description=(
                "Mapped files whose page-cache state changed (additive); null when a snapshot has no "
                "files. Not counted in different: the page cache changes without the process."
            )
        ),
    ] = None


# a and b exist exactly on the sides the status says
CHANGE_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"status": {"const": "added"}}},
            "then": {"properties": {"a": {"type": "null"}, "b": {"type": "object"}}},
        },
        {
            "if": {"properties": {"status": {"const": "removed"}}},
            "then": {"properties": {"a": {"type": "object"}, "b": {"type": "null"}}},
        },
        {
            "if": {"properties": {"status": {"const": "changed"}}},
            "then": {"properties": {"a": {"type": "object"}, "b": {"type": "object"}}},
        },
    ]
}
