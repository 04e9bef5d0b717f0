"""Lecture mode: the live TUI on the demo workload, plus a narration panel.

``n``/space runs the next step in a worker thread; the narration panel shows
what the kernel does and what to watch at once, and the verdict (measured
numbers, claim held or not) when the step's snapshots are in. The affected
VMA is selected in the table as soon as a frame taken after the step is on
screen. ``r`` restarts with a fresh workload, ``--auto`` advances by
itself, ``q`` quits; the workload and its temp folder go on every way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from datetime import UTC, datetime
from threading import Lock

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.theme import Theme
from textual.widgets import Static

from ..demo.lesson import Lesson, StepResult
from ..demo.steps import Step
from ..errors import VmaInspectError
from ..model import Frame
from .app import VmaInspectApp
from .sources import LiveSource

VERDICT = {
    True: ("✔ HOLDS", "bold black on green"),
    False: ("✘ DID NOT HOLD", "bold white on red"),
    None: ("? UNKNOWN", "bold black on yellow"),
}


# --lecture: black background, white text, yellow and cyan accents, for projectors
LECTURE_THEME = Theme(
    name="vmainspect-lecture",
    dark=True,
    primary="#ffd400",
    secondary="#00e5ff",
    accent="#ffd400",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#202020",
    success="#00e000",
    warning="#ffd400",
    error="#ff3030",
)


class LectureSource:
    """A LiveSource on the current workload; ``retarget()`` switches to a new one (restart)."""

    live = True

    def __init__(self, pid: int, *, interval: float = 0.5, faults: bool = True) -> None:
        self.interval = interval
        self.faults = faults
        self._lock = Lock()
        self._src = LiveSource(pid, interval=interval, pages=True, faults=faults)
        self.title = f"demo workload {pid}"

    @property
    def faults_note(self) -> str | None:
        return self._src.faults_note

    def retarget(self, pid: int) -> None:
        with self._lock:
            old, self._src = (
                self._src,
                LiveSource(pid, interval=self.interval, pages=True, faults=self.faults),
            )
            self.title = f"demo workload {pid}"
        old.close()

    def next_frame(self) -> Frame:
        with self._lock:
            src = self._src
        return src.next_frame()

    def close(self) -> None:
        with self._lock:
            self._src.close()


class NarrationPanel(Static):
    """Step title, narration, what to watch, then the verdict."""

    DEFAULT_CSS = """
    NarrationPanel { height: auto; padding: 0 1; border: round $accent; }
    """

    def __init__(self, total: int, *, big: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.total = total
        self.big = big
        self.step: Step | None = None
        self.index = 0
        self.result: StepResult | None = None
        self.state = "intro"  # intro | running | done | error | finished
        self.error: str | None = None
        self.next_title: str | None = None
        self.root_hidden = False

    def intro(self, first: Step, root: bool) -> None:
        self.step, self.index, self.result, self.state = first, 0, None, "intro"
        self.root_hidden = not root
        self.next_title = first.title
        self._show()

    def running(self, step: Step, index: int, next_title: str | None) -> None:
        self.step, self.index, self.result, self.error = step, index, None, None
        self.state, self.next_title = "running", next_title
        self._show()

    def done(self, result: StepResult) -> None:
        self.result, self.state = result, "done"
        self._show()

    def failed(self, error: str) -> None:
        self.error, self.state = error, "error"
        self._show()

    def finished(self) -> None:
        self.state = "finished"
        self._show()

    def text(self) -> Text:
        t = Text()
        b = "bold " if self.big else ""
        if self.state == "intro":
            t.append("vmainspect lecture: how mmap and page faults work\n", b + "bold")
            t.append(
                f"{self.total} steps. Each makes the demo workload do one thing; vmainspect then "
                "checks the step's claim against the kernel's own accounting.\n",
                b,
            )
            if self.root_hidden:
                t.append(
                    "Not root: dirty pages and mapping counts cannot be read "
                    "(/proc/kpageflags, /proc/kpagecount); those claims show as unknown.\n",
                    "bold yellow",
                )
            t.append(f"\nPress n or space for step 1: {self.next_title}", "bold")
            return t
        step = self.step
        assert step is not None
        t.append(f"Step {self.index + 1}/{self.total} · ", "bold")
        t.append(step.title + "\n", "bold underline" if not self.big else "bold reverse")
        for line in step.narration:
            t.append("  " + line + "\n", b)
        t.append("Watch: ", "bold cyan")
        t.append(step.watch + "\n", b + "cyan")
        if self.root_hidden and step.root_note:
            t.append(f"Not root: {step.root_note}; that part is unknown.\n", "yellow")
        if self.state == "running":
            t.append("\nrunning… measuring before and after", "italic")
        elif self.state == "error":
            t.append("\nThe step could not run: ", "bold red")
            t.append(self.error or "", "red")
            t.append("  (r restarts)", "dim")
        elif self.result is not None:
            word, style = VERDICT[self.result.holds]
            t.append("\n")
            t.append(f" {word} ", style)
            t.append(" " + step.claim + "\n", b)
            t.append("Measured: ", "bold")
            t.append(self.result.summary + "\n", b)
            if self.result.reason:
                t.append(self.result.reason + "\n", "yellow" if self.result.holds is None else "red")
            if self.state == "finished" or self.next_title is None:
                t.append("That was the last step: r starts again, q quits.", "bold")
            else:
                t.append(f"Next (n / space): {self.next_title}", "dim" if not self.big else "bold")
        return t

    def _show(self) -> None:
        self.update(self.text())


class StepDone(Message):
    def __init__(self, result: StepResult | None, error: str | None = None) -> None:
        super().__init__()
        self.result, self.error = result, error


class LectureApp(VmaInspectApp):
    """D's live attach UI plus the narration panel and the step keys."""

    CSS_PATH = ["app.tcss", "lecture.tcss"]
    TITLE = "vmainspect demo"
    BINDINGS = [
        Binding("n", "next_step", "Next step", priority=True),
        Binding("space", "next_step", "Next step", show=False, priority=True),
        Binding("r", "restart", "Restart", priority=True),
        Binding("p", "toggle_pause", "Pause", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        lesson: Lesson,
        *,
        auto: float | None = None,
        big: bool = False,
        interval: float = 0.5,
        faults: bool = True,
    ) -> None:
        self.lesson = lesson
        self.narration = NarrationPanel(len(lesson.steps), big=big, id="narration")
        source = LectureSource(lesson.pid, interval=interval, faults=faults)
        super().__init__(source, interval=interval, extra_panel=self.narration)
        self.auto = auto
        self.big = big
        self.step_running = False
        self.results: list[StepResult] = []
        self._focus: tuple[int, str] | None = None  # (address, step finished at, ISO)
        self._auto_timer = None
        self.root = os.geteuid() == 0

    def on_mount(self) -> None:
        super().on_mount()
        if self.big:
            self.add_class("-lecture")
            self.register_theme(LECTURE_THEME)
            self.theme = LECTURE_THEME.name
        self.narration.intro(self.lesson.steps[0], self.root)
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

    def _state(self) -> str:
        # D's header calls any source but LiveSource "replay"; ours is live
        state = super()._state()
        return "live" if state == "replay" else state

    # --- steps -----------------------------------------------------------------------
    def action_next_step(self) -> None:
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

    def _step_done(self, result: StepResult) -> None:
        self.step_running = False
        self.results.append(result)
        self.narration.done(result)
        if self.lesson.done:
            self.narration.finished()
        if result.focus:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._focus = (result.focus, now)
        self.request_frame()

    def _step_failed(self, error: str) -> None:
        self.step_running = False
        self.narration.failed(error)

    def frame_applied(self, frame: Frame) -> None:
        """Select the step's VMA once a frame taken after the step is on screen."""
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

    def action_restart(self) -> None:
        if self.step_running:
            self.notify("wait for the running step to finish", timeout=2)
            return
        # on the UI (main) thread: the workload must outlive the thread that forks it.
        # Start the new workload and switch to it before the old one goes.
        old = self.lesson.detach()
        try:
            self.lesson.start(wait=False)
            self.source.retarget(self.lesson.pid)
        finally:
            if old is not None:
                old.close()
        self.results.clear()
        self._focus = None
        self._message = ""
        # no diff against the old workload's VMAs (they would all show as removed)
        self.current_frame = None
        self._prev = None
        self.narration.intro(self.lesson.steps[0], self.root)
        self.sub_title = self.source.title
        self.request_frame()

    def _auto_tick(self) -> None:
        if self.step_running:
            return
        if self.lesson.done:
            self.action_restart()
        else:
            self.action_next_step()

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

    with exit_on_signals(), Lesson(wait=False) as lesson:  # spawned here, on the main thread
        app = LectureApp(lesson, auto=auto, big=lecture, interval=interval, faults=faults)
        if not save:
            app.save_dir = None  # the `s` key says saving is off (serve's sessions)
        try:
            app.run()
        finally:
            app.source.close()
    return app.return_code or 0
