"""The key help screen (``?``)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.legend import KIND_ORDER, PAGE_MARKS, TABLE_MARKS, kind_swatch
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
    ("l", "show / hide the legend of colours and marks (above the panels)"),
    ("?", "this help (Esc closes it)"),
    ("q", "quit"),
)

KIND_HELP = {
    "file-private": "a file mapped MAP_PRIVATE (code, libraries, private file data)",
    "file-shared": "a file mapped MAP_SHARED: writes reach the file",
    "heap": "[heap]: brk memory",
    "anon-private": "private anonymous memory (malloc arenas, mmap(MAP_ANONYMOUS))",
    "anon-shared": "shared anonymous memory (shared with forked children)",
    "shm": "System V shared memory",
    "hugetlb": "hugetlbfs huge pages (MAP_HUGETLB, SHM_HUGETLB): counted outside Rss",
    "stack": "[stack]: the main thread's stack",
    "deleted": "a file that was unlinked while mapped",
    "guard": "no permissions (---p): guard pages and reservations",
    "vdso": "[vdso]: kernel code mapped into every process",
    "vvar": "[vvar]: kernel data read by the vDSO",
    "vsyscall": "[vsyscall]: the legacy fixed-address page, above user space",
}

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
    for k, st, d, _short in TABLE_MARKS:
        t.add_row(Text(k, style=st), d)
    t.add_row("", "")
    t.add_row(
        Text("Kind", style="bold underline"),
        "the Kind column's colour; the block before it is the kind's colour in the strip",
    )
    for k in KIND_ORDER:
        t.add_row(kind_swatch(k), KIND_HELP[k])
    t.add_row("", "")
    t.add_row(Text("Page map", style="bold underline"), "one cell per page, or per N pages (scale shown)")
    for s in LEGEND_ORDER:
        t.add_row(Text(f"  {s}  ", style=STATE_STYLE[s]), PAGE_STATES_HELP[s])
    for k, st, d, _short in PAGE_MARKS:
        t.add_row(Text(k, style=st), d)
    t.add_row(
        Text("unmapped", style="bold"),
        "in the faults panel's transitions: a faulting address no VMA covered in that snapshot",
    )
    t.add_row("", "")
    t.add_row(
        Text("Overview", style="bold underline"),
        "the whole user address space on one line: regions to scale in their kind's colour, "
        "┈12T┈ = a compressed gap (12 TiB); the line under it names the regions; ▲ = selected VMA",
    )
    t.add_row("", "")
    t.add_row(
        Text("Details", style="bold underline"),
        "key 2 (narrow screens): every smaps field, VmFlags, ELF sections; scroll it with the mouse "
        "or Tab to it and use the arrows",
    )
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]
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

    def action_close(self) -> None:
        """Esc, q, ?: the bindings name "close" (a Screen has no such action of its own)."""
        self.dismiss(None)
