"""Ask for an address (``g``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from ..safe import literal


def parse_address(text: str) -> int | None:
    """Hex with or without 0x (as maps prints it); None if it is not one."""
    t = text.strip().lower().replace("_", "").replace("'", "")
    if t.startswith("0x"):
        t = t[2:]
    if not t or len(t) > 16:
        return None
    try:
        return int(t, 16)
    except ValueError:
        return None


class GotoScreen(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > Vertical { width: 60; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    GotoScreen #goto-error { color: $error; height: auto; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Go to address (hex, e.g. 7f12a4c3e000):")
            yield Input(placeholder="address", id="goto-input")
            yield Label("", id="goto-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        addr = parse_address(event.value)
        if addr is None:
            self.query_one("#goto-error", Label).update(literal(f"not a hex address: {event.value!r}"))
            return
        self.dismiss(addr)

    def action_cancel(self) -> None:
        self.dismiss(None)
