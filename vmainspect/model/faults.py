"""``vmainspect faults --json``: ``vmainspect/faults@1``.

Page faults of one process over a window. mode "perf": every fault (or one
in period) sampled with perf_event_open and attributed to VMAs, functions and
data; mode "counters": perf_event_open was refused (reason says why) and only
/proc minflt/majflt deltas are known, so the sampled fields are null, never
zero. New fields are added with defaults (additive, @1 stays).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from .snapshot import U64, Count

FAULTS_SCHEMA = "vmainspect/faults@1"

CountOrNull = Count | None
TransitionState = Annotated[
    Literal["absent", "swapped", "file", "file-dirty", "anon", "zero", "unmapped"],
    Meta(description='A snapshot page state, or "unmapped" (no VMA there in that snapshot).'),
]


class MinorMajor(Struct, frozen=True):
    minor: Count
    major: Count


class VmaFaults(Struct, frozen=True, kw_only=True):
    """A mapping's identity (start, kind, path) and its largest extent seen (end, perms)."""

    start: U64
    end: U64
    perms: Annotated[str, Meta(pattern=r"^[r-][w-][x-][psS-]$")]
    kind: Annotated[str | None, Meta(description="The VMA kind (as in snapshot@1).")] = None
    path: str | None
    minor: Count
    major: Count


class SymbolCount(Struct, frozen=True):
    symbol: Annotated[str, Meta(description="The name as in the ELF symbol table (mangled for C++).")]
    demangled: Annotated[
        str | None,
        Meta(
            description=(
                "The readable C++ name (demangled as c++filt does); null when symbol is not a mangled name "
                "or cannot be demangled here (no libstdc++)."
            )
        ),
    ]
    dso: str
    count: Annotated[int, Meta(ge=1, description="minor + major.")]
    minor: Count
    major: Count


class TransitionCount(Struct, frozen=True):
    before: TransitionState
    after: TransitionState
    pages: Annotated[int, Meta(ge=1)]


class ThreadFaults(Struct, frozen=True):
    tid: Annotated[int, Meta(ge=1)]
    minor: Count
    major: Count


class FaultsReport(Struct, frozen=True, kw_only=True, tag_field="schema", tag=FAULTS_SCHEMA):
    schema: ClassVar[str] = FAULTS_SCHEMA

    pid: Annotated[int, Meta(ge=1)]
    name: Annotated[str, Meta(description='Process name (comm); "?" when it could not be read.')]
    mode: Literal["perf", "counters"]
    reason: Annotated[str | None, Meta(description="Why counters mode (one line); null in perf mode.")]
    period: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        Meta(
            description=(
                "One fault in period sampled (--period; under max_fault_rate the base period); null in "
                "counters mode."
            )
        ),
    ]
    duration_s: Annotated[
        float, Meta(ge=0, description="Seconds sampled (shorter when interrupted or the process exited).")
    ]
    samples: Annotated[
        CountOrNull,
        Meta(description="Samples taken: minor + major, except under max_fault_rate (then fewer)."),
    ]
    minor: Annotated[
        CountOrNull,
        Meta(description="Minor faults sampled; under max_fault_rate the kernel's exact count."),
    ]
    major: Annotated[
        CountOrNull,
        Meta(description="Major faults sampled; under max_fault_rate the kernel's exact count."),
    ]
    lost: Annotated[CountOrNull, Meta(description="Samples the kernel dropped (PERF_RECORD_LOST).")]
    faults_per_s: Annotated[
        Annotated[float, Meta(ge=0)] | None,
        Meta(
            description=(
                "Faults per second: sampled faults times period (perf), the exact counts under "
                "max_fault_rate, or the /proc counters' delta (counters); null when duration_s is 0."
            )
        ),
    ]
    event_counts: Annotated[
        MinorMajor | None,
        Meta(
            description=(
                "The perf events' own counts (every fault while enabled, sampled or not); null in counters mode."
            )
        ),
    ]
    unattributed: Annotated[
        CountOrNull,
        Meta(
            description=(
                "Sampled faults at addresses in no VMA of any snapshot read (mapped and unmapped within "
                "the window)."
            )
        ),
    ]
    unsampled: Annotated[
        CountOrNull,
        Meta(
            description=(
                "Faults the kernel counted (proc_counters) that no perf event saw (a lower bound): threads "
                "not followed from their first fault, and faults taken on another's behalf (/proc/PID/mem, "
                "process_vm_readv, O_DIRECT). null in counters mode or when the counters could not be read."
            )
        ),
    ] = None
    following: Annotated[
        Literal["per-cpu", "per-thread"] | None,
        Meta(
            description=(
                'How threads were followed: "per-cpu" (inherited events: every thread from its first '
                'fault) or "per-thread" (threads found by listing /proc/PID/task: their first moments '
                "missed, counted in unsampled); null in counters mode."
            )
        ),
    ] = None
    by_vma: Annotated[
        tuple[VmaFaults, ...],
        Meta(
            description=(
                "Faults per mapping, most first (empty in counters mode). A row is a mapping's identity "
                "(start, kind, path): each fault is placed in the mapping it hit when it happened, and a "
                "mapping that grew or shrank (a brk heap) is one row with the largest extent seen (end, perms)."
            )
        ),
    ]
    by_symbol: Annotated[
        tuple[SymbolCount, ...],
        Meta(
            description=(
                'Faults per faulting instruction\'s function, most first. symbol "[unknown]" when it has no '
                'symbol; dso is the ELF path, "[kernel.kallsyms]" for faults taken in kernel mode, "[anon]" '
                'or "[unknown]" outside any file.'
            )
        ),
    ]
    by_data_symbol: Annotated[
        tuple[SymbolCount, ...],
        Meta(
            description=(
                "Faulting data addresses inside ELF images (.data, .bss, .rodata) per object symbol, most first."
            )
        ),
    ]
    by_transition: Annotated[
        tuple[TransitionCount, ...] | None,
        Meta(
            description=(
                "With --pages: faulted pages by their page state in the snapshot before and after (pages, "
                "not faults), most first; null without --pages."
            )
        ),
    ]
    by_thread: Annotated[
        tuple[ThreadFaults, ...],
        Meta(
            description=(
                "Faults per thread, most first: sampled (perf) or /proc/PID/task/TID/stat deltas (counters)."
            )
        ),
    ]
    proc_counters: Annotated[
        MinorMajor | None,
        Meta(
            description=(
                "The kernel's own minflt/majflt delta (/proc/PID/stat) over the same window; null when they "
                "could not be read at the end (the process exited)."
            )
        ),
    ]
    notes: tuple[str, ...]
    max_fault_rate: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        Meta(
            description=(
                "faults --max-fault-rate N: at most about N samples a second, the period raised above "
                "`period` as needed; minor and major are then the kernel's exact counts and by_vma, "
                "by_symbol, by_data_symbol, by_thread and unattributed estimates (samples x the period of "
                "their window). null: every period-th fault sampled, every figure a count of samples."
            )
        ),
    ] = None
    max_period: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        Meta(description="Under max_fault_rate: the largest sample period a window used; null otherwise."),
    ] = None


# perf mode counts what it sampled; counters mode knows none of it (null, not 0)
FAULTS_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"mode": {"const": "perf"}}},
            "then": {
                "properties": {
                    "reason": {"type": "null"},
                    "period": {"type": "integer"},
                    "samples": {"type": "integer"},
                    "minor": {"type": "integer"},
                    "major": {"type": "integer"},
                    "lost": {"type": "integer"},
                    "unattributed": {"type": "integer"},
                }
            },
        },
        {
            "if": {"properties": {"mode": {"const": "counters"}}},
            "then": {
                "properties": {
                    "reason": {"type": "string"},
                    "period": {"type": "null"},
                    "samples": {"type": "null"},
                    "minor": {"type": "null"},
                    "major": {"type": "null"},
                    "lost": {"type": "null"},
                    "event_counts": {"type": "null"},
                    "unattributed": {"type": "null"},
                    "by_vma": {"maxItems": 0},
                    "by_symbol": {"maxItems": 0},
                    "by_data_symbol": {"maxItems": 0},
                }
            },
        },
    ]
}
