"""``attach`` without a PID: the process picker, then attaching in a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App

from ..errors import VmaInspectError
from .sources import LiveSource

if TYPE_CHECKING:
    from .proclist import ProcRow


class AttachingMixin(App):
    """Mixed into ``VmaInspectApp``: pick a process, attach to it, or exit.

    Needs from the app: ``picker_lister``, ``picker_filter``, ``picker_only``,
    ``live_options``, ``say(text)`` and ``use_source(source)``.
    """

    picker_lister: Callable[[], list[ProcRow]] | None
    picker_filter: str
    picker_only: set[int] | None
    live_options: dict[str, object]

    def say(self, message: Text | str) -> None:
        """Show ``message`` in the status line, a str literally (the app defines it)."""
        raise NotImplementedError

    def use_source(self, source: LiveSource) -> None:
        """Show frames from ``source`` from now on (the app defines it)."""
        raise NotImplementedError

    def pick_process(self) -> None:
        from .proclist import list_processes
        from .screens.picker import PickerScreen

        lister = self.picker_lister or list_processes
        self.push_screen(
            PickerScreen(lister, initial_filter=self.picker_filter, only=self.picker_only), self._picked
        )

    def _picked(self, pid: int | None) -> None:
        if pid is None:
            self.exit()
            return
        self.say(f"attaching to {pid}…")
        self._attach_worker(pid)

    @work(thread=True, exclusive=True, group="attach", description="attach")
    def _attach_worker(self, pid: int) -> None:
        source = LiveSource(pid, **self.live_options)  # type: ignore[arg-type]
        try:
            source.prime()
        except VmaInspectError as e:
            source.close()
            self.call_from_thread(self._attach_failed, str(e))
            return
        self.call_from_thread(self.use_source, source)

    def _attach_failed(self, error: str) -> None:
        self.notify(error, title="cannot attach", severity="error", timeout=8)
        self.pick_process()
