"""Lecture mode: the live TUI on the demo workload, with the step's narration and evidence.

``n``/space runs the next step in a worker thread; the narration panel shows
what the kernel does and what to watch, then the verdict; the evidence panel
shows what the step caused (faults, page-state changes, the numbers of the
verdict) and stays until the next step. The page map zooms to the step's
own pages. ``b``/← steps back through the recorded steps (their evidence and
page map, from the snapshots the verdict came from), a digit or ``g N``
jumps, ``p`` pauses the refresh, ``a`` shows all of the workload's mappings
(``--lecture`` shows its own only), ``r`` restarts after a confirmation,
``--auto`` advances by itself, ``q`` quits; the workload and its temp folder
go on every way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.timer import Timer

from ..demo.lesson import Lesson, StepResult
from ..errors import VmaInspectError
from ..model import Frame
from .app import APP_CSS, VmaInspectApp
from .lecture_panels import ConfirmRestart, JumpScreen, LectureHelpScreen, NarrationPanel
from .lecture_view import LECTURE_THEME, OWN_ANON, own_frame  # noqa: F401  (OWN_ANON: public)
from .sources import LiveSource, SourceKind
from .widgets.evidence import Clock, EvidencePanel

LECTURE_CSS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lecture.tcss")


class LectureSource:
    """A LiveSource on the current workload; ``retarget()`` switches to a new one (restart).

    ``own_only`` keeps the workload's own mappings in each frame (the
    interpreter's hundred-odd VMAs are not the lesson).
    """

    kind = SourceKind.LIVE

    def __init__(
        self, pid: int, folder: str, *, interval: float = 0.5, faults: bool = True, own_only: bool = False
    ) -> None:
        self.interval = interval
        self.faults = faults
        self.own_only = own_only
        self.folder = folder
        self.ranges: tuple[tuple[int, int], ...] = ()  # the lesson's regions (set on the UI thread)
        self._lock = threading.Lock()
        self._src = self._live(pid)
        self.title = f"demo workload {pid}"

    def _live(self, pid: int) -> LiveSource:
        # no lock budget (a step's evidence shows on the next tick), no fault cap (it is per page)
        return LiveSource(
            pid, interval=self.interval, pages=True, faults=self.faults, lock_budget=None, max_fault_rate=None
        )

    @property
    def faults_note(self) -> str | None:
        return self._src.faults_note

    def retarget(self, pid: int, folder: str) -> None:
        with self._lock:
            old, self._src = self._src, self._live(pid)
            self.title = f"demo workload {pid}"
            self.folder = folder
            self.ranges = ()
        old.close()

    def next_frame(self) -> Frame:
        with self._lock:
            src, folder, ranges = self._src, self.folder, self.ranges
        frame: Frame = src.next_frame()
        return own_frame(frame, folder, ranges) if self.own_only else frame

    def close(self) -> None:
        with self._lock:
            self._src.close()


class LectureNotes(Horizontal):
    """The narration and the evidence, side by side below the table and the page map."""

    def __init__(self, narration: NarrationPanel, evidence: EvidencePanel) -> None:
        super().__init__(id="notes")
        self.narration = narration
        self.evidence = evidence

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="narration-box"):
            yield self.narration
        with VerticalScroll(id="evidence-box"):
            yield self.evidence


class StepDone(Message):
    def __init__(self, result: StepResult | None, error: str | None = None) -> None:
        super().__init__()
        self.result, self.error = result, error


def _jump_bindings() -> list[BindingType]:
    return [Binding(str(d), f"jump_to({d})", f"Step {d}", show=False) for d in range(1, 10)]


class LectureApp(VmaInspectApp):
    """The live attach UI plus narration, evidence, and the lecture's keys."""

    CSS_PATH = [APP_CSS, LECTURE_CSS]  # type: ignore[assignment]  # the app declares one path
    TITLE = "vmainspect demo"
    PAUSE_KEY = "p"
    BINDINGS = [
        Binding("n", "next_step", "Next"),
        Binding("space", "next_step", "Next", show=False),
        Binding("b", "step_back", "Back"),
        Binding("left", "step_back", "Back", show=False),
        Binding("g", "jump", "Jump"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("a", "toggle_own", "All maps"),
        Binding("r", "restart", "Restart"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        # still there, listed in ? help; the footer keeps room for the lecture's keys
        Binding("s", "save", "Save", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("o", "next_sort", "Sort", show=False),
        Binding("l", "legend", "Legend", show=False),
        *_jump_bindings(),
    ]

    def __init__(
        self,
        lesson: Lesson,
        *,
        auto: float | None = None,
        big: bool = False,
        interval: float = 0.5,
        faults: bool = True,
        source: Any = None,
    ) -> None:
        """``source``: frames from elsewhere than the live workload (deterministic tests)."""
        self.lesson = lesson
        self.narration = NarrationPanel(len(lesson.steps), big=big, id="narration")
        self.evidence = EvidencePanel(id="evidence")
        folder = lesson.session.dir if lesson.session else ""
        if source is None:
            source = LectureSource(lesson.pid, folder, interval=interval, faults=faults, own_only=big)
        super().__init__(source, interval=interval, extra_panel=LectureNotes(self.narration, self.evidence))
        self.source: LectureSource = source
        self.auto = auto
        self.big = big
        self.step_running = False
        self.results: list[StepResult] = []
        self.viewing: int | None = None  # index of the recorded step on screen (None: the latest, live)
        self._run_until = 0  # g N past the last step run: keep running up to N
        self._focus: tuple[int, str] | None = None  # (address, step finished at, ISO)
        self._clocks: dict[str, list[float | None]] = {}  # path -> [dirtied at, clean after]
        self._auto_timer: Timer | None = None
        self.root = os.geteuid() == 0

    def on_mount(self) -> None:
        super().on_mount()
        if self.big:
            self.add_class("-lecture")
            self.register_theme(LECTURE_THEME)
            self.theme = LECTURE_THEME.name
        self.narration.intro(self.lesson.steps[0], self.root)
        self.evidence.show("Evidence: each step's faults, page changes and numbers appear here", None, None)
        if self.auto:
            self._auto_timer = self.set_interval(self.auto, self._auto_tick)
        # SIGHUP (terminal closed) and SIGTERM: handled in the event loop, never
        # at an arbitrary bytecode (a Python-level handler that calls into
        # Textual can deadlock its writer queue)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._exit_on_signal, sig)

    def _exit_on_signal(self, sig: int) -> None:
        """Exit; if the UI cannot shut down within 3 s (terminal gone), clean up and go."""

        def force() -> None:
            self.lesson.close()
            os._exit(128 + sig)

        watchdog = threading.Timer(3.0, force)
        watchdog.daemon = True
        watchdog.start()
        if self._auto_timer is not None:
            self._auto_timer.stop()
        self.source.close()
        self.exit(return_code=128 + sig)

    # --- steps -----------------------------------------------------------------------
    def action_next_step(self) -> None:
        if self.viewing is not None:
            if self.viewing + 1 < len(self.results):
                self._review(self.viewing + 1)
                return
            self._leave_review()
        self._start_next()

    def _start_next(self) -> None:
        if self.step_running:
            self.notify("the step is still running", timeout=2)
            return
        if self.lesson.done:
            self.notify("that was the last step: r restarts", timeout=3)
            return
        i = self.lesson.index
        step = self.lesson.steps[i]
        nxt = self.lesson.steps[i + 1].title if i + 1 < len(self.lesson.steps) else None
        self.step_running = True
        self.narration.running(step, i, nxt)
        self.evidence.show(f"Step {i + 1}: measuring…", None, None)
        self._run_step()

    @work(thread=True, exclusive=True, group="lecture-step")
    def _run_step(self) -> None:
        # post_message, not call_from_thread: never block on a UI that may be shutting down
        try:
            result = self.lesson.run_step()
        except (VmaInspectError, OSError) as e:
            self.post_message(StepDone(None, getattr(e, "detail", None) or str(e) or type(e).__name__))
            return
        except Exception as e:  # a bug: say so in the panel rather than end the lecture
            self.post_message(StepDone(None, f"internal error: {type(e).__name__}: {e}"))
            return
        self.post_message(StepDone(result))

    def on_step_done(self, msg: StepDone) -> None:
        if msg.result is None:
            self._step_failed(msg.error or "failed")
        else:
            self._step_done(msg.result)

    def _next_title(self, index: int) -> str | None:
        steps = self.lesson.steps
        return steps[index + 1].title if index + 1 < len(steps) else None

    def _step_done(self, result: StepResult) -> None:
        self.step_running = False
        self.results.append(result)
        if self.lesson.ctx is not None:
            self.source.ranges = tuple(self.lesson.ctx.regions.values())
        self.narration.done(result, self._next_title(result.index))
        self._show_evidence(result)
        ev = result.evidence
        if ev is not None and ev.dirty_file:
            self._clocks[ev.dirty_file] = [result.finished_at, None]
        self.page_map.zoom_to = ev.zoom if ev is not None else None
        if self.lesson.done:
            self.narration.finished()
        if result.focus:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._focus = (result.focus, now)
        self.request_frame()
        if self._run_until > len(self.results) and not self.lesson.done:
            self._start_next()
        else:
            self._run_until = 0

    def _show_evidence(self, result: StepResult, note: str | None = None) -> None:
        self.evidence.show(
            f"Step {result.index + 1} · {result.step.id}", result.holds, result.evidence, note=note
        )

    def _step_failed(self, error: str) -> None:
        self.step_running = False
        self._run_until = 0
        self.narration.failed(error)
        self.evidence.show("The step could not run", False, None)

    # --- looking back, jumping ----------------------------------------------------------
    def action_step_back(self) -> None:
        if self.step_running:
            self.notify("the step is still running", timeout=2)
            return
        at = self.viewing if self.viewing is not None else len(self.results) - 1
        if at <= 0:
            self.notify("no earlier step" if self.results else "no step has run yet", timeout=2)
            return
        self._review(at - 1)

    def action_jump(self) -> None:
        def done(n: int | None) -> None:
            if n is not None:
                self.action_jump_to(n)

        self.push_screen(JumpScreen(len(self.lesson.steps)), done)

    def action_jump_to(self, n: int) -> None:
        if self.step_running:
            self.notify("the step is still running", timeout=2)
            return
        if n <= len(self.results):
            self._review(n - 1)
            return
        if self.viewing is not None:
            self._leave_review()
        self._run_until = n
        self._start_next()

    def _review(self, index: int) -> None:
        """Show a recorded step: its narration, verdict, evidence, and page map at that time."""
        result = self.results[index]
        if self.viewing is None:
            self.pause(True)
        self.viewing = index
        self.narration.review(result)
        self._show_evidence(
            result, note=f"recorded {time.strftime('%H:%M:%S', time.localtime(result.finished_at))}"
        )
        ev, after = result.evidence, result.after
        if after is None:
            return
        addr = ev.zoom[0] if ev is not None and ev.zoom else result.focus
        self.page_map.zoom_to = ev.zoom if ev is not None else None
        if addr is None:
            return
        self.select_address(addr)
        vma = after.vma_at(addr)
        before = result.before.vma_at(addr) if result.before is not None else None
        prev = before if before is not None and vma is not None and before.start == vma.start else None
        self.page_map.show(vma, prev, after.capabilities, None, after.host.page_size)

    def _leave_review(self) -> None:
        self.viewing = None
        if self.results:
            last = self.results[-1]
            self.narration.done(last, self._next_title(last.index))
            self._show_evidence(last)
            self.page_map.zoom_to = last.evidence.zoom if last.evidence is not None else None
        self.pause(False)

    def action_toggle_pause(self) -> None:
        if self.viewing is not None:
            self._leave_review()
            return
        super().action_toggle_pause()

    def action_toggle_own(self) -> None:
        self.source.own_only = not self.source.own_only
        self.notify(
            "the workload's own mappings only" if self.source.own_only else "all of the workload's mappings",
            timeout=2,
        )
        self.request_frame()

    def action_help(self) -> None:
        self.push_screen(LectureHelpScreen())

    # --- live frames --------------------------------------------------------------------
    def frame_applied(self, frame: Frame) -> None:
        """Select the step's VMA once a frame taken after the step is on screen; tick the clocks."""
        self._tick_clocks()
        if frame.snapshot.process.pid != self.lesson.pid:
            # a poll of the previous workload that finished after a restart
            self._message = ""
            self.request_frame()
            return
        if self._prev is not None and self._prev.process.pid != frame.snapshot.process.pid:
            # diffed against the previous workload (a poll in flight during a
            # restart): its VMAs would all show as removed; take a clean frame
            self.current_frame = None
            self._prev = None
            self.request_frame()
            return
        if self._focus is None:
            return
        addr, after = self._focus
        if frame.snapshot.taken_at >= after:
            self._focus = None
            self.select_address(addr)
        else:
            self.request_frame()

    def _tick_clocks(self) -> None:
        """The writeback clock: how long the lesson's dirty file has been dirty, from cachestat."""
        if not self._clocks:
            self.evidence.set_clock(None)
            return
        from ..procfs.cachestat import page_cache_of
        from ..procfs.meminfo import read_writeback

        path = max(self._clocks, key=lambda p: self._clocks[p][0] or 0.0)
        since, clean = self._clocks[path]
        seconds = time.time() - (since or time.time())
        try:
            counts: Any = page_cache_of(path)
        except OSError:
            counts = None
        dirty = None if counts is None else counts.dirty
        if clean is None and dirty == 0:
            clean = self._clocks[path][1] = seconds
        wb = read_writeback()
        self.evidence.set_clock(
            Clock(
                path,
                seconds,
                None if counts is None else counts.cached,
                dirty,
                None if counts is None else counts.writeback,
                wb.dirty_expire_s,
                wb.dirty_writeback_s,
                clean,
            )
        )

    # --- restart, auto, quit ---------------------------------------------------------------
    def action_restart(self) -> None:
        if self.step_running:
            self.notify("wait for the running step to finish", timeout=2)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.restart()

        self.push_screen(ConfirmRestart(), answered)

    def restart(self) -> None:
        # on the UI (main) thread: the workload must outlive the thread that forks it.
        # Start the new workload and switch to it before the old one goes.
        old = self.lesson.detach()
        try:
            self.lesson.start(wait=False)
            self.source.retarget(self.lesson.pid, self.lesson.session.dir if self.lesson.session else "")
        finally:
            if old is not None:
                old.close()
        self.results.clear()
        self._clocks.clear()
        self._focus = None
        self._message = ""
        self._run_until = 0
        if self.viewing is not None:
            self.viewing = None
            self.pause(False)
        self.page_map.zoom_to = None
        # no diff against the old workload's VMAs (they would all show as removed)
        self.current_frame = None
        self._prev = None
        self.narration.intro(self.lesson.steps[0], self.root)
        self.evidence.show("Evidence: each step's faults, page changes and numbers appear here", None, None)
        self.sub_title = self.source.title
        self.request_frame()

    def _auto_tick(self) -> None:
        if self.step_running or self.viewing is not None:
            return
        if self.lesson.done:
            self.restart()
        else:
            self._start_next()

    async def action_quit(self) -> None:
        if self._auto_timer is not None:
            self._auto_timer.stop()
        await super().action_quit()


def run_lecture(
    *,
    auto: float | None = None,
    lecture: bool = False,
    interval: float = 0.5,
    faults: bool = True,
    save: bool = True,
) -> int:
    """`vmainspect demo`: start the workload, run the lecture app, always clean up.

    Before and after the event loop runs, SIGHUP/SIGTERM raise SystemExit
    (exit_on_signals); while it runs, the app handles them in the loop.
    """
    from ..demo.control import exit_on_signals

    with exit_on_signals(), Lesson(wait=False, faults=faults) as lesson:  # spawned here, on the main thread
        app = LectureApp(lesson, auto=auto, big=lecture, interval=interval, faults=faults)
        if not save:
            app.save_dir = None  # the `s` key says saving is off (serve's sessions)
        try:
            app.run()
        finally:
            app.source.close()
    return app.return_code or 0
