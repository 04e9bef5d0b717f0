"""Where the TUI's frames come from (no textual import here).

The app never reads /proc: it asks a *source* for frames, through the typed
``Source`` interface below. Every source says what it is (``kind``):

- ``SourceKind.LIVE``: a running process (``LiveSource``, on a
  ``session.LiveSession``); polling brings new frames until it is gone.
- ``SourceKind.RECORDING``: recorded frames (``tui.replay.RecordingSource``,
  ``FramesSource`` for tests and screenshots); polling plays them.
- ``SourceKind.SNAPSHOT``: one saved snapshot (``FileSource``); nothing to poll.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import VmaInspectError
from ..faults.cap import DEFAULT_MAX_RATE
from ..model import FaultTick, Frame, ProcessVitals, Snapshot
from ..units import seconds_text

if TYPE_CHECKING:
    from ..session.pacing import HeldBack

# session.pacing.DEFAULT_LOCK_BUDGET, not imported at module level: importing the session
# imports the collector, which a replay must never load (tests check both)
DEFAULT_LOCK_BUDGET = 0.01


class SourceKind(enum.Enum):
    LIVE = "live"
    RECORDING = "recording"
    SNAPSHOT = "snapshot"


class Source(Protocol):
    """What the app needs from a source. ``next_frame`` runs in the poll thread, one call at a time."""

    @property
    def kind(self) -> SourceKind: ...

    @property
    def title(self) -> str:  # shown in the header (e.g. "pid 1234 python3", a file name)
        ...

    @property
    def interval(self) -> float:  # seconds between polls (live) or frames (playback)
        ...

    @property
    def faults_note(self) -> str | None:  # why faults are not shown, if they are not
        ...

    def next_frame(self) -> Frame: ...

    def close(self) -> None: ...


class FileSource:
    """A saved snapshot (read-only). Loading happens here, so a bad file fails
    with a one-line BadInput before any UI starts."""

    kind = SourceKind.SNAPSHOT
    interval = 1.0
    faults_note: str | None = None

    def __init__(self, path: str) -> None:
        from .. import gcpause
        from ..snapshot import io as snapshot_io

        self.path = path
        with gcpause.paused():  # millions of acyclic objects for a 65k-VMA file
            self.snapshot = snapshot_io.load(path)
        self.title = os.path.basename(path)

    def next_frame(self) -> Frame:
        return Frame(self.snapshot)

    def close(self) -> None:
        pass


class FramesSource:
    """Replays ``frames`` in order, then keeps returning the last one (tests, screenshots)."""

    faults_note: str | None = None

    def __init__(
        self,
        frames: Sequence[Frame] | Iterable[Snapshot],
        *,
        title: str = "replay",
        kind: SourceKind = SourceKind.RECORDING,
        interval: float = 1.0,
    ) -> None:
        items = [f if isinstance(f, Frame) else Frame(f) for f in frames]
        if not items:
            raise ValueError("FramesSource needs at least one frame")
        self._frames = items
        self._next = 0
        self.title = title
        self.kind = kind
        self.interval = interval
        self.closed = False

    def next_frame(self) -> Frame:
        frame = self._frames[min(self._next, len(self._frames) - 1)]
        self._next += 1
        return frame

    def close(self) -> None:
        self.closed = True


def held_text(held: HeldBack, now: float) -> str:
    """One line for a tick the lock budget held back, e.g. "map 2.4 s old, next read in 1.6 s:
    41 ms under mmap lock (budget 1%); r reads now": the ages up to the first ": " (the status
    line shows them first: ``statusline.held_parts``), then why, short enough that a 100-column
    status line holds both (which reads hold the lock: docs/live-view.md)."""
    return (
        f"map {seconds_text(held.age(now))} old, next read in {seconds_text(held.wait(now))}: "
        f"{held.lock_s * 1000:,.0f} ms under mmap lock (budget {held.budget * 100:g}%); r reads now"
    )


class LiveSource:
    """A running process, one ``session.LiveSession`` step per ``next_frame()``.

    ``prime()`` takes the first snapshot synchronously so that a missing
    process or a permission problem is a one-line error before the UI
    starts. Once the session ends (exit, zombie, PID reuse) every frame is the
    last complete snapshot with ``gone=True`` and the reason.

    ``lock_budget``: see ``session.pacing`` (None: read the map every tick, as
    the lecture does). A tick the budget holds back shows the last map, with
    ``Frame.held`` saying how old it is and why; ``refresh_now()`` makes the
    next tick read it anyway (the ``r`` key). ``max_fault_rate``: fault samples a
    second (``faults.cap``; None: every fault, as the lecture's per-page evidence needs).
    """

    kind = SourceKind.LIVE

    def __init__(
        self,
        pid: int,
        *,
        interval: float = 1.0,
        pages: bool = True,
        faults: bool = True,
        proc_root: str = "/proc",
        lock_budget: float | None = DEFAULT_LOCK_BUDGET,
        max_fault_rate: int | None = DEFAULT_MAX_RATE,
    ) -> None:
        from ..session import LiveSession

        self.pid = pid
        self.interval = interval
        self.title = f"pid {pid}"
        self._session = LiveSession(
            pid,
            pages=pages,
            faults=faults,
            proc_root=proc_root,
            lock_budget=lock_budget,
            max_fault_rate=max_fault_rate,
        )
        self._force = False  # the next tick reads the map whatever the budget says
        self._pending: Frame | None = None
        self._primed = False
        self._wss = False  # the working-set view: reset referenced bits after each collect
        self._wss_reset_at: float | None = None
        self._wss_interval: float | None = None  # the interval the last map read covers
        self._pid, self._proc_root = pid, proc_root

    @property
    def lock_budget(self) -> float | None:
        return self._session.pacer.budget

    @property
    def held_steps(self) -> int:
        """Ticks the lock budget held back so far."""
        return self._session.held_steps

    def refresh_now(self) -> None:
        """The next ``next_frame()`` reads the map even if the lock budget would hold it back."""
        self._force = True

    @property
    def working_set(self) -> bool:
        return self._wss

    def set_working_set(self, on: bool) -> None:
        """Turn the working-set view on or off (see snapshot/wss.py for what it costs the target).

        While on, each collect is followed by a reset of the process's referenced
        bits, so the next snapshot's ``referenced`` counts what it touched in between
        (``Frame.wss_interval``). The frame right after turning it on has no interval yet.
        """
        self._wss = on
        self._wss_reset_at = None
        self._wss_interval = None

    def _frame(
        self,
        snap: Snapshot,
        faults: FaultTick | None,
        message: str | None = None,
        *,
        fresh: bool = True,
        held: str | None = None,
        vitals: ProcessVitals | None = None,
    ) -> Frame:
        """The frame for a snapshot: system writeback state, and the working set if on
        (the referenced bits are reset only after a map read: ``fresh``)."""
        from ..procfs.meminfo import read_writeback

        if not fresh:  # the map kept: its referenced counts cover the interval they covered
            wb = read_writeback(self._proc_root)
            return Frame(
                snap,
                faults,
                message=message,
                writeback=wb,
                wss_interval=self._wss_interval,
                held=held,
                vitals=vitals,
            )
        interval = None
        if self._wss:
            if self._wss_reset_at is not None:
                interval = time.monotonic() - self._wss_reset_at
            from ..snapshot.wss import reset

            try:
                reset(self._pid, self._proc_root)
                self._wss_reset_at = time.monotonic()
            except (VmaInspectError, OSError) as e:
                self._wss = False
                self._wss_reset_at = None
                interval = None
                message = f"working set off: {e}"
        self._wss_interval = interval
        return Frame(
            snap,
            faults,
            message=message,
            writeback=read_writeback(self._proc_root),
            wss_interval=interval,
            vitals=vitals,
        )

    @property
    def faults_note(self) -> str | None:
        note = self._session.faults_note
        return "fault sampling off (--no-faults)" if note == "fault sampling off" else note

    def prime(self) -> Frame:
        """First collect (raises ProcessGone / AccessDenied); starts fault sampling."""
        step = self._session.start()
        self._primed = True
        assert step.snapshot is not None
        self.title = f"pid {self.pid} {step.snapshot.process.name}"
        self._pending = self._frame(
            step.snapshot, step.faults.faults if step.faults else None, vitals=step.vitals
        )
        return self._pending

    def next_frame(self) -> Frame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if not self._primed:
            return self.prime()
        force, self._force = self._force, False
        step = self._session.step(force=force)
        assert step.snapshot is not None
        faults = step.faults.faults if step.faults else None
        if step.ended is not None:
            return Frame(step.snapshot, None, gone=True, message=step.ended.message)
        held = held_text(step.held, time.monotonic()) if step.held else None
        return self._frame(
            step.snapshot, faults, step.message, fresh=step.fresh, held=held, vitals=step.vitals
        )

    def close(self) -> None:
        self._session.close()
