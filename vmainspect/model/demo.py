"""``vmainspect demo --script --json``: ``vmainspect/demo@1``.

The scripted demo lesson: each step performs one memory operation in a
workload process and checks its claim against the kernel's own accounting.
holds is true (the claim held), false (it did not: reason says why) or null
(unknown: the measurement needs root).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import Meta, Struct, field

from .snapshot import Count

DEMO_SCHEMA = "vmainspect/demo@1"


class MappingFaults(Struct, frozen=True):
    mapping: str
    minor: Count
    major: Count


class FunctionFaults(Struct, frozen=True):
    function: Annotated[str, Meta(description='The name to show, e.g. "memset (libc)".')]
    symbol: Annotated[str, Meta(description="The symbol the sampler resolved.")]
    faults: Count


class StepFaults(Struct, frozen=True, omit_defaults=True):
    minor: Annotated[
        int, Meta(ge=0, description="The workload's minor faults during the step (/proc counters).")
    ]
    major: Count
    by_mapping: Annotated[tuple[MappingFaults, ...] | None, Meta(description="null: not sampled (see note).")]
    by_function: tuple[FunctionFaults, ...] | None
    interpreter: Annotated[
        Annotated[int, Meta(ge=0)] | None,
        Meta(
            description="Sampled faults of the Python interpreter itself (its heap and code), counted apart."
        ),
    ] = None
    note: str | None = None


class MappingTransition(Struct, frozen=True):
    mapping: str
    from_: str = field(name="from")
    to: str
    pages: Annotated[int, Meta(ge=1)]


class Evidence(Struct, frozen=True, omit_defaults=True):
    """What the step's verdict rests on: faults by mapping and function, page-state transitions."""

    faults: StepFaults
    transitions: tuple[MappingTransition, ...]
    table: Annotated[
        tuple[tuple[str, ...], ...], Meta(description="A step's own table (the crash matrix), header first.")
    ] = ()


class StepRecord(Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: Annotated[
        str,
        Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="Stable step name (vmainspect demo --list)."),
    ]
    title: Annotated[str, Meta(min_length=1)]
    claim: Annotated[
        str, Meta(min_length=1, description="What the step says the kernel did, checked against measured.")
    ]
    measured: Annotated[
        dict[Annotated[str, Meta(pattern=r"^[a-z0-9_+-]+$")], Any],
        Meta(
            min_length=1,
            description=(
                "The step's measurements, by name (step-specific: counts of pages or faults, sizes in bytes, "
                "page indexes, flags); null where unknown (needs root)."
            ),
        ),
    ]
    holds: bool | None
    reason: Annotated[
        Annotated[str, Meta(min_length=1)] | None,
        Meta(description="Why the claim did not hold or is unknown; present exactly when holds is not true."),
    ] = None
    seconds: Annotated[float, Meta(ge=0, description="Wall time of the step (snapshots, action, checks).")]
    evidence: Evidence | None = None


class DemoReport(Struct, frozen=True, omit_defaults=True, tag_field="schema", tag=DEMO_SCHEMA):
    schema: ClassVar[str] = DEMO_SCHEMA

    root: Annotated[bool, Meta(description="Run as root: PFNs and /proc/kpageflags were readable.")]
    steps: Annotated[tuple[StepRecord, ...], Meta(description="The steps run, in lesson order.")]
    seconds: Annotated[
        Annotated[float, Meta(ge=0)] | None, Meta(description="Wall time of the whole lesson.")
    ] = None


# reason is there exactly when the claim did not hold or is unknown
STEP_RULES: dict[str, Any] = {
    "if": {"properties": {"holds": {"const": True}}},
    "then": {"not": {"required": ["reason"]}},
    "else": {"required": ["reason"]},
}
