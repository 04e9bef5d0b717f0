"""Replaying a recording in the TUI: a source with a cursor, a timeline, and the keys.

``RecordingSource`` feeds D's ``VmaInspectApp`` frames from a recording file
(no /proc, no collector: it runs on any OS). ``ReplayApp`` is the app with a
``Timeline`` under the table and these keys:

    left / right        previous / next frame (pauses playback)
    shift+left / right  10 frames back / forward
    [ / ]               first / last frame
    p or space          play / pause (plays at the recorded pace; from the start if at the end)
    + / -               play faster / slower
    t                   jump to a time (12.5), a frame (#30), or m:ss (1:05)

Change highlighting is the same as live mode: the frame shown is always
compared with the frame recorded just before it, whichever way you step.
"""

from __future__ import annotations

import os
import threading

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label

from ..errors import BadInput
from ..model import Frame
from ..recording.io import Recording, moment_index, read_recording, sniff, split_moment
from ..safetext import printable
from ..units import human_bytes
from .app import VmaInspectApp
from .sources import SourceKind

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
_BARS = " ▁▂▃▄▅▆▇█"


class RecordingSource:
    """A recording as a TUI source: ``next_frame()`` shows the frame under the cursor.

    While ``playing``, each ``next_frame()`` also moves the cursor one frame
    on, so the app's own polling timer plays the recording.
    """

    kind = SourceKind.RECORDING  # the app keeps polling (that is playback); pause stops it

    def __init__(self, recording: Recording, start: int = 0) -> None:
        self.recording = recording
        n = len(recording)
        self._lock = threading.Lock()
        self._next = max(0, min(start, n - 1))
        self.shown: int | None = None
        self.playing = False
        self.interval = float(recording.header.get("interval_s") or 1.0)
        name = recording.header.get("name") or "?"
        self.title = (
            f"{os.path.basename(recording.path)}: recording of pid {recording.pid} {name}, "
            f"{n} frames, {recording.duration:.1f}s"
        )
        notes = [text for t, text in recording.notes if "fault" in text]
        self.faults_note: str | None
        if not recording.header.get("faults"):
            self.faults_note = notes[0] if notes else "page faults were not recorded"
        else:  # e.g. "page faults from /proc counters: ..." written when the recording started
            self.faults_note = notes[0] if notes else None

    @classmethod
    def open(cls, spec: str) -> RecordingSource:
        """``REC``, ``REC@T`` or ``REC#N``; BadInput (one line) on a bad file."""
        path, moment = split_moment(spec)
        rec = read_recording(path)
        return cls(rec, moment_index(rec, moment) if moment else 0)

    def __len__(self) -> int:
        return len(self.recording)

    @property
    def upcoming(self) -> int:
        """The frame the next ``next_frame()`` will return."""
        return self._next

    def seek(self, index: int) -> int:
        with self._lock:
            self._next = max(0, min(index, len(self.recording) - 1))
            return self._next

    def next_frame(self) -> Frame:
        with self._lock:
            i = self._next
            if self.playing and i < len(self.recording) - 1:
                self._next = i + 1
        frame = self.recording.frame(i)
        self.shown = i
        return frame

    def close(self) -> None:
        self.playing = False


class Timeline(Widget):
    """Where we are in the recording: state, frame, time, and an RSS sparkline with a cursor."""

    DEFAULT_CSS = """
    Timeline {
        height: 2;
        padding: 0 1;
        background: $panel;
    }
    """

    def __init__(self, source: RecordingSource, **kw) -> None:
        super().__init__(**kw)
        self.source = source
        self.speed = 1.0
        self._rss = source.recording.series("rss")

    def update_frame(self, frame: Frame) -> None:  # D's extra-panel hook
        self.refresh()

    def _column_frame(self, x: int, width: int) -> int:
        n = len(self.source)
        return min(n - 1, max(0, x * n // max(1, width)))

    def render(self) -> Text:
        src, rec = self.source, self.source.recording
        n = len(rec)
        i = src.shown if src.shown is not None else src.upcoming
        width = max(10, self.size.width - 2)
        t = Text(no_wrap=True, overflow="ellipsis")
        if src.playing:
            t.append(f" ▶ PLAYING {self.speed:g}x ", "bold black on green")
        else:
            t.append(" ❚❚ PAUSED ", "bold black on yellow")
        t.append(f"  frame {i + 1}/{n}", "bold")
        t.append(f"  t {rec.times[i]:.1f}s / {rec.duration:.1f}s")
        t.append(f"  RSS {human_bytes(self._rss[i])}", "bold")
        hint = "  ←/→ step  p play  t jump"
        if rec.truncated_at_line is not None:
            t.append(f"  · file stops at line {rec.truncated_at_line} ({rec.truncation})", "yellow")
        elif rec.end and i == n - 1:
            t.append(f"  · {printable(rec.notes[-1][1] if rec.notes else rec.end)}", "dim")
        if t.cell_len + len(hint) <= width:
            t.append(hint, "dim")
        t.truncate(width, overflow="ellipsis")
        # sparkline of RSS, one column per frame (or per group of frames)
        line = Text(no_wrap=True)
        known = [v for v in self._rss if v is not None]
        lo, hi = (min(known), max(known)) if known else (0, 0)
        cursor = i * width // n if n > width else None
        for x in range(width):
            f = self._column_frame(x, width)
            v = self._rss[f]
            if v is None:
                ch = "?"
            elif hi == lo:
                ch = _BARS[4]
            else:
                ch = _BARS[1 + (v - lo) * 7 // (hi - lo)]
            here = (x == cursor) if cursor is not None else (f == i)
            line.append(ch, "bold reverse bright_cyan" if here else ("cyan" if f <= i else "bright_black"))
        return Text("\n").join([t, line])

    def on_click(self, event: Click) -> None:
        if event.y == 1:
            app = self.app
            if isinstance(app, ReplayApp):
                app.seek(self._column_frame(event.x - 1, max(10, self.size.width - 2)))


class JumpScreen(ModalScreen):
    """Ask for a time (seconds, m:ss) or a frame (#N)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    JumpScreen { align: center middle; }
    JumpScreen > Vertical { width: 60; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Jump to: seconds (12.5), m:ss (1:05) or a frame (#30, #-1 = last)")
            yield Input(placeholder="12.5", id="jump")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_jump(rec: Recording, text: str) -> int:
    """Frame index for what the user typed in the jump box; BadInput if it names none."""
    text = text.strip()
    if not text:
        raise BadInput("type a time in seconds, m:ss, or #frame")
    if text.startswith("#"):
        return moment_index(rec, text)
    if ":" in text:
        m, _, s = text.partition(":")
        try:
            text = str(int(m) * 60 + float(s))
        except ValueError:
            raise BadInput(f"not a time: {text!r}") from None
    return moment_index(rec, "@" + text.lstrip("@"))


class ReplayApp(VmaInspectApp):
    """VmaInspectApp with a timeline: the keys in the module docstring."""

    # absolute, so that subclasses defined elsewhere (tests) find D's stylesheet
    CSS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.tcss")
    BINDINGS = [
        Binding("left", "step(-1)", "Back"),
        Binding("right", "step(1)", "Forward"),
        Binding("shift+left", "step(-10)", "Back 10", show=False),
        Binding("shift+right", "step(10)", "Forward 10", show=False),
        Binding("left_square_bracket", "seek(0)", "First frame", show=False),
        Binding("right_square_bracket", "seek(-1)", "Last frame", show=False),
        Binding("p", "toggle_pause", "Play/pause"),
        Binding("plus,equals_sign", "speed(1)", "Faster", show=False),
        Binding("minus", "speed(-1)", "Slower", show=False),
        Binding("t", "jump", "Jump to time"),
    ]

    def __init__(self, source: RecordingSource, **kw) -> None:
        self.timeline = Timeline(source, id="timeline")
        super().__init__(source, extra_panel=self.timeline, **kw)
        self.paused = True  # start on the first frame, paused (space / p plays)
        self._base_interval = source.interval

    @property
    def replay(self) -> RecordingSource:
        return self.source  # type: ignore[return-value]

    # The app compares the new frame with ``current_frame`` when it asks for
    # it. In a replay that is whatever was on screen (maybe a later frame);
    # present the frame recorded just before the one about to be shown
    # instead, so highlighting means what it means live: "changed since the
    # previous tick".
    def request_frame(self) -> None:
        if self._polling:
            return  # frame_applied asks again if the cursor moved meanwhile
        i = self.replay.upcoming  # the frame next_frame() will return
        shown = self.current_frame
        try:
            self.current_frame = Frame(self.replay.recording.snapshot(i - 1)) if i > 0 else None
        except BadInput:
            self.current_frame = None  # a damaged previous frame: no highlighting
        try:
            super().request_frame()  # reads current_frame synchronously, then polls in a worker
        finally:
            self.current_frame = shown

    def seek(self, index: int) -> None:
        if self.replay.playing:
            self._set_playing(False)
        n = len(self.replay)
        self.replay.seek(index if index >= 0 else n + index)
        self.request_frame()

    def action_step(self, delta: int) -> None:
        cur = self.replay.shown if self.replay.shown is not None else self.replay.upcoming
        self.seek(max(0, min(cur + delta, len(self.replay) - 1)))

    def action_seek(self, index: int) -> None:
        self.seek(index)

    def _set_playing(self, playing: bool) -> None:
        src = self.replay
        cur = src.shown if src.shown is not None else src.upcoming
        if playing:
            src.seek(0 if cur >= len(src) - 1 else cur + 1)  # at the end: play from the start
            src.playing = True
            self.pause(False)  # polls now, then every interval
        else:
            src.playing = False
            src.seek(cur)
            self.pause(True)
        self.timeline.refresh()

    def action_toggle_pause(self) -> None:
        self._set_playing(not self.replay.playing)

    def action_speed(self, direction: int) -> None:
        k = SPEEDS.index(self.timeline.speed) if self.timeline.speed in SPEEDS else 2
        k = max(0, min(len(SPEEDS) - 1, k + direction))
        self.timeline.speed = SPEEDS[k]
        self.interval = self._base_interval / SPEEDS[k]
        self.timeline.refresh()
        self.notify(f"playback speed {SPEEDS[k]:g}x", timeout=1.5)

    def action_jump(self) -> None:
        def done(text: str | None) -> None:
            if not text:
                return
            try:
                index = parse_jump(self.replay.recording, text)
            except BadInput as e:
                self.notify(str(e), severity="warning")
                return
            self.seek(index)

        self.push_screen(JumpScreen(), done)

    @work(thread=True, exclusive=True, group="prefetch")
    def _prefetch(self, around: int) -> None:
        """Rebuild the neighbours of the shown frame off the UI thread, so that stepping
        (which needs the frame and the one before it) rarely waits on the UI thread."""
        rec = self.replay.recording
        for i in (around - 1, around + 1, around - 2):
            if 0 <= i < len(rec) and not rec.cached(i):
                try:
                    rec.snapshot(i)
                except BadInput:
                    pass

    def frame_applied(self, frame: Frame) -> None:
        src = self.replay
        if src.shown is not None:
            self._prefetch(src.shown)
        if frame.gone:
            self._gone_shown = True
        elif getattr(self, "_gone_shown", False):
            # stepped back from the recorded exit: the app's "process exited" status no longer applies
            self._gone_shown = False
            self._message = ""
            self._show_status()
        if src.playing and src.shown == len(src) - 1:
            src.playing = False  # reached the end
            self.pause(True)
        elif not src.playing and src.upcoming != src.shown:
            self.request_frame()  # the user stepped while that frame was on its way
        self.timeline.refresh()

    def _can_poll(self) -> bool:
        # a replay can always show another frame (even after the recorded process exited)
        return self.source is not None and self.replay.playing


def is_recording(spec: str) -> bool:
    """True if ``spec`` (a path, or REC@T / REC#N) names a recording file."""
    path, _ = split_moment(spec)
    if not os.path.isfile(path):
        return False
    return sniff(path) == "recording"


def run(spec: str, *, save_dir: str | None = ".") -> int:
    """``vmainspect open REC[@T|#N]``: load (one-line error on a bad file), then replay."""
    import sys

    source = RecordingSource.open(spec)
    warning = source.recording.warning()
    if warning:
        print(f"vmainspect: warning: {warning}", file=sys.stderr)
    app = ReplayApp(source, save_dir=save_dir)
    app.run()
    return app.return_code or 0
