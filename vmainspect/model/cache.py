"""``vmainspect cache --json``: ``vmainspect/cache@1``.

The page-cache state of files and directory trees, from cachestat(2): per
regular file its size and its pages in each state, and the sums. null means
unknown (the kernel gives a file's page-cache state only to its owner, a
user who may write it, or root), never zero.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import Meta, Struct

from .snapshot import Count

CACHE_SCHEMA = "vmainspect/cache@1"


class CachedFile(Struct, frozen=True):
    """One regular file: its size and its pages in each page-cache state (null: unknown)."""

    path: Annotated[str, Meta(description="As given or found (undecodable bytes shown as \\xNN).")]
    size: Annotated[int, Meta(ge=0, description="Bytes.")]
    pages: Annotated[int, Meta(ge=0, description="Pages the file's size spans.")]
    cached: Annotated[Count | None, Meta(description="Pages in the page cache.")]
    dirty: Annotated[Count | None, Meta(description="Cached pages written and not yet on disk.")]
    writeback: Annotated[Count | None, Meta(description="Pages being written to disk now.")]
    evicted: Annotated[Count | None, Meta(description="Pages that were cached and were evicted.")]
    recently_evicted: Annotated[
        Count | None, Meta(description="Evicted recently enough that reading them again counts as thrashing.")
    ]


class CacheTotal(Struct, frozen=True, kw_only=True):
    """Sums over the files; each count over the files where it is known (null: known for none)."""

    files: Count
    unknown: Annotated[int, Meta(ge=0, description="Files whose counts are unknown (not in the sums).")]
    size: Count
    pages: Count
    cached: Count | None
    dirty: Count | None
    writeback: Count | None
    evicted: Count | None
    recently_evicted: Count | None


class CacheReport(Struct, frozen=True, kw_only=True, tag_field="schema", tag=CACHE_SCHEMA):
    schema: ClassVar[str] = CACHE_SCHEMA

    page_size: Annotated[int, Meta(ge=1)]
    source: Annotated[
        Literal["cachestat", "mincore"],
        Meta(description="How the kernel was asked (mincore: residency only, on kernels before 6.5)."),
    ]
    files: tuple[CachedFile, ...]
    total: CacheTotal
    errors: Annotated[tuple[str, ...], Meta(description="One line per path that could not be measured.")]
    notes: Annotated[tuple[str, ...], Meta(description="What is unknown and why.")]
