"""The lecture's evidence panel: what a step did, measured, shown until the next step.

It shows the step's verdict, the faults it caused (minor, major, by mapping
and by function), its page-state transitions (``64 absent → anon``), the
numbers its verdict rests on, a table of its own (the crash matrix), and the
writeback clock: how long a file the lesson dirtied has been dirty, against
``vm.dirty_expire_centisecs``, with its page-cache counts from cachestat(2).

Everything here comes from the lesson's recorded ``Evidence`` and from
cachestat; all text is built as ``rich.text.Text`` (paths and names are
data, never markup).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ...demo.evidence import Evidence

ARROW = "→"
VERDICT = {
    True: ("✔ HOLDS", "bold black on green"),
    False: ("✘ DID NOT HOLD", "bold white on red"),
    None: ("? UNKNOWN", "bold black on yellow"),
}


@dataclass(frozen=True)
class Clock:
    """The writeback clock's reading: a file, how long dirty, and its page-cache counts."""

    path: str
    seconds: float  # since the step that dirtied it
    cached: int | None
    dirty: int | None
    writeback: int | None
    expire_s: float | None  # vm.dirty_expire_centisecs, in seconds
    interval_s: float | None  # vm.dirty_writeback_centisecs
    clean_after: float | None = None  # seconds after which cachestat first saw 0 dirty


def clock_text(c: Clock) -> Text:
    t = Text()
    t.append("Writeback clock ", "bold")
    t.append(os.path.basename(c.path), "bold cyan")
    t.append(": ")
    if c.clean_after is not None:
        t.append(f"written back after about {c.clean_after:.0f} s", "bold green")
    else:
        t.append(f"dirty for {c.seconds:.0f} s", "bold yellow")
        if c.expire_s is not None:
            left = c.expire_s - c.seconds
            t.append(f"; written back after {c.expire_s:.0f} s (dirty_expire_centisecs): ")
            t.append(f"in ~{left:.0f} s" if left > 0 else "due now", "bold")
            if c.interval_s:
                t.append(f"; the flusher looks every {c.interval_s:g} s", "dim")

    def n(x: int | None) -> str:
        return "?" if x is None else str(x)

    t.append(f"\n  page cache: cached {n(c.cached)} · dirty {n(c.dirty)} · writeback {n(c.writeback)} pages")
    return t


def _faults(ev: Evidence) -> Text:
    t = Text()
    t.append("Faults ", "bold")
    t.append(f"{ev.minor} minor · {ev.major} major", "bold")
    if ev.by_mapping:
        t.append("\n  by mapping: ")
        t.append(
            " · ".join(
                f"{f.mapping} {f.minor + f.major}" + (f" ({f.major} major)" if f.major else "")
                for f in ev.by_mapping
            )
        )
    if ev.by_function:
        t.append("\n  by function: ")
        t.append(" · ".join(f"{f.function} {f.faults}" for f in ev.by_function[:4]))
    if ev.interpreter:
        t.append("\n  ")
        t.append(f"+ {ev.interpreter} in the Python interpreter's own memory and code", "dim")
    if ev.faults_note:
        t.append("\n  ")
        t.append(ev.faults_note, "dim")
    return t


def _transitions(ev: Evidence) -> Text:
    t = Text()
    t.append("Pages ", "bold")
    if not ev.transitions:
        t.append("no page of the lesson's mappings changed state", "dim")
        return t
    for i, tr in enumerate(ev.transitions[:8]):
        if i:
            t.append("\n      ")
        t.append(f"{tr.mapping}: ", "cyan")
        t.append(f"{tr.pages} {tr.before} {ARROW} {tr.after}", "bold")
    if len(ev.transitions) > 8:
        t.append(f"\n      … {len(ev.transitions) - 8} more", "dim")
    return t


def _numbers(ev: Evidence) -> Text:
    t = Text()
    t.append("Measured ", "bold")
    t.append(" · ".join(f"{k} {v}" for k, v in ev.numbers))
    return t


def _table(rows: tuple[tuple[str, ...], ...]) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for h in rows[0]:
        table.add_column(Text(h))
    for r in rows[1:]:
        table.add_row(*(Text(c) for c in r))
    return table


def evidence_renderable(
    title: str,
    holds: bool | None,
    ev: Evidence | None,
    clock: Clock | None = None,
    note: str | None = None,
) -> RenderableType:
    """The panel's content for a finished step (``ev``), or only the clock."""
    parts: list[RenderableType] = []
    head = Text()
    if ev is not None:
        word, style = VERDICT[holds]
        head.append(f" {word} ", style)
        head.append(" ")
    head.append(title, "bold")
    if note:
        head.append(f"  {note}", "bold magenta")
    parts.append(head)
    if ev is not None:
        parts.append(_faults(ev))
        parts.append(_transitions(ev))
        if ev.table:
            parts.append(Text("Crash matrix (vmainspect crash)", "bold"))
            parts.append(_table(ev.table))
        parts.append(_numbers(ev))
    if clock is not None:
        parts.append(clock_text(clock))
    return Group(*parts)


class EvidencePanel(Static):
    """Shows ``evidence_renderable`` for the step on screen; kept until the next step."""

    DEFAULT_CSS = """
    EvidencePanel { height: auto; padding: 0 1; }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.title = ""
        self.holds: bool | None = None
        self.evidence: Evidence | None = None
        self.clock: Clock | None = None
        self.note: str | None = None

    def show(self, title: str, holds: bool | None, ev: Evidence | None, note: str | None = None) -> None:
        self.title, self.holds, self.evidence, self.note = title, holds, ev, note
        self._show()

    def set_clock(self, clock: Clock | None) -> None:
        if clock != self.clock:
            self.clock = clock
            self._show()

    def plain(self) -> str:
        """The panel's text (tests)."""
        from rich.console import Console

        with open(os.devnull, "w") as sink:
            console = Console(width=200, record=True, file=sink)
            console.print(evidence_renderable(self.title, self.holds, self.evidence, self.clock, self.note))
            return console.export_text()

    def _show(self) -> None:
        self.update(evidence_renderable(self.title, self.holds, self.evidence, self.clock, self.note))
