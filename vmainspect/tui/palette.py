"""The app's entries in the command palette (ctrl+p): every action, sort by any column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from textual.app import SystemCommand

from .rows import COLUMNS, DESCENDING_FIRST


class PaletteActions(Protocol):
    """What the palette calls on the app (so this module need not import app.py)."""

    def action_toggle_pause(self) -> None: ...
    def action_save(self) -> None: ...
    def action_filter(self) -> None: ...
    def action_goto(self) -> None: ...
    def action_refresh(self) -> None: ...
    def action_help(self) -> None: ...
    def action_reverse_sort(self) -> None: ...
    def action_panel(self, name: str) -> None: ...
    def sort_by(self, key: str, reverse: bool | None = None) -> None: ...


PANEL_TITLES = {"pages": "Page map", "details": "Details", "faults": "Faults"}


def palette_commands(app: PaletteActions) -> Iterable[SystemCommand]:
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
