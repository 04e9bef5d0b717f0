"""``vmainspect crash --json``: ``vmainspect/crash@1``.

The crash experiment: for each (mapping, ending) case a child maps a fresh
temp file (or anonymous memory), writes known bytes to written_pages of
file_pages pages and ends; what survived is measured. null means unknown
(kpageflags needs root) or not applicable (anonymous memory has no file),
never zero or false.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from .snapshot import Count

CRASH_SCHEMA = "vmainspect/crash@1"


class CaseRecord(Struct, frozen=True):
    mapping: Annotated[
        Literal["shared", "shared+msync", "private", "anonymous"],
        Meta(
            description=(
                "MAP_SHARED file, MAP_SHARED file msync'ed before the end, MAP_PRIVATE file, or private "
                "anonymous memory."
            )
        ),
    ]
    ending: Annotated[
        Literal["sigkill", "sigsegv", "abort", "exit"],
        Meta(description="How the child ends: SIGKILL, a SIGSEGV, abort() or exit() without munmap."),
    ]
    written_pages: Count
    dirty_before: Annotated[
        Count | None,
        Meta(
            description=(
                "Dirty pages of the mapping just before the end (kpageflags DIRTY for file pages; present "
                "anonymous pages are dirty by nature); null without root."
            )
        ),
    ]
    in_file_after: Annotated[
        bool | None,
        Meta(
            description="The file read back with read(2) holds the written bytes; null for anonymous memory."
        ),
    ]
    dirty_in_cache_after: Annotated[
        Count | None,
        Meta(
            description=(
                "The file's pages still dirty in the page cache after the end (not yet on disk), from "
                "cachestat (no root needed); null for anonymous memory, or without root on a kernel without "
                "cachestat (Linux < 6.5)."
            )
        ),
    ]
    ended_by: Annotated[
        str,
        Meta(
            pattern=r"^(SIG[A-Z0-9+-]+|exit [0-9]+)$",
            description="The child's wait status: the signal's name, or \"exit N\".",
        ),
    ]


class CrashReport(Struct, frozen=True, omit_defaults=True, tag_field="schema", tag=CRASH_SCHEMA):
    schema: ClassVar[str] = CRASH_SCHEMA

    root: Annotated[bool, Meta(description="Run as root: dirty page counts need /proc/kpageflags.")]
    file_pages: Annotated[int, Meta(ge=1, description="Pages of each case's mapping.")]
    cases: tuple[CaseRecord, ...]
    seconds: Annotated[
        Annotated[float, Meta(ge=0)] | None, Meta(description="Wall time of the whole experiment.")
    ] = None


# anonymous memory has no file: nothing to read back
CASE_RULES: dict[str, Any] = {
    "if": {"properties": {"mapping": {"const": "anonymous"}}},
    "then": {"properties": {"in_file_after": {"type": "null"}, "dirty_in_cache_after": {"type": "null"}}},
    "else": {"properties": {"in_file_after": {"type": "boolean"}}},
}
