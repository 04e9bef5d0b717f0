"""The Details panel's content: ELF headers read off the UI thread (cached),
the file's page-cache line and the working set; and the ``w`` key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App

from ..model import Frame, Snapshot, Vma
from ..snapshot.files import DirtyClock
from .elf import READING, ElfDetails, Lines
from .rows import Rows
from .sources import LiveSource, Source
from .widgets.files import details_rows

if TYPE_CHECKING:
    from .widgets.details import DetailsPanel
    from .widgets.vma_table import VmaTable


class DetailsMixin(App):
    """Mixed into ``VmaInspectApp``, whose attributes these are."""

    elf: ElfDetails
    current_frame: Frame | None
    source: Source | None
    rows: Rows
    table: VmaTable
    details: DetailsPanel
    _dirty_clock: DirtyClock
    _clock_now: float

    def is_running_ui(self) -> bool:
        """False while the app shuts down (the app defines it)."""
        raise NotImplementedError

    @property
    def selected_vma(self) -> Vma | None:
        """The VMA under the cursor (the app defines it)."""
        raise NotImplementedError

    def request_frame(self) -> None:
        """Poll now (the app defines it)."""
        raise NotImplementedError

    # --- ELF (off the UI thread, cached) ----------------------------------------
    def _elf_for(self, vma: Vma | None) -> Lines:
        if vma is None:
            return None
        if not self.elf.enabled:
            return "ELF details are off in this session"
        key = ElfDetails.key(vma)
        if key is None:
            return None
        known, lines = self.elf.cached(key)
        if known:
            return lines
        self._describe(vma, key, self.current_frame.snapshot if self.current_frame else None)
        return READING

    @work(thread=True, group="elf", description="describe ELF")
    def _describe(self, vma: Vma, key: tuple[str, int, int, int], snapshot: Snapshot | None) -> None:
        lines = self.elf.read(vma, snapshot)
        self.call_from_thread(self._described, vma, key, lines)

    def _described(self, vma: Vma, key: tuple[str, int, int, int], lines: Lines) -> None:
        if not self.is_running_ui():
            return
        self.elf.store(key, lines)
        if self.selected_vma is vma and self.current_frame is not None:
            table = self.table
            self.details.show(
                vma,
                self.current_frame.snapshot.capabilities,
                lines,
                table.selected_row in self.rows.ghost,
                self._details_rows(vma),
            )

    def _details_rows(self, vma: Vma | None) -> list[tuple[str, Text]]:
        if self.current_frame is None:
            return []
        return details_rows(self.current_frame, vma, self._dirty_clock, self._clock_now)

    def action_working_set(self) -> None:
        """Toggle the working-set view: resets the process's referenced bits every tick."""
        source = self.source
        if not isinstance(source, LiveSource):
            self.notify("the working set needs a live process", severity="warning")
            return
        from ..snapshot.wss import WARNING, page_idle_note

        on = not source.working_set
        source.set_working_set(on)
        if on:
            self.notify(
                f"{WARNING}. {page_idle_note()}. w turns it off.",
                title="working set on",
                severity="warning",
                timeout=12,
            )
        else:
            self.notify("working set off: referenced bits are no longer reset")
        self.request_frame()
