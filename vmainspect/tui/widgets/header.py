"""The process header: who the process is, its memory totals and fault rate."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from ...model import Frame
from ...safetext import printable
from ...units import human_bytes
from .files import writeback_text

BADGES = {
    "live": ("● LIVE", "bold black on green"),
    "paused": ("❚❚ PAUSED", "bold black on yellow"),
    "gone": ("✖ EXITED", "bold white on red"),
    "file": ("▣ FILE", "bold white on blue"),
    "replay": ("▶ REPLAY", "bold black on cyan"),
}


def _rate(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 10 else f"{x:.1f}"


def counters(frame: Frame) -> tuple[str, int, int]:
    """(when read, minor faults, major faults) of the process in ``frame``: the counters read
    this tick (``Frame.vitals``) when there are some, else the snapshot's."""
    v = frame.vitals
    if v is not None:
        return v.taken_at, v.minor_faults, v.major_faults
    p = frame.snapshot.process
    return frame.snapshot.taken_at, p.minor_faults, p.major_faults


def facts_text(frame: Frame, state: str, rates: tuple[float, float] | None) -> Text:
    """Four lines of facts (the fourth: writeback and the working set, widgets/files.py). Spaces between fields are spans of their own, so
    SVG exports (screenshots) keep them."""
    s = frame.snapshot
    p = s.process
    v = frame.vitals  # read this tick, without the mmap lock: newer than the snapshot when it is kept
    t = Text(no_wrap=True, overflow="ellipsis")

    def field(label: str, value: str, style: str = "bold") -> None:
        t.append("  ")
        t.append(label + " ", "dim")
        t.append(value, style)

    label, style = BADGES.get(state, (state.upper(), "bold"))
    t.append(f" {label} ", style)
    t.append(" ")
    t.append(f"pid {p.pid}", "bold")
    t.append(" ")
    t.append(printable(p.name), "bold cyan")
    field("user", printable(p.user) if p.user is not None else "?", "")
    field("state", printable(v.state if v is not None else p.state), "")
    field("threads", str(v.threads if v is not None else p.threads), "")
    t.append("\n")
    t.append("cmd ", "dim")
    t.append(printable(" ".join(p.cmdline) if p.cmdline else f"[{p.name}]"))
    t.append("\n")
    tot = s.totals

    def tv(key: str, now: int | None = None) -> str:
        # ``now``: the kernel's counter read this tick (status VmRSS, VmSwap); else smaps_rollup's
        if now is not None:
            return human_bytes(now)
        return human_bytes(tot[key]) if key in tot else "?"

    t.append("RSS ", "dim")
    t.append(tv("rss", v.rss if v is not None else None), "bold")
    field("PSS", tv("pss"))  # only a walk of the map counts it: as of the map shown
    field("Swap", tv("swap", v.swap if v is not None else None))
    field("VMAs", f"{len(s.vmas):,}")
    mi, ma = rates if rates is not None else (None, None)
    _, minor, major = counters(frame)
    field("faults min", f"{minor:,}")
    t.append(" ")
    t.append(f"({_rate(mi)}/s)")
    field("maj", f"{major:,}")
    t.append(" ")
    t.append(f"({_rate(ma)}/s)", "bold red" if ma else "")
    t.append("\n")
    t.append_text(writeback_text(frame))
    return t


class ProcessHeader(Horizontal):
    DEFAULT_CSS = """
    ProcessHeader { height: 4; background: $panel; }
    ProcessHeader > #facts { width: 1fr; height: 4; text-wrap: nowrap; text-overflow: ellipsis; }
    ProcessHeader > #spark-box { width: 26; height: 4; padding: 0 1; }
    ProcessHeader #spark-label { height: 1; color: $text-muted; }
    ProcessHeader Sparkline { height: 3; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="facts")
        with Vertical(id="spark-box"):
            yield Static("faults/s, last minute", id="spark-label")
            yield Sparkline([], id="spark")

    def show(self, frame: Frame, state: str, rates: tuple[float, float] | None, history: list[float]) -> None:
        self.query_one("#facts", Static).update(facts_text(frame, state, rates), layout=False)
        peak = max(history) if history else 0
        self.query_one("#spark-label", Static).update(
            f"faults/s, 60 s (max {_rate(peak) if history else '–'})", layout=False
        )
        # all zeros would draw a solid block: show nothing until something faults
        self.query_one(Sparkline).data = list(history) if peak > 0 else []
