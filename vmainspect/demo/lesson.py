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
from dataclasses import dataclass

from ..errors import VmaInspectError
from ..model import Snapshot
from . import steps as s
from . import steps_late as late
from .control import DemoSession
from .steps import Ctx, Step

SCHEMA = "vmainspect/demo@1"

STEPS: tuple[Step, ...] = (
    Step(
        "anon-mmap",
        "mmap: a new mapping, nothing in it",
        (
            "The workload calls mmap(4 MiB, read+write, MAP_PRIVATE|MAP_ANONYMOUS).",
            "The kernel only records a VMA: an address range and its rights.",
            "No memory is used yet: pages arrive later, one fault at a time.",
            "(MADV_NOHUGEPAGE keeps this demo at 4 KiB pages whatever THP says.)",
        ),
        "a new 4 MiB anonymous VMA; its RSS is 0",
        "A new VMA covers the 4 MiB range and none of its 1024 pages is resident.",
        s.act_anon,
        s.check_anon,
    ),
    Step(
        "touch-pages",
        "Touching pages: minor faults",
        (
            "The workload writes one byte to every 16th page: 64 of 1024 pages.",
            "Each first touch traps into the kernel: a page fault.",
            "The kernel takes a free page, zeroes it and maps it: a minor fault,",
            "no disk involved. The pages in between stay absent.",
        ),
        "RSS +256 KiB: every 16th page present; minor faults +64 or more",
        "Exactly the 64 touched pages became resident, with at least one minor fault each.",
        s.act_touch,
        s.check_touch,
    ),
    Step(
        "cold-file-read",
        "Reading a cold file: major faults, readahead, fault-around",
        (
            "vmainspect wrote a 4 MiB file, fsync'ed it and evicted it from the page cache.",
            "The workload maps it MAP_PRIVATE and reads 4 pages, 1 MiB apart.",
            "A page not in the page cache means waiting for the disk: a major fault.",
            "Readahead reads the neighbours too, and fault-around maps up to",
            "fault_around_bytes (64 KiB by default) of cached pages per fault;",
            "large folios in the page cache make it chunkier still.",
        ),
        "major faults > 0; many more pages resident than the 4 read",
        "Reading 4 pages of a cold file took major faults and made more than 4 pages resident.",
        s.act_cold,
        s.check_cold,
        prepare=s.prepare_cold,
    ),
    Step(
        "private-write",
        "Writing to MAP_PRIVATE: copy-on-write",
        (
            "The workload writes to the first 4 pages of the private file mapping.",
            'MAP_PRIVATE means "my changes are mine": the kernel copies each page',
            "into a new anonymous page (copy-on-write) and maps the copy.",
            "The page cache, and so the file, keeps the old bytes:",
            "vmainspect reads the file back with read(2) to check.",
        ),
        "4 pages of the file VMA turn from file to anon",
        "Exactly the 4 written pages turned anonymous, and the file still holds its old bytes.",
        s.act_cow,
        s.check_cow,
    ),
    Step(
        "shared-map",
        "MAP_SHARED: the mapping is the page cache",
        (
            "The workload maps a 1 MiB file MAP_SHARED and reads every page.",
            "A shared file mapping points straight at the page cache: no copies.",
            "Every process mapping the file, and read(2)/write(2), use the same pages.",
        ),
        "256 resident file pages, all clean (dirtiness needs root)",
        "All 256 pages are resident page-cache pages and none is dirty.",
        s.act_shared_map,
        s.check_shared_map,
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "shared-write",
        "Writing to MAP_SHARED: dirty page cache",
        (
            "The workload writes to pages 0, 100 and 200 of the shared mapping.",
            "The bytes land in the page cache page itself, which becomes dirty:",
            "it must reach the disk later (writeback, within about 30 s).",
            "Dirtiness is per folio: a page in a large folio dirties the whole folio.",
            "read(2) of the file already returns the new bytes: same page cache.",
        ),
        "file-dirty pages at the written places (root)",
        "Every written page is dirty in the page cache, and read(2) already sees the new bytes.",
        s.act_shared_write,
        s.check_shared_write,
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "msync",
        "msync(MS_SYNC): clean again",
        (
            "msync(MS_SYNC) writes the range's dirty pages to disk and waits.",
            "Afterwards the disk holds what memory holds: the pages are clean.",
            "They stay cached and mapped; only the dirty flag is gone.",
        ),
        "dirty pages drop to 0; resident pages stay",
        "After msync no page of the mapping is dirty, and all its pages are still resident.",
        s.act_msync,
        s.check_msync,
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "close-fd",
        "close(fd): the mapping stays",
        (
            "The workload closes the file descriptor it passed to mmap.",
            "The VMA holds its own reference to the file (vm_file), not the descriptor,",
            "so the mapping, its pages and the open file live on until munmap or exit.",
        ),
        "/proc/PID/fd loses the descriptor; the VMA does not change",
        "The descriptor is closed, and the mapping and its resident pages are unchanged.",
        s.act_close,
        s.check_close,
    ),
    Step(
        "mprotect",
        "mprotect: one VMA becomes three",
        (
            "The workload makes the middle 1 MiB of the anonymous region read-only.",
            "A VMA has one set of permissions, so the kernel splits it: rw- | r-- | rw-.",
            "Each piece is a vm_area_struct of its own: many mprotects, many VMAs.",
        ),
        "the 4 MiB VMA splits in three; the middle one is r--p",
        "One VMA became three, the middle one read-only and exactly 1 MiB.",
        s.act_mprotect,
        s.check_mprotect,
    ),
    Step(
        "munmap-hole",
        "munmap: a hole in the middle",
        (
            "The workload unmaps 256 KiB from the last part of the region.",
            "Its pages are freed and the VMA is cut in two around the hole.",
            "Touching the hole now would be a SIGSEGV: no VMA, no memory.",
        ),
        "one more VMA and a gap between addresses",
        "The region has one more VMA and nothing is mapped in the hole.",
        s.act_munmap,
        s.check_munmap,
    ),
    Step(
        "mremap-grow",
        "mremap: grow (and maybe move) a mapping",
        (
            "The workload grows the last 1.25 MiB piece to 2.5 MiB (MREMAP_MAYMOVE).",
            "If the addresses after it are free it grows in place, else the kernel moves it.",
            "Moving moves page-table entries, not data: resident pages come along uncopied.",
        ),
        "the VMA grows, maybe at a new address, keeping its resident pages",
        "The mapping covers the new size and exactly the old resident pages came along.",
        s.act_mremap,
        s.check_mremap,
    ),
    Step(
        "madvise-dontneed",
        "madvise(MADV_DONTNEED): the pages go away",
        (
            "The workload tells the kernel it no longer needs the first 1 MiB.",
            "For private anonymous memory the pages are freed at once;",
            "the VMA stays, and the next touch gets a fresh zero page (a new fault).",
        ),
        "resident pages in the first 1 MiB drop to 0; the VMA stays",
        "The resident pages in the range went away and the VMA stayed.",
        s.act_dontneed,
        s.check_dontneed,
    ),
    Step(
        "fork",
        "fork: parent and child share pages",
        (
            "The workload forks. The child gets a copy of every VMA, not of the pages:",
            "both page tables point at the same physical pages, write-protected.",
            "kpagecount (root) counts 2 mappings per page; pagemap stops calling",
            "them exclusive (that bit needs no root).",
        ),
        "the grown VMA's pages: mapped twice, no longer exclusive",
        "The child has the same pages resident and each is mapped twice, no longer exclusive.",
        late.act_fork,
        late.check_fork,
        root_note="mapping counts: /proc/kpagecount needs root",
    ),
    Step(
        "fork-cow",
        "The child writes: copy-on-write separates them",
        (
            "The child writes to 3 of the shared pages.",
            "Each write faults: the kernel copies the page for the child and maps the copy.",
            "The parent keeps the original, mapped once again: exclusive.",
        ),
        "3 of the parent's pages turn exclusive; shared pages drop by 3",
        "Exactly the 3 written pages stopped being shared: exclusive again in both processes.",
        late.act_child_write,
        late.check_child_write,
        root_note="mapping counts: /proc/kpagecount needs root",
    ),
    Step(
        "sigbus",
        "Past the end of the file: SIGBUS",
        (
            "A 6000-byte file (2 pages) is mapped as 4 pages: mmap does not check the size.",
            "The rest of page 1 reads as zeros; pages 2 and 3 have no file behind them.",
            "A throwaway child touches page 3: there is no page to map, the kernel sends SIGBUS.",
            "(Not SIGSEGV: the address is valid, the data behind it is missing.)",
        ),
        "a 16 KiB VMA over a 6000-byte file; the child dies of SIGBUS",
        "The mapping reaches past the end of the file, and touching there killed the child with SIGBUS.",
        late.act_sigbus,
        late.check_sigbus,
        prepare=late.prepare_sigbus,
    ),
    Step(
        "crash",
        "A crash with dirty pages: what is in the file?",
        (
            "Three throwaway processes write to a file mapped MAP_SHARED, MAP_SHARED",
            "+ msync, and MAP_PRIVATE, and are killed with SIGKILL.",
            "MAP_SHARED data is in the page cache, which the kernel owns: it survives.",
            "Until writeback it is dirty: a power loss would lose it; msync makes it durable.",
            "MAP_PRIVATE copies die with the process. (`vmainspect crash`: the full matrix.)",
        ),
        "the verdict: what the file holds after each crash",
        "After SIGKILL the file holds the MAP_SHARED writes (still dirty in the page cache unless "
        "msync'ed) and none of the MAP_PRIVATE writes.",
        late.act_crash,
        late.check_crash,
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
)


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
    measured: dict
    holds: bool | None
    reason: str | None
    summary: str
    focus: int | None
    pids: tuple[int, ...]
    seconds: float

    def to_json(self) -> dict:
        out = {
            "id": self.step.id,
            "title": self.step.title,
            "claim": self.step.claim,
            "measured": self.measured,
            "holds": self.holds,
        }
        if self.reason:
            out["reason"] = self.reason
        out["seconds"] = round(self.seconds, 3)
        return out


def _write_file(path: str, pages: int, page: int, size: int | None = None) -> None:
    with open(path, "wb") as f:
        for p in range(pages):
            f.write(s.original(p).ljust(page, b"."))
        if size is not None:
            f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


class Lesson:
    """The steps plus a live workload; run them one by one."""

    def __init__(self, collect_fn: Callable[..., Snapshot] | None = None, *, wait: bool = True) -> None:
        if collect_fn is None:
            from ..snapshot.collect import collect as collect_fn
        self.collect = collect_fn
        self.steps = STEPS
        self.index = 0
        self.session: DemoSession | None = None
        self.ctx: Ctx | None = None
        self.start(wait=wait)

    def start(self, *, wait: bool = True) -> None:
        """A fresh workload and folder (call on a long-lived thread: see control.py)."""
        self.close()
        self.session = DemoSession(wait=wait)
        page = self.session.page_size
        ctx = Ctx(self.session, self.collect, page)
        d = self.session.dir
        ctx.files = {
            "private": os.path.join(d, "private.dat"),
            "shared": os.path.join(d, "shared.dat"),
            "short": os.path.join(d, "short.dat"),
        }
        _write_file(ctx.files["private"], s.PRIVATE_PAGES, page)
        _write_file(ctx.files["shared"], s.SHARED_PAGES, page)
        _write_file(ctx.files["short"], 2, page, size=s.SHORT_BYTES)
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
            x = {**prep, **step.act(ctx)}
            after = ctx.snap(ctx.pid)
            chk = step.check(ctx, before, after, x)
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
        )

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
        session, self.session, self.ctx = self.session, None, None
        return session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        self.ctx = None

    def __enter__(self) -> Lesson:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_json(results: list[StepResult], *, root: bool, seconds: float | None = None) -> dict:
    out = {"schema": SCHEMA, "root": root, "steps": [r.to_json() for r in results]}
    if seconds is not None:
        out["seconds"] = round(seconds, 3)
    return out
