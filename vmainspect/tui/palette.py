"""The app's entries in the command palette (ctrl+p): every action, sort by any column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from .rows import COLUMNS, DESCENDING_FIRST

if TYPE_CHECKING:
    from .app import VmaInspectApp

PANEL_TITLES = {"pages": "Page map", "details": "Details", "faults": "Faults"}


def palette_commands(app: VmaInspectApp) -> Iterable[SystemCommand]:
    yield SystemCommand("Pause / resume", "Stop or restart live refresh (space)", app.action_toggle_pause)
    yield SystemCommand("Save snapshot", "Write the current snapshot as JSON (s)", app.action_save)
    yield SystemCommand("Filter VMAs", "Filter by path, kind or perms (/)", app.action_filter)
    yield SystemCommand("Go to address", "Select the VMA containing an address (g)", app.action_goto)
    yield SystemCommand("Refresh now", "Collect a new snapshot now (r)", app.action_refresh)
    yield SystemCommand("Key help", "Keys, colours and marks (?)", app.action_help)
    for col in COLUMNS:
        yield SystemCommand(
            f"Sort by {col.title}",
            f"Sort the VMA table by {col.title}",
            lambda k=col.key: app.sort_by(k, k in DESCENDING_FIRST),
        )
    yield SystemCommand("Reverse sort order", "Flip the sort direction (O)", app.action_reverse_sort)
    for i, (p, title) in enumerate(PANEL_TITLES.items(), 1):
        yield SystemCommand(
            f"Show {title} panel", f"Narrow layout: show {title} ({i})", lambda p=p: app.action_panel(p)
        )
