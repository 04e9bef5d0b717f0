"""What every colour and mark on the main screen means: lines above the side panels (key ``l``).

The same entries, with more words, are in the ``?`` help (``screens/help.py``);
both are built from the styles the widgets themselves use.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from .colours import KIND_COLOURS
from .overview import KIND_BG
from .page_map import STATE_STYLE

# Kinds in the order a reader meets them in a typical process.
KIND_ORDER = (
    "file-private",
    "file-shared",
    "heap",
    "anon-private",
    "anon-shared",
    "shm",
    "hugetlb",
    "stack",
    "deleted",
    "guard",
    "vdso",
    "vvar",
    "vsyscall",
)

# (mark, style, meaning, short meaning) of the VMA table's change marks and colours
TABLE_MARKS = (
    ("+", "bright_green", "a VMA that appeared since the last tick", "new"),
    ("-", "grey50", "a VMA that was unmapped (struck out, shown for one tick)", "unmapped"),
    ("RSS/Dirty", "bright_green", "grew since the last tick (orange: shrank)", "grew (orange: shrank)"),
    ("Size", "bright_yellow", "the VMA was resized (same start, new end)", "resized"),
    ("flt/s", "orange1", "page faults per second in this VMA (red: some were major)", "faults/s"),
    ("x", "bright_red", "in Perm: the VMA is executable", "executable"),
    ("▲▼", "bright_yellow", "on a column header: the table is sorted by it (o / O, or click)", "sorted by"),
)

PAGE_MARKS = (
    ("░", "bold", "a cell whose pages are in several states (the most significant is shown)", "mixed"),
    ("•", "bold", "shared with another mapping (kpagecount > 1; root)", "shared"),
    ("*", "bold bright_white", "changed state since the last tick", "changed"),
    ("!", "bold bright_yellow", "faulted in the last tick (perf sampling)", "faulted"),
)


def kind_swatch(kind: str) -> Text:
    """``kind`` in the table's colour, after a block in the address-space strip's colour."""
    t = Text()
    t.append("█", KIND_BG.get(kind, "grey50"))
    t.append(kind, KIND_COLOURS.get(kind, ""))
    return t


def legend_text() -> Text:
    """Four short lines (five or six on a narrow screen): every colour and mark, one word each."""
    t = Text(no_wrap=False)
    t.append("Kind  ", "bold")
    for k in KIND_ORDER:
        t.append_text(kind_swatch(k))
        t.append(" ")
    t.append("\nTable ", "bold")
    for mark, style, _long, short in TABLE_MARKS:
        t.append(mark, style)
        t.append(f" {short}  ")
    t.append("\nPages ", "bold")
    for state, state_style in STATE_STYLE.items():
        t.append(" ", state_style)
        t.append(f"{state} ")
    for mark, style, _long, short in PAGE_MARKS:
        t.append(mark, style)
        t.append(f"{short} ")
    t.append("\nStrip ", "bold")
    t.append("█", "#2f6db5")
    t.append(" regions to scale, in their kind's colour  ┈12T┈ a compressed gap  ▲ the selected VMA")
    t.append("  (l hides, ? explains)", "dim")
    return t


class Legend(Static):
    """Hidden until ``l``; then four lines (more on a narrow screen) above the side panels."""

    DEFAULT_CSS = """
    Legend { display: none; height: auto; background: $panel; padding: 0 1; }
    Legend.-shown { display: block; }
    """

    def on_mount(self) -> None:
        self.update(legend_text())

    def toggle(self) -> bool:
        self.toggle_class("-shown")
        return self.has_class("-shown")
