"""Where the TUI's frames come from (no textual import here).

The app never reads /proc: it asks a *source* for frames. A source has

- ``title: str``          shown in the header (e.g. "pid 1234", a file name)
- ``live: bool``          True if asking again can give something new
- ``next_frame() -> Frame``  blocking; called from a worker thread, one call at a time
- ``close()``             release what it holds (perf events)

``LiveSource`` collects a running process, ``FileSource`` shows a saved
snapshot, ``FramesSource`` replays a fixed list (tests, screenshots).
The recording source lives in ``tui/replay.py``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Sequence
from typing import Protocol

from ..errors import AccessDenied, ProcessGone, VmaInspectError
from ..model import Frame, Snapshot


def settle_gc() -> None:
    """Move what exists now out of the cyclic GC's reach.

    A 65k-VMA snapshot is ~10^6 acyclic objects; left tracked, every full
    collection rescans all of them (about a second) and stalls whatever thread
    triggers it, the UI included. Refcounting still frees them when dropped.
    Young garbage is collected first so little cyclic garbage is frozen.
    """
    gc.collect(1)
    gc.freeze()


class Source(Protocol):
    title: str
    live: bool

    def next_frame(self) -> Frame: ...

    def close(self) -> None: ...


class FileSource:
    """A saved snapshot (read-only). Loading happens here, so a bad file fails
    with a one-line BadInput before any UI starts."""

    live = False

    def __init__(self, path: str) -> None:
        from ..snapshot import io as snapshot_io

        self.path = path
        # a 65k-VMA snapshot is millions of acyclic objects: the cyclic GC
        # would rescan them over and over while they are built
        enabled = gc.isenabled()
        gc.disable()
        try:
            self.snapshot = snapshot_io.load(path)
        finally:
            if enabled:
                gc.enable()
        settle_gc()
        self.title = os.path.basename(path)

    def next_frame(self) -> Frame:
        return Frame(self.snapshot)

    def close(self) -> None:
        pass


class FramesSource:
    """Replays ``frames`` in order, then keeps returning the last one."""

    def __init__(
        self, frames: Sequence[Frame] | Iterable[Snapshot], *, title: str = "replay", live: bool = True
    ) -> None:
        items = [f if isinstance(f, Frame) else Frame(f) for f in frames]
        if not items:
            raise ValueError("FramesSource needs at least one frame")
        self._frames = items
        self._next = 0
        self.title = title
        self.live = live
        self.closed = False

    def next_frame(self) -> Frame:
        frame = self._frames[min(self._next, len(self._frames) - 1)]
        self._next += 1
        return frame

    def close(self) -> None:
        self.closed = True


def _fault_sampler_class():
    """E's FaultSampler if the module is there, else None (faults then off)."""
    try:
        from ..faults.sampler import FaultSampler
    except ImportError:
        return None
    return FaultSampler


class LiveSource:
    """Collects a running process on every ``next_frame()``.

    ``prime()`` takes the first snapshot synchronously so that a missing
    process or a permission problem is a one-line error before the UI
    starts. Afterwards ProcessGone (exit, or PID reuse caught by the create
    time changing) becomes ``Frame(last snapshot, gone=True, message=...)``.
    """

    live = True

    def __init__(
        self,
        pid: int,
        *,
        interval: float = 1.0,
        pages: bool = True,
        faults: bool = True,
        proc_root: str = "/proc",
    ) -> None:
        self.pid = pid
        self.interval = interval
        self.pages = pages
        self.want_faults = faults
        self.proc_root = proc_root
        self.title = f"pid {pid}"
        self.faults_note: str | None = None if faults else "fault sampling off (--no-faults)"
        self._sampler = None
        self._pending: Frame | None = None
        self._last: Snapshot | None = None
        self._gone: Frame | None = None

    def _collect(self) -> Snapshot:
        from ..snapshot.collect import collect

        return collect(self.pid, pages=self.pages, proc_root=self.proc_root)

    def prime(self) -> Frame:
        """First collect (raises ProcessGone / AccessDenied); starts fault sampling."""
        snap = self._collect()
        settle_gc()
        self._last = snap
        self.title = f"pid {self.pid} {snap.process.name}"
        if self.want_faults:
            self._start_sampler()
        faults = self._tick_faults(snap)
        self._pending = Frame(snap, faults)
        return self._pending

    def _start_sampler(self) -> None:
        cls = _fault_sampler_class()
        if cls is None:
            self.faults_note = "fault sampling not available in this build (vmainspect.faults missing)"
            return
        try:
            sampler = cls(self.pid)
            sampler.start()
        except (VmaInspectError, OSError) as e:
            self.faults_note = f"fault sampling unavailable: {e}"
            return
        self._sampler = sampler

    def _tick_faults(self, snap: Snapshot):
        if self._sampler is None:
            return None
        try:
            return self._sampler.tick(snap).faults
        except (VmaInspectError, OSError) as e:
            self.faults_note = f"fault sampling stopped: {e}"
            self._close_sampler()
            return None

    def next_frame(self) -> Frame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._gone is not None:
            return self._gone
        if self._last is None:
            return self.prime()
        try:
            snap = self._collect()
        except ProcessGone as e:
            return self._went(str(e))
        except AccessDenied as e:
            # e.g. the target exec'd a setuid binary: keep the last view, say why
            return Frame(self._last, None, message=str(e))
        old = self._last.process.create_time
        if old is not None and snap.process.create_time not in (None, old):
            return self._went(f"process {self.pid} exited and its PID was reused by {snap.process.name!r}")
        if snap.process.state in ("Z", "X") and self._last.process.state not in ("Z", "X"):
            # its memory is gone; keep the last view that had it
            return self._went(f"process {self.pid} has exited (a zombie until its parent reaps it)")
        self._last = snap
        return Frame(snap, self._tick_faults(snap))

    def _went(self, message: str) -> Frame:
        assert self._last is not None
        self._close_sampler()
        self._gone = Frame(self._last, None, gone=True, message=message)
        return self._gone

    def _close_sampler(self) -> None:
        if self._sampler is not None:
            try:
                self._sampler.close()
            except (VmaInspectError, OSError):
                pass
            self._sampler = None

    def close(self) -> None:
        self._close_sampler()
