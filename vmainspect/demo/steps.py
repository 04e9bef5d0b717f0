"""What every lesson step is made of: the shared context, the check, the step.

A step's ``act`` sends the workload one command (rarely a few) and returns
what the check needs to know about the request (never a result). Its
``check`` gets snapshots taken just before and just after (collect with
pages) and computes the verdict from them: pages present, dirty, shared,
VMAs, fault counters, page-cache counts (cachestat), file contents read
back by vmainspect itself.

A claim has parts. If a measurable part fails the claim is false. If every
measurable part holds but one cannot be seen (root needed for kpageflags or
kpagecount, a kernel feature switched off), the claim is unknown
(``holds = None``) and ``reason`` says what could not be seen.

The steps themselves live by topic: ``steps_basic`` (mmap, faults, the page
cache, msync), ``steps_vma`` (mprotect .. fork), ``steps_kernel`` (large
folios, reclaim, zero-copy, IPC), ``steps_article`` (the article's sample
code, lengths and SIGBUS), ``steps_crash`` (crashes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..model import Snapshot
from .control import DemoSession

MIB = 1 << 20

Info = dict[str, Any]


def original(p: int) -> bytes:
    """The first 16 bytes of page ``p`` of the demo files as created."""
    return bytes([(p * 7 + 1) % 255 + 1]) * 16


@dataclass
class Ctx:
    """What the steps share: the session, file paths, where things were mapped."""

    session: DemoSession
    collect: Callable[..., Snapshot]  # collect(pid, pages=True) -> Snapshot
    page: int
    files: dict[str, str] = field(default_factory=dict)
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (address, length)
    fds: dict[str, int] = field(default_factory=dict)
    child: int | None = None

    @property
    def pid(self) -> int:
        return self.session.pid

    def snap(self, pid: int) -> Snapshot:
        return self.collect(pid, pages=True)

    def req(self, op: str, **args: Any) -> Info:
        return self.session.request(op, **args)

    def region(self, name: str, first: int = 0, count: int | None = None) -> tuple[int, int]:
        addr, length = self.regions[name]
        n = length // self.page - first if count is None else count
        return addr + first * self.page, n * self.page

    def path(self, name: str) -> str:
        """A file of this lesson's folder (created by the step that uses it)."""
        p = os.path.join(self.session.dir, name)
        self.files.setdefault(name, p)
        return p


Part = bool | None


@dataclass
class Check:
    measured: dict[str, Any]
    summary: str  # one line with the numbers
    parts: dict[str, Part]  # claim part -> held (None: could not be seen)
    unknown_why: str = "needs root (kpageflags/kpagecount): not visible to this user"

    @property
    def holds(self) -> bool | None:
        vals = list(self.parts.values())
        if any(v is False for v in vals):
            return False
        if any(v is None for v in vals):
            return None
        return True

    @property
    def reason(self) -> str | None:
        if self.holds is None:
            missing = ", ".join(k for k, v in self.parts.items() if v is None)
            return f"{missing}: {self.unknown_why}"
        if self.holds is False:
            return "did not hold: " + ", ".join(k for k, v in self.parts.items() if v is False)
        return None


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    narration: tuple[str, ...]
    watch: str
    claim: str
    act: Callable[[Ctx], Info]
    check: Callable[[Ctx, Snapshot, Snapshot, Info], Check]
    prepare: Callable[[Ctx], Info] | None = None
    root_note: str | None = None  # what this step cannot show without root
    article: str | None = None  # what the article claims, in our words
    linux: str | None = None  # what Linux does, as this step measures


def sorted_or_none(s: set[int] | None) -> list[int] | None:
    return None if s is None else sorted(s)


def pages_text(pages: list[int] | None, limit: int = 8) -> str:
    if pages is None:
        return "?"
    text = ",".join(map(str, pages[:limit]))
    return text + (",…" if len(pages) > limit else "")


def q(v: object) -> str:
    """A measured value for a summary line: ``?`` when unknown."""
    return "?" if v is None else str(v)


def write_file(path: str, pages: int, page: int, size: int | None = None, *, one_go: bool = False) -> None:
    """A demo file: page p starts with ``original(p)``; fsync'ed.

    ``one_go``: one write(2) of the whole file, so the page cache may hold it
    in large folios; otherwise one write per page (4 KiB folios).
    """
    with open(path, "wb") as f:
        if one_go:
            f.write(b"".join(original(p).ljust(page, b".") for p in range(pages)))
        else:
            for p in range(pages):
                f.write(original(p).ljust(page, b"."))
        if size is not None:
            f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def evict(path: str) -> None:
    """Write ``path``'s dirty pages and drop it from the page cache (cold file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped: write them first
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
