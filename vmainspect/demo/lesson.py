"""The lesson, in story order, and the runner that measures each step.

``Lesson`` owns a DemoSession (workload + temp folder). ``run_step()``
takes a snapshot (collect with pages), runs the step's single action,
takes another, and turns the two into a ``StepResult``. Used by the
scripted mode (``vmainspect demo --script``) and the lecture TUI alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import msgspec

from ..errors import VmaInspectError
from ..model import FaultTick, Snapshot
from ..model.demo import DEMO_SCHEMA, DemoReport, StepRecord
from . import steps_article, steps_basic, steps_crash, steps_kernel, steps_vma
from .control import DemoSession
from .evidence import Evidence, build
from .steps import Ctx, Step, write_file

SCHEMA = DEMO_SCHEMA

_BY_ID = {
    st.id: st
    for mod in (steps_basic, steps_vma, steps_kernel, steps_article, steps_crash)
    for st in mod.STEPS
}

# story order: a mapping and its faults, the page cache and writeback, what
# the kernel does with pages, a VMA's life, fork, lengths, the sample code of the article, crashes
ORDER = (
    "anon-mmap",
    "touch-pages",
    "huge-first-touch",
    "cold-file-read",
    "private-write",
    "shared-map",
    "shared-write",
    "folio-dirty",
    "msync",
    "close-fd",
    "zero-copy",
    "ipc",
    "reclaim",
    "mprotect",
    "munmap-hole",
    "mremap-grow",
    "madvise-dontneed",
    "fork",
    "fork-cow",
    "length-not-page-multiple",
    "sigbus",
    "article-munmap-offset",
    "article-munmap-wrong-range",
    "article-unchecked-ftruncate",
    "article-fixed",
    "crash",
    "torn-record",
)
STEPS: tuple[Step, ...] = tuple(_BY_ID[i] for i in ORDER)
assert len(_BY_ID) == len(STEPS), "a step is defined but not in the lesson's order"


class StepError(VmaInspectError):
    """A step could not run; names the step."""

    def __init__(self, step_id: str, detail: str, exit_code: int = 1) -> None:
        self.step_id = step_id
        self.detail = detail
        self.exit_code = exit_code
        super().__init__(f"demo step {step_id!r} could not run: {detail}")


@dataclass
class StepResult:
    index: int
    step: Step
    measured: dict[str, Any]
    holds: bool | None
    reason: str | None
    summary: str
    focus: int | None
    pids: tuple[int, ...]
    seconds: float
    evidence: Evidence | None = None
    before: Snapshot | None = field(default=None, repr=False)  # the snapshots the verdict came from
    after: Snapshot | None = field(default=None, repr=False)
    finished_at: float = 0.0  # time.time() when the step ended (the writeback clock starts there)

    def record(self) -> StepRecord:
        """This step as it appears in ``vmainspect/demo@1`` (``model.demo``)."""
        return StepRecord(
            id=self.step.id,
            title=self.step.title,
            claim=self.step.claim,
            measured=self.measured,
            holds=self.holds,
            reason=self.reason or None,
            seconds=round(self.seconds, 3),
            evidence=None if self.evidence is None else self.evidence.record(),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self.record())
        return out


class Lesson:
    """The steps plus a live workload; run them one by one."""

    def __init__(
        self, collect_fn: Callable[..., Snapshot] | None = None, *, wait: bool = True, faults: bool = True
    ) -> None:
        if collect_fn is None:
            from ..snapshot.collect import collect

            collect_fn = collect
        self.collect: Callable[..., Snapshot] = collect_fn
        self.steps = STEPS
        self.index = 0
        self.faults = faults
        self.session: DemoSession | None = None
        self.ctx: Ctx | None = None
        self._sampler: Any = None
        self.start(wait=wait)

    def start(self, *, wait: bool = True) -> None:
        """A fresh workload and folder (call on a long-lived thread: see control.py)."""
        self.close()
        self.session = DemoSession(wait=wait)
        page = self.session.page_size
        ctx = Ctx(self.session, self.collect, page)
        d = self.session.dir
        ctx.files = {"private": os.path.join(d, "private.dat"), "shared": os.path.join(d, "shared.dat")}
        write_file(ctx.files["private"], steps_basic.PRIVATE_PAGES, page)
        write_file(ctx.files["shared"], steps_basic.SHARED_PAGES, page)
        self.ctx = ctx
        self.index = 0

    @property
    def pid(self) -> int:
        return self.session.pid if self.session else 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    @property
    def current(self) -> Step | None:
        return None if self.done else self.steps[self.index]

    def run_step(self) -> StepResult:
        """Run the next step and measure it (blocking: call from a worker thread in a UI)."""
        if self.done or self.ctx is None:
            raise IndexError("no more steps")
        step, ctx, i = self.steps[self.index], self.ctx, self.index
        self.index += 1
        t = time.perf_counter()
        try:
            prep = step.prepare(ctx) if step.prepare else {}
            before = ctx.snap(ctx.pid)
            self._tick(None)  # the sampler's window opens here
            x = {**prep, **step.act(ctx)}
            after = ctx.snap(ctx.pid)
            tick = self._tick(after)
            chk = step.check(ctx, before, after, x)
            ev = build(ctx.regions, before, after, x, chk.measured, tick)
        except VmaInspectError as e:
            raise StepError(step.id, str(e), getattr(e, "exit_code", 1)) from None
        except OSError as e:  # a temp file, a pipe: one line, never a traceback
            raise StepError(step.id, e.strerror or str(e)) from None
        pids = (ctx.pid,) + ((x["child"],) if x.get("child") else ())
        return StepResult(
            i,
            step,
            chk.measured,
            chk.holds,
            chk.reason,
            chk.summary,
            x.get("focus"),
            pids,
            time.perf_counter() - t,
            ev,
            before,
            after,
            time.time(),
        )

    def _tick(self, snap: Snapshot | None) -> FaultTick | None:
        """Close the fault sampler's window (attributed to ``snap``); None if faults are not sampled."""
        if not self.faults or self.session is None:
            return None
        if self._sampler is None:
            from ..faults.sampler import FaultSampler

            self._sampler = FaultSampler(self.session.pid, recent=0)
        try:
            tick: FaultTick = self._sampler.tick(snap).faults
        except VmaInspectError:
            return None
        return tick

    def run_all(self, on_result: Callable[[StepResult], None] | None = None) -> list[StepResult]:
        out = []
        while not self.done:
            r = self.run_step()
            out.append(r)
            if on_result:
                on_result(r)
        return out

    def detach(self) -> DemoSession | None:
        """Hand over the current session (the caller closes it); the lesson has none."""
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
        session, self.session, self.ctx = self.session, None, None
        return session

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
        if self.session is not None:
            self.session.close()
            self.session = None
        self.ctx = None

    def __enter__(self) -> Lesson:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def to_json(results: list[StepResult], *, root: bool, seconds: float | None = None) -> dict[str, Any]:
    doc = DemoReport(
        root=root,
        steps=tuple(r.record() for r in results),
        seconds=None if seconds is None else round(seconds, 3),
    )
    out: dict[str, Any] = msgspec.to_builtins(doc)
    return out
