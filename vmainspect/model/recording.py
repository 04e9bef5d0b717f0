"""The lines of a recording, ``vmainspect/recording@1`` (JSON Lines).

Line 1 is a ``Header``; then, in time order, frames and notes: the first
frame a ``SnapshotFrame`` (a whole ``vmainspect/snapshot@1`` document), each
later one a ``PatchFrame`` (the snapshot as a patch against the previous
frame's snapshot document, see ``recording.patch``), and ``Note``s, the last
of which says how the recording ended. ``t`` is seconds since the recording
started (monotonic clock), rounded to ms.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from .frame import ProcessVitals
from .snapshot import U64, UTC_TIME_PATTERN, Count, HostInfo, Snapshot

RECORDING_SCHEMA = "vmainspect/recording@1"

End = Literal["exited", "interrupted", "duration", "error"]
Seconds = Annotated[
    float, Meta(ge=0, description="Seconds since the recording started (monotonic clock), rounded to ms.")
]
TransitionState = Annotated[
    Literal["absent", "swapped", "file", "file-dirty", "anon", "zero", "unmapped"],
    Meta(description='A snapshot page state, or "unmapped" (no VMA there in that snapshot).'),
]


class Header(Struct, frozen=True, tag_field="schema", tag=RECORDING_SCHEMA):
    """Line 1: what is recorded (from the first snapshot) and how."""

    schema: ClassVar[str] = RECORDING_SCHEMA

    started_at: Annotated[str, Meta(pattern=UTC_TIME_PATTERN, description="ISO 8601, UTC.")]
    interval_s: Annotated[float, Meta(gt=0, lt=1e9, description="Seconds between frames asked for.")]
    pid: Count
    name: str
    cmdline: tuple[str, ...]
    create_time: Annotated[
        float | None, Meta(description="Process start time, seconds since the epoch; null if unknown.")
    ]
    host: HostInfo
    pages: Annotated[bool, Meta(description="Frames carry per-page runs (record --pages).")]
    faults: Annotated[bool, Meta(description="Frames carry page-fault ticks.")]
    vmainspect: Annotated[str, Meta(description="Version of the recorder.")]
    working_set: Annotated[
        bool,
        Meta(
            description=(
                "record --wss: the referenced bits were reset after each frame, so from the second frame "
                "on a VMA's smaps referenced is the bytes it touched since the previous frame (additive)."
            )
        ),
    ] = False


class FaultTickRecord(Struct, frozen=True, omit_defaults=True):
    """Page faults seen since the previous frame (``model.FaultTick`` as JSON:
    tuples as arrays; a recent sample's data symbol is not recorded)."""

    mode: Annotated[
        Literal["perf", "counters"],
        Meta(description="perf: sampled faults; counters: /proc minflt/majflt deltas (reason says why)."),
    ]
    window_s: Annotated[float, Meta(ge=0)]
    minor: Count
    major: Count
    lost: Annotated[int | None, Meta(description="Samples lost; null in counters mode.")]
    by_vma: Annotated[
        tuple[tuple[U64, Count, Count], ...],
        Meta(description="[VMA start, minor, major] per VMA that took faults (perf only)."),
    ]
    by_symbol: Annotated[
        tuple[tuple[str, str, Annotated[int, Meta(ge=1)]], ...],
        Meta(description="[function, dso, faults], most first (perf only)."),
    ]
    recent: Annotated[
        tuple[tuple[U64, Count, Count, U64, U64, bool, str | None, str | None], ...],
        Meta(
            description=(
                "The newest samples, oldest first: [time_ns (perf clock), pid, tid, ip, addr, major, "
                'symbol ("func+0x12") or null, dso or null].'
            )
        ),
    ]
    reason: str | None
    by_thread: Annotated[
        tuple[tuple[Annotated[int, Meta(ge=1)], Count, Count], ...],
        Meta(description="[tid, minor, major] per thread."),
    ]
    pages: Annotated[
        tuple[U64, ...],
        Meta(
            max_length=65536,
            description="Page-aligned addresses that faulted in the window (perf only, sorted, at most 65536).",
        ),
    ]
    by_transition: Annotated[
        tuple[tuple[TransitionState, TransitionState, Annotated[int, Meta(ge=1)]], ...],
        Meta(
            description=(
                "[state before, state after, pages] of the faulted pages between the previous frame's "
                'snapshot and this one (both with pages; a state or "unmapped"), most first. Absent in '
                "recordings written before it was added: read as []."
            )
        ),
    ] = ()
    period: Annotated[
        int,
        Meta(
            ge=1,
            description=(
                "Sample period of the window (one fault in N sampled, raised under a rate cap: "
                "record --max-fault-rate). Above 1, minor and major are still exact (the events' own "
                "counts) but by_vma, by_symbol and by_thread are estimates (samples x period) and pages "
                "lists the sampled pages only. Absent when 1 (and in recordings written before it was "
                "added)."
            ),
        ),
    ] = 1


FaultsOrNull = Annotated[
    FaultTickRecord | None,
    Meta(description="Page faults seen since the previous frame; null when faults are not recorded."),
]
# A patch node (recording.patch): any JSON, described by PATCH_DEFS in the schema
PatchNode = Annotated[Any, Meta(extra_json_schema={"$ref": "#/$defs/object_patch"})]


VitalsOrAbsent = Annotated[
    ProcessVitals | None,
    Meta(
        description=(
            "The process's state, threads, fault counts, resident and swapped bytes, read from "
            "/proc/PID/stat and status (no mmap lock) at this frame's tick: on a frame that keeps the "
            "previous map (an empty patch) newer than the snapshot's. Absent in recordings written "
            "before it was added (additive)."
        )
    ),
]


class SnapshotFrame(Struct, frozen=True, omit_defaults=True):
    """The first frame: a whole snapshot."""

    t: Seconds
    snapshot: Snapshot
    faults: FaultsOrNull
    vitals: VitalsOrAbsent = None


class PatchFrame(Struct, frozen=True, omit_defaults=True):
    """A later frame: the snapshot as a patch against the previous frame's
    snapshot document (an unchanged snapshot is {"{": {}})."""

    t: Seconds
    patch: PatchNode
    faults: FaultsOrNull
    vitals: VitalsOrAbsent = None


class Note(Struct, frozen=True, omit_defaults=True):
    """A note; the last note of a finished recording says how it ended."""

    t: Seconds
    note: str
    end: End | None = None


class Line(Struct, frozen=True):
    """Any line after the header, as the reader first sees it: the frame's
    parts stay raw JSON until a frame is asked for (``SnapshotFrame``,
    ``PatchFrame`` and ``Note`` define what they hold)."""

    t: float
    snapshot: Any = None
    patch: Any = None
    faults: Any = None
    note: Any = None
    end: Any = None
    vitals: Any = None


# The patch format (recording.patch) as JSON Schema definitions: a patch node
# holds arbitrary JSON, which no Struct describes.
PATCH_DEFS: dict[str, Any] = {
    "patch": {
        "description": "A patch node: replace, patch an object, or rebuild a list.",
        "oneOf": [
            {"$ref": "#/$defs/replace_patch"},
            {"$ref": "#/$defs/object_patch"},
            {"$ref": "#/$defs/list_patch"},
        ],
    },
    "replace_patch": {
        "description": '{"=": value}: replace with value.',
        "type": "object",
        "required": ["="],
        "additionalProperties": False,
        "properties": {"=": True},
    },
    "object_patch": {
        "description": (
            '{"{": {key: node}, "-": [key]}: patch the keys in "{" (a new key is a "=" node), '
            'remove those in "-".'
        ),
        "type": "object",
        "required": ["{"],
        "additionalProperties": False,
        "properties": {
            "{": {"type": "object", "additionalProperties": {"$ref": "#/$defs/patch"}},
            "-": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        },
    },
    "list_patch": {
        "description": (
            '{"[": [op]}: an integer n > 0 keeps the next n old elements, n < 0 drops the next -n, '
            "a list inserts its elements, an object patches the next old element; old elements left "
            "after the last op are kept."
        ),
        "type": "object",
        "required": ["["],
        "additionalProperties": False,
        "properties": {
            "[": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "integer", "not": {"const": 0}},
                        {"type": "array"},
                        {"$ref": "#/$defs/patch"},
                    ]
                },
            }
        },
    },
}

# counters mode has no lost count and says why
FAULT_TICK_RULES: dict[str, Any] = {
    "if": {"properties": {"mode": {"const": "counters"}}},
    "then": {"properties": {"lost": {"type": "null"}, "reason": {"type": "string"}}},
    "else": {"properties": {"lost": {"type": "integer"}}},
}
