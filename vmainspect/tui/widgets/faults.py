"""The faults panel: the last tick's page faults, by symbol and most recent."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...model import FaultTick, Snapshot


def faults_text(tick: FaultTick | None, snap: Snapshot | None, note: str | None) -> Table | Text:
    if tick is None:
        t = Text()
        t.append("Page faults: ", "bold")
        t.append(note or "no fault data for this view (saved snapshots carry none)", "dim")
        return t
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(overflow="ellipsis", no_wrap=True)
    w = tick.window_s or 1.0
    head = Text()
    head.append("Page faults ", "bold")
    head.append(f"[{tick.mode}] ", "cyan")
    head.append(f"minor {tick.minor:,} ({tick.minor / w:,.0f}/s)  major {tick.major:,} ({tick.major / w:,.0f}/s)"
                f"  window {w:.2f}s")
    if tick.lost is not None:
        head.append(f"  lost {tick.lost:,}", "bold red" if tick.lost else "dim")
    grid.add_row(head, "", "")
    if tick.reason:
        grid.add_row(Text(f"counters only: {tick.reason}", "yellow"), "", "")
    if tick.mode != "perf" and not tick.reason:
        grid.add_row(Text("counters mode: no addresses or symbols", "dim"), "", "")
    if tick.by_symbol:
        grid.add_row(Text("top symbols", "bold underline"), Text("count", "bold"), Text("DSO", "bold"))
        for sym, dso, n in tick.by_symbol[:8]:
            grid.add_row(sym, f"{n:,}", dso)
    if tick.recent:
        grid.add_row(Text("recent faults (newest first)", "bold underline"), "", Text("VMA", "bold"))
        for s in reversed(tick.recent[-10:]):
            v = snap.vma_at(s.addr) if snap is not None else None
            where = (v.path or v.kind) if v is not None else "unmapped"
            kind = Text("MAJ", "bold red") if s.major else Text("min", "dim")
            label = Text(f"{s.addr:#x} ")
            label.append_text(kind)
            label.append(f" {s.symbol or hex(s.ip)}", "cyan")
            grid.add_row(label, f"tid {s.tid}", where)
    return grid


class FaultsPanel(VerticalScroll):
    DEFAULT_CSS = """
    FaultsPanel { height: 1fr; }
    """

    def compose(self):
        yield Static(id="faults-body")

    def show(self, tick: FaultTick | None, snap: Snapshot | None, note: str | None) -> None:
        self.query_one("#faults-body", Static).update(faults_text(tick, snap, note))
