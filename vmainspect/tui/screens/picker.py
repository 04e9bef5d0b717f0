"""The process picker: a sortable, filter-as-you-type list of processes."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ...units import human_bytes
from ..proclist import ProcRow
from ..safe import literal

COLUMNS = (
    ("pid", "PID"),
    ("user", "USER"),
    ("name", "NAME"),
    ("rss", "RSS"),
    ("minor_faults", "MINFLT"),
    ("major_faults", "MAJFLT"),
    ("cmdline", "COMMAND"),
)
_MOVES = {
    "up": "action_cursor_up",
    "down": "action_cursor_down",
    "pageup": "action_page_up",
    "pagedown": "action_page_down",
}
NUMERIC = {"pid", "rss", "minor_faults", "major_faults"}


class PickerScreen(Screen[int | None]):
    """Pick a process; dismisses with its pid (None on escape)."""

    BINDINGS = [
        Binding("escape", "cancel", "Quit"),
        Binding("f5", "reload", "Reload"),
        Binding("ctrl+s", "next_sort", "Sort column"),
        Binding("ctrl+r", "reverse", "Reverse"),
    ]
    DEFAULT_CSS = """
    PickerScreen #picker-title { height: 1; background: $panel; text-style: bold; padding: 0 1; }
    PickerScreen Input { height: 3; }
    PickerScreen DataTable { height: 1fr; }
    """

    def __init__(
        self, lister: Callable[[], list[ProcRow]], *, initial_filter: str = "", only: set[int] | None = None
    ) -> None:
        super().__init__()
        self.lister = lister
        self.only = only
        self.rows: list[ProcRow] = []
        self.sort = "rss"
        self.reverse = True
        self._initial = initial_filter

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Pick a process to attach to (Enter). Type to filter.", id="picker-title")
            yield Input(
                value=self._initial, placeholder="filter: name, command line, user or pid", id="picker-filter"
            )
            yield DataTable(id="picker-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, title in COLUMNS:
            table.add_column(title, key=key)
        self.query_one(Input).focus()
        self.action_reload()

    @work(thread=True, exclusive=True, group="picker")
    def action_reload(self) -> None:
        rows = self.lister()
        if self.only is not None:
            rows = [r for r in rows if r.pid in self.only]
        self.app.call_from_thread(self._loaded, rows)

    def _loaded(self, rows: list[ProcRow]) -> None:
        self.rows = rows
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        words = self.query_one(Input).value.lower().split()

        def ok(r: ProcRow) -> bool:
            hay = f"{r.pid} {r.user} {r.name} {r.cmdline}".lower()
            return all(w in hay for w in words)

        rows = [r for r in self.rows if ok(r)]
        key = self.sort
        rows.sort(
            key=lambda r: (getattr(r, key) is None, getattr(r, key) or (0 if key in NUMERIC else "")),
            reverse=self.reverse,
        )
        table.clear()
        for r in rows:
            table.add_row(
                str(r.pid),
                literal(r.user),
                literal(r.name),
                human_bytes(r.rss),
                "?" if r.minor_faults is None else f"{r.minor_faults:,}",
                "?" if r.major_faults is None else f"{r.major_faults:,}",
                literal(r.cmdline[:200]),
                key=str(r.pid),
            )
        self.query_one("#picker-title", Static).update(
            f"Pick a process to attach to (Enter). {len(rows)} of {len(self.rows)} shown, "
            f"sorted by {key}{' (descending)' if self.reverse else ''}. Type to filter."
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            self._choose(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_key(self, event) -> None:
        # arrows in the filter box move the table's cursor
        action = _MOVES.get(event.key)
        if action and self.focused is self.query_one(Input):
            getattr(self.query_one(DataTable), action)()
            event.stop()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._choose(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key is None:
            return
        if key == self.sort:
            self.reverse = not self.reverse
        else:
            self.sort, self.reverse = key, key in NUMERIC
        self._fill()

    def _choose(self, pid_text: str | None) -> None:
        if pid_text:
            self.dismiss(int(pid_text))

    def action_next_sort(self) -> None:
        keys = [k for k, _ in COLUMNS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.reverse = self.sort in NUMERIC
        self._fill()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._fill()

    def action_cancel(self) -> None:
        self.dismiss(None)
