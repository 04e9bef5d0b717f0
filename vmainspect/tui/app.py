"""The vmainspect Textual app: a process's VMAs and pages, live.

The app renders ``Frame``s from a *source* (``sources.Source``); it never
reads /proc itself. A poll thread (``polling.fetch``) asks the source for
the next frame, merges it with the previous one and posts it; the UI thread
swaps it in and renders only what is visible. The next poll is scheduled
after the last one finishes. Saving (``saving.py``), the process picker
(``attaching.py``) and ELF details (``elf.py``) live in their own modules.

Extension hooks (for the lecture and replay views):

- ``VmaInspectApp(source, *, interval=None, extra_panel=None, describe=..., save_dir=".")``
  ``extra_panel`` (any Widget) is mounted full-width below the main area in
  ``#extra`` (height auto, max 40%; restyle via CSS). If it has a method
  ``update_frame(frame)``, it is called with every frame shown.
- Subclass hook: override ``frame_applied(self, frame)`` (called on the UI
  thread after each frame is on screen; default: nothing).
- ``app.current_frame``: the Frame on screen (None before the first).
- ``app.select_address(addr) -> bool``: put the cursor on the VMA containing
  ``addr`` (clears a filter that hides it); False if no VMA contains it
  (the next VMA above is selected then).
- ``app.selected_vma``: the VMA under the cursor.
- ``app.pause(True/False)``, ``app.paused``; ``app.request_frame()`` polls now;
  ``app.frames_seen`` counts frames applied.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static

from .. import gcpause
from ..model import Frame, Snapshot, Vma
from ..safetext import printable
from ..snapshot.files import DirtyClock
from . import rows as R
from .attaching import AttachingMixin
from .detailing import DetailsMixin
from .elf import Describe, ElfDetails
from .palette import palette_commands
from .polling import FrameFailed, FrameReady, View, fetch
from .rows import COLUMN_KEYS, DESCENDING_FIRST, Rows
from .safe import literal
from .saving import SavingMixin
from .sources import LiveSource, Source, SourceKind
from .statusline import FaultRates, filter_text, frame_message, parse_time, status_text, tabs_text
from .widgets.details import DetailsPanel
from .widgets.faults import FaultsPanel
from .widgets.files import FilesPanel
from .widgets.header import ProcessHeader
from .widgets.legend import Legend
from .widgets.overview import Overview
from .widgets.page_map import PageMapPanel
from .widgets.vma_table import VmaTable

if TYPE_CHECKING:
    from .proclist import ProcRow

APP_CSS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.tcss")
PANELS = ("pages", "details", "faults", "files")
PANEL_TITLES = {
    "pages": "Page map",
    "details": "Details",
    "faults": "Faults",
    "files": "Files",
    "extra": "Notes",
}


class VmaInspectApp(SavingMixin, AttachingMixin, DetailsMixin, App):
    """See the module docstring for the hooks."""

    # absolute, so subclasses in other folders still find it (add yours: CSS_PATH = [APP_CSS, "x.tcss"])
    CSS_PATH = APP_CSS
    TITLE = "vmainspect"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]
    PAUSE_KEY = "space"  # named in the status line while paused (the lecture pauses with p)
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("s", "save", "Save"),
        Binding("slash", "filter", "Filter"),
        Binding("g", "goto", "Go to"),
        Binding("o", "next_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("r", "refresh", "Refresh now", show=False),
        Binding("1", "panel('pages')", "Page map", show=False),
        Binding("2", "panel('details')", "Details", show=False),
        Binding("3", "panel('faults')", "Faults", show=False),
        Binding("4", "panel('files')", "Files", show=False),
        Binding("w", "working_set", "Working set", show=False),
        Binding("l", "legend", "Legend"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        source: Source | None = None,
        *,
        interval: float | None = None,
        extra_panel: Widget | None = None,
        describe: Describe | str | None = "default",
        save_dir: str | None = ".",
        picker_lister: Callable[[], list[ProcRow]] | None = None,
        picker_filter: str = "",
        picker_only: set[int] | None = None,
        live_options: dict[str, object] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        if interval is None:
            interval = source.interval if source is not None else 1.0
        self.interval = interval
        self.extra_panel = extra_panel
        self.elf = ElfDetails(describe)
        self.save_dir = save_dir
        self.picker_lister = picker_lister
        self.picker_filter = picker_filter
        self.picker_only = picker_only
        self.live_options = live_options or {}
        self.current_frame: Frame | None = None
        self.frames_seen = 0  # frames applied so far (tests and benchmarks wait on it)
        self.paused = False
        self.rows: Rows = Rows([])
        self._prev: Snapshot | None = None
        self._polling = self._poll_again = False  # a fetch in flight; `r` came during it: one more after it
        self._timer: Timer | None = None
        self._message: Text | str = ""  # the status line's last part: Text, or a str shown literally
        self._status_key: tuple[object, ...] | None = None
        self._held_shown = False  # the status line's message is a Frame.held line
        self.fault_rates = FaultRates(self.interval)
        self._panel = "pages"
        self._dirty_clock = DirtyClock()
        self._clock_now = 0.0  # the current frame's time, for the dirty clock

    # --- layout ------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # kept as attributes: query_one() would search whatever screen is on top
        self.header = ProcessHeader(id="header")
        self.overview = Overview(id="overview")
        self.table = VmaTable(id="vmas")
        self.filter_box = Static(id="filter")
        self.tabs = Static(id="tabs")
        self.page_map = PageMapPanel(id="pages", classes="panel -shown")
        self.details = DetailsPanel(id="details", classes="panel")
        self.faults = FaultsPanel(id="faults", classes="panel")
        self.files_panel = FilesPanel(id="files", classes="panel")
        self.status = Static(id="status")
        self.legend = Legend(id="legend")
        yield self.header
        yield self.overview
        with Horizontal(id="main"):
            with Vertical(id="table-box"):
                yield self.table
                yield self.filter_box
            with Vertical(id="side"):
                yield self.legend  # above the panels: the table keeps its rows
                yield self.tabs
                yield self.page_map
                yield self.details
                yield self.faults
                yield self.files_panel
        if self.extra_panel is not None:
            with Vertical(id="extra"):
                yield self.extra_panel
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        gcpause.settle_startup()  # modules and widgets, before any frame (see gcpause)
        for name, panel in zip(PANELS, self._panels()):
            panel.border_title = PANEL_TITLES[name]
        self._show_tabs()
        self._show_filter()
        table = self.table
        table.on_select = self._selection_changed
        table.focus()
        if self.source is None:
            self.pick_process()
        else:
            self.sub_title = printable(self.source.title)
            self.request_frame()

    def is_running_ui(self) -> bool:
        """False while the app shuts down (late worker results are dropped)."""
        return self.table.is_attached

    def say(self, message: Text | str) -> None:
        """Put ``message`` in the status line (a str is shown literally, never as markup)."""
        self._message = message
        self._show_status()

    def use_source(self, source: LiveSource) -> None:
        """Show frames from ``source`` from now on (after the picker)."""
        self.source = source
        self.interval = source.interval
        self.sub_title = printable(source.title)
        self.say("")
        self.request_frame()

    def _panels(self) -> tuple[Widget, ...]:
        return (self.page_map, self.details, self.faults, self.files_panel)

    # --- public hooks --------------------------------------------------------
    def frame_applied(self, frame: Frame) -> None:
        """Called after each frame is shown (override in subclasses)."""

    @property
    def selected_vma(self) -> Vma | None:
        return self.table.selected_vma

    def select_address(self, address: int) -> bool:
        table = self.table
        row, exact = R.find_address(self.rows, address)
        if row is None:
            return False
        if not table.select_row(row):
            self._set_filter("")
            table.select_row(row)
        return exact

    def pause(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
        elif self._can_poll():
            self.request_frame()
        self._show_header()
        self._show_status()

    # --- polling -------------------------------------------------------------
    def _can_poll(self) -> bool:
        f = self.current_frame
        if self.source is None:
            return False
        return f is None or (self.source.kind is not SourceKind.SNAPSHOT and not f.gone)

    def request_frame(self) -> None:
        if self._polling or self.source is None:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._polling = True
        table = self.table
        view: View = (table.sort, table.reverse, table.filter_text)
        prev = self.current_frame.snapshot if self.current_frame else None
        # A daemon thread, not a Textual worker: quitting must not wait for a
        # collect in flight (seconds on a 65k-VMA process).
        threading.Thread(
            target=self._poll, args=(self.source, prev, view), daemon=True, name="vmainspect-poll"
        ).start()

    @property
    def polling(self) -> bool:
        """A frame is being fetched (tests and benchmarks wait on it)."""
        return self._polling

    def _poll(self, source: Source, prev: Snapshot | None, view: View) -> None:
        """Runs in the poll thread."""
        try:
            msg = fetch(source, prev, view)
        except Exception as e:  # a bug in the source: say so on screen, then let it surface
            self.post_message(FrameFailed(f"unexpected {type(e).__name__} from the source: {e}"))
            raise
        self.post_message(msg)

    def on_frame_failed(self, msg: FrameFailed) -> None:
        if not self.is_running_ui():
            return
        self._polling = False
        self._message = Text.assemble(("collection failed: ", "red"), literal(msg.error))
        self._show_status()
        self.notify(msg.error, title="collection failed", severity="error")
        self._schedule()

    def on_frame_ready(self, msg: FrameReady) -> None:
        if not self.is_running_ui():
            return
        self._polling = False
        old = self.current_frame
        frame = msg.frame
        self.current_frame = frame
        self.frames_seen += 1
        self._prev = msg.prev
        self.rows = msg.rows
        self.fault_rates.update(old, frame)
        table = self.table
        view = (table.sort, table.reverse, table.filter_text)
        self.overview.show(frame.snapshot, table.selected_vma, msg.layout)  # before set_rows re-selects
        table.set_rows(msg.rows, msg.order if view == msg.view else None)
        self.faults.show(frame.faults, frame.snapshot, self.source.faults_note if self.source else None)
        snap = frame.snapshot
        self._clock_now = parse_time(snap.taken_at) or 0.0
        self._dirty_clock.update(snap.files, self._clock_now)
        self.files_panel.show(snap, self._dirty_clock, self._clock_now, frame.writeback, snap.host.page_size)
        if frame.gone:
            why = frame.message or "the process has exited"
            self._message = Text.assemble(literal(why, "b red"), " · last snapshot kept; s saves it")
            if old is None or not old.gone:
                self.notify(why, title="process exited", severity="warning")
        elif (said := frame_message(frame, self._held_shown)) is not None:
            self._message, self._held_shown = said
        self._show_header()
        self._show_status()
        updater = getattr(self.extra_panel, "update_frame", None)
        if updater is not None:
            updater(frame)
        self.frame_applied(frame)
        self._schedule()

    def _schedule(self) -> None:
        again, self._poll_again = self._poll_again, False  # `r` during the last fetch: again in 10 ms
        if self._can_poll() and (again or not self.paused) and self.current_frame is not None:
            self._timer = self.set_timer(0.01 if again else self.interval, self.request_frame)  # textual: > 0

    # --- rendering ---------------------------------------------------------------
    def _state(self) -> str:
        f = self.current_frame
        if f is not None and f.gone:
            return "gone"
        kind = self.source.kind if self.source is not None else SourceKind.LIVE
        if kind is SourceKind.SNAPSHOT:
            return "file"
        if self.paused:
            return "paused"
        return "live" if kind is SourceKind.LIVE else "replay"

    def _show_header(self) -> None:
        if self.current_frame is not None:
            rates = self.fault_rates
            self.header.show(self.current_frame, self._state(), rates.rates, list(rates.history))

    def _show_status(self) -> None:
        paused = self.PAUSE_KEY if self.paused else None
        t = status_text(self.rows, self.table, self.current_frame, paused, self._message)
        # unchanged text (e.g. the ViewChanged echo of a sort already shown): no
        # repaint, which would cost a second screen update ~30 ms after the first
        key = (t.plain, tuple(t.spans))
        if key != self._status_key:
            self._status_key = key
            self.status.update(t, layout=False)

    def _show_tabs(self) -> None:
        self.tabs.update(tabs_text(PANELS, PANEL_TITLES, self._panel), layout=False)

    def on_vma_table_selected(self, msg: VmaTable.Selected) -> None:
        self._selection_changed(msg.vma)

    def _selection_changed(self, vma: Vma | None) -> None:
        if not self.is_running_ui():
            return
        frame = self.current_frame
        if frame is None:
            return
        snap = frame.snapshot
        table = self.table
        ghost = table.selected_row in self.rows.ghost
        prev_vma = None
        if vma is not None and self._prev is not None and self._prev is not snap and not ghost:
            p = self._prev.vma_at(vma.start)
            prev_vma = p if p is not None and p.start == vma.start else None
        self.page_map.show(vma, prev_vma, snap.capabilities, frame.faults, snap.host.page_size)
        self.overview.show(snap, vma)
        self.details.show(vma, snap.capabilities, self._elf_for(vma), ghost, self._details_rows(vma))

    # --- actions -----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A saved snapshot has nothing to pause or refresh: the footer does not offer it."""
        if action in ("toggle_pause", "refresh") and self.source is not None:
            return self.source.kind is not SourceKind.SNAPSHOT
        return True

    def action_toggle_pause(self) -> None:
        if self.source is None or self.source.kind is SourceKind.SNAPSHOT:
            self.notify("nothing to pause: this is a saved snapshot")
            return
        self.pause(not self.paused)

    def action_refresh(self) -> None:
        if self._can_poll():
            if callable(force := getattr(self.source, "refresh_now", None)):
                force()  # the user asked: read the map even if the lock budget would wait
                self._poll_again |= self._polling  # a fetch in flight may predate the key: one more after it
            self.request_frame()  # does nothing while a fetch is in flight

    # The filter is typed into the table itself (it keeps the focus): moving the
    # focus to an Input and back re-composes the footer and re-lays out the
    # screen, which cost ~0.3 s a key on a 220x60 screen.
    def action_filter(self) -> None:
        self.table.focus()
        self.table.start_filter()
        self._show_filter()

    def _set_filter(self, text: str) -> None:
        self.table.set_view(filter_text=text)
        self._show_filter()
        self._show_status()

    def _show_filter(self) -> None:
        self.filter_box.set_class(self.table.filtering, "-active")
        self.filter_box.update(filter_text(self.table), layout=False)

    def on_vma_table_filter_typed(self, msg: VmaTable.FilterTyped) -> None:
        if msg.text is None:  # Esc
            self._set_filter("")
        elif msg.done or msg.text != self.table.filter_text:  # Enter
            self._set_filter(msg.text)
        else:
            self._show_filter()

    def action_goto(self) -> None:
        from .screens.goto import GotoScreen

        def done(addr: int | None) -> None:
            if addr is None:
                return
            if not self.select_address(addr):
                v = self.selected_vma
                where = f"; nearest: {v.start:#x}-{v.end:#x}" if v is not None else ""
                self.notify(f"{addr:#x} is not mapped{where}", severity="warning")
            self.table.focus()

        self.push_screen(GotoScreen(), done)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        table = self.table
        if reverse is None:
            reverse = (not table.reverse) if key == table.sort else key in DESCENDING_FIRST
        table.set_view(sort=key, reverse=reverse, to_top=True)
        self._show_status()

    def action_next_sort(self) -> None:
        table = self.table
        key = COLUMN_KEYS[(COLUMN_KEYS.index(table.sort) + 1) % len(COLUMN_KEYS)]
        self.sort_by(key, key in DESCENDING_FIRST)

    def action_reverse_sort(self) -> None:
        table = self.table
        self.sort_by(table.sort, not table.reverse)

    def on_vma_table_view_changed(self, msg: VmaTable.ViewChanged) -> None:
        self._show_status()

    def on_vma_table_sort_requested(self, msg: VmaTable.SortRequested) -> None:
        self.sort_by(msg.key)

    def action_panel(self, name: str) -> None:
        self._panel = name
        for p, panel in zip(PANELS, self._panels()):
            panel.set_class(p == name, "-shown")
        self._show_tabs()

    def action_legend(self) -> None:
        self.legend.toggle()

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self.source is not None:
            self.source.close()
        self.exit()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's notify, but literal: messages carry paths and names from other users."""
        if not markup:
            message, title = printable(message), printable(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)
