"""The key help screen (``?``)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.page_map import LEGEND_ORDER, STATE_STYLE

KEYS = (
    ("↑ ↓ PgUp PgDn Home End", "move in the VMA table (mouse: click a row; click a header to sort)"),
    ("o / O", "sort by the next column / reverse the order"),
    ("/", "filter by path, kind or perms (all words must match; Esc clears)"),
    ("g", "go to an address (hex): selects the VMA containing it"),
    ("1 2 3 4", "narrow terminals: show the page map / details / faults / files panel"),
    ("w", "working set on/off: resets the process's referenced bits every tick (reclaim sees it idle)"),
    ("space", "pause / resume live refresh"),
    ("r", "refresh now"),
    ("s", "save the current snapshot as JSON (atomic write; the path is shown)"),
    ("ctrl+p", "command palette: every action, including sort by any column"),
    ("?", "this help (Esc closes it)"),
    ("q", "quit"),
)

TABLE_MARKS = (
    ("+", "bright_green", "a VMA that appeared since the last tick"),
    ("-", "grey50", "a VMA that was unmapped (shown for one tick)"),
    ("RSS/Dirty", "bright_green", "grew since the last tick (orange: shrank)"),
    ("Size", "bright_yellow", "the VMA was resized (same start, new end)"),
    ("flt/s", "orange1", "page faults per second in this VMA (perf sampling)"),
)

PAGE_STATES_HELP = {
    "absent": "not in the page tables: never touched, or reclaimed",
    "file": "resident, backed by a file or shmem (clean, or dirtiness unknown)",
    "file-dirty": "resident file page written and not yet written back (root: kpageflags)",
    "anon": "resident anonymous page (dirty by nature)",
    "zero": "the shared zero page: read but never written (root: needs PFNs)",
    "swapped": "swapped out",
}


def help_body() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    t.add_row(Text("Keys", style="bold underline"), "")
    for k, d in KEYS:
        t.add_row(k, d)
    t.add_row("", "")
    t.add_row(Text("VMA table", style="bold underline"), "")
    for k, st, d in TABLE_MARKS:
        t.add_row(Text(k, style=st), d)
    t.add_row("", "")
    t.add_row(Text("Page map", style="bold underline"), "one cell per page, or per N pages (scale shown)")
    for s in LEGEND_ORDER:
        t.add_row(Text(f"  {s}  ", style=STATE_STYLE[s]), PAGE_STATES_HELP[s])
    t.add_row(Text("•", style="bold"), "shared with another mapping (kpagecount > 1; root)")
    t.add_row(Text("*", style="bold"), "changed state since the last tick")
    t.add_row(Text("!", style="bold bright_yellow"), "faulted in the last tick (perf sampling)")
    t.add_row(
        Text("░", style="bold"), "a cell whose pages are in several states (the most significant one shown)"
    )
    t.add_row("", "")
    t.add_row(
        Text("Overview", style="bold underline"),
        "the whole user address space: regions to scale, ┈12T┈ = a compressed gap; ▲ = selected VMA",
    )
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 95%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_body())

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
