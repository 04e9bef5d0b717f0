"""``vmainspect wss --json``: ``vmainspect/wss@1``.

A process's working set: every interval its referenced bits are reset
(/proc/PID/clear_refs) and each VMA's smaps ``Referenced`` read back, the
bytes it touched in that interval, beside the bytes resident.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import Meta, Struct

from .snapshot import Address, Count, Pid

WSS_SCHEMA = "vmainspect/wss@1"


class WssVma(Struct, frozen=True, kw_only=True):
    start: Address
    end: Address
    perms: Annotated[str, Meta(pattern=r"^[r-][w-][x-][psS-]$")]
    path: str | None
    accessed: Annotated[int, Meta(ge=0, description="Bytes touched in the interval (smaps Referenced).")]
    resident: Annotated[int, Meta(ge=0, description="Bytes resident at the end of the interval (smaps Rss).")]


class WssInterval(Struct, frozen=True, kw_only=True):
    t: Annotated[float, Meta(ge=0, description="Seconds from the first reset to the end of this interval.")]
    total_accessed: Count
    total_resident: Count
    vmas: tuple[WssVma, ...]


class WssReport(Struct, frozen=True, kw_only=True, tag_field="schema", tag=WSS_SCHEMA):
    schema: ClassVar[str] = WSS_SCHEMA

    pid: Pid
    page_size: Annotated[int, Meta(ge=1)]
    interval: Annotated[float, Meta(gt=0, description="Seconds per interval, as asked.")]
    method: Literal["clear_refs"]
    intervals: tuple[WssInterval, ...]
    notes: tuple[str, ...]
