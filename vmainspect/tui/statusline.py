"""The app's one-line texts (status line, filter box, panel tabs) and the fault-rate history.

Pure functions of what they show: the app calls them and puts the result on
screen. Text from processes (filters typed, messages) is added as text,
never parsed as markup.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from rich.text import Text

from ..model import Frame
from .rows import COLUMNS, Rows
from .safe import literal
from .widgets.header import counters
from .widgets.vma_table import VmaTable


def parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class FaultRates:
    """Faults per second between consecutive frames (the kernel's counters), and the last minute of them."""

    def __init__(self, interval: float) -> None:
        self.rates: tuple[float, float] | None = None  # (minor, major) per second
        self.history: deque[float] = deque(maxlen=max(2, round(60 / max(interval, 0.05))))

    def update(self, old: Frame | None, new: Frame) -> None:
        """Rates from the counters of ``old`` and ``new`` (``header.counters``: those read each
        tick when the frames have them, so a tick that kept the map counts too)."""
        if old is None or new.gone:
            return
        if old.snapshot.process.pid != new.snapshot.process.pid:
            self.history.clear()
            self.rates = None
            return
        (when0, mi0, ma0), (when1, mi1, ma1) = counters(old), counters(new)
        t0, t1 = parse_time(when0), parse_time(when1)
        if t0 is None or t1 is None or t1 <= t0:  # the same reading (a kept map, no newer counters)
            return
        dt = t1 - t0
        mi = max(0, mi1 - mi0) / dt
        ma = max(0, ma1 - ma0) / dt
        self.rates = (mi, ma)
        self.history.append(mi + ma)


def status_text(
    rows: Rows, table: VmaTable, frame: Frame | None, paused: str | None, message: Text | str
) -> Text:
    """VMAs shown, sort, capabilities, when taken; ``paused``: the key that resumes, if paused."""
    t = Text(no_wrap=True, overflow="ellipsis")
    n = len(rows) - len(rows.ghost)
    shown = len(table.order)
    col = next(c.title for c in COLUMNS if c.key == table.sort)
    t.append(f"{shown:,} of {n:,} VMAs" if table.filter_text else f"{n:,} VMAs")
    if table.filter_text:
        t.append(f" matching {table.filter_text!r}", "bold")
    held = frame is not None and bool(frame.held) and not frame.gone
    if held:  # early: a narrow line keeps it; the age stands for the time taken
        assert frame is not None and frame.held
        t.append(" · ")
        t.append_text(literal(held_parts(frame.held)[0], "yellow"))
    if held and message:  # why it is held (frame_message): before the rest, so 100 columns hold it all
        t.append(" · ")
        t.append_text(message if isinstance(message, Text) else literal(message))
        message = ""
    if not held:  # held: the column header's ▲▼ says it, and the line has no room for it
        t.append(f" · sort {col} {'▼' if table.reverse else '▲'}")
    if frame is not None:
        caps = frame.snapshot.capabilities
        if not caps.root:
            t.append(" · not root: PFNs, page flags and sharing hidden (see page map)", "yellow")
        if not held:
            t.append(f" · taken {frame.snapshot.taken_at[11:19]}Z", "dim")
    if paused is not None:
        t.append(f" · PAUSED ({paused} resumes)", "bold yellow")
    if message:
        t.append(" · ")
        t.append_text(message if isinstance(message, Text) else literal(message))
    return t


def held_parts(held: str) -> tuple[str, str]:
    """A ``Frame.held`` line split into how old the map is and when the next read comes ("map
    2.4 s old, next read in 1.6 s"), which ``status_text`` puts right after the VMA count (a
    status line 80 columns wide cuts off what follows), and why ("41 ms under mmap lock
    (budget 1%); r reads now"), which comes next: the two fit 100 columns."""
    ages, _, why = held.partition(": ")
    return ages, why


def frame_message(frame: Frame, held_shown: bool) -> tuple[Text | str, bool] | None:
    """The status line's message for a live frame that is not ``gone``, and whether it is a
    ``Frame.held`` line (why the map is N s old; ``status_text`` shows the ages); None: keep
    the message shown. A frame read again clears a held line (it no longer holds) but not
    another message."""
    if frame.message:
        return literal(frame.message, "yellow"), False
    if frame.held:  # the lock budget kept the last map: why (status_text shows how old it is)
        return literal(held_parts(frame.held)[1], "yellow"), True
    if held_shown:
        return "", False
    return None


def filter_text(table: VmaTable) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if table.filtering:
        t.append("/ ", "bold")
        t.append(table.filter_text, "bold")
        t.append("▏", "blink")
        t.append("   Enter keeps, Esc clears", "dim")
    elif table.filter_text:
        t.append("filter ", "dim")
        t.append(table.filter_text, "bold")
        t.append("   / edits", "dim")
    else:
        t.append("/ filter: path, kind or perms", "dim")
    return t


def tabs_text(panels: tuple[str, ...], titles: dict[str, str], current: str) -> Text:
    t = Text()
    for i, name in enumerate(panels, 1):
        style = "bold reverse" if name == current else "dim"
        t.append(f" {i} {titles[name]} ", style)
        t.append(" ")
    return t
