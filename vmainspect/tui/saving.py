"""The app's ``s`` key: write the snapshot on screen as JSON, in a worker thread."""

from __future__ import annotations

import os

from rich.text import Text
from textual import work
from textual.app import App

from ..errors import VmaInspectError
from ..model import Frame, Snapshot
from .safe import literal


def snapshot_file_name(snapshot: Snapshot) -> str:
    """vmainspect-PID-YYYYMMDD-HHMMSS.json, from when the snapshot was taken."""
    stamp = snapshot.taken_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    return f"vmainspect-{snapshot.process.pid}-{stamp}.json"


class SavingMixin(App):
    """Mixed into ``VmaInspectApp``: ``action_save`` and its worker.

    Needs from the app: ``save_dir``, ``current_frame``, ``say(text)`` (the
    status line) and ``is_running_ui()``.
    """

    last_saved: str | None = None
    save_dir: str | None
    current_frame: Frame | None

    def say(self, message: Text | str) -> None:
        """Show ``message`` in the status line, a str literally (the app defines it)."""
        raise NotImplementedError

    def is_running_ui(self) -> bool:
        """False while the app shuts down (the app defines it)."""
        raise NotImplementedError

    def action_save(self) -> None:
        frame = self.current_frame
        save_dir = self.save_dir
        if save_dir is None:
            self.notify("saving is off in this session", severity="warning")
            return
        if frame is None:
            self.notify("nothing to save yet", severity="warning")
            return
        path = os.path.join(save_dir, snapshot_file_name(frame.snapshot))
        self.say(f"saving {path}…")  # a str: shown literally
        self._save(frame.snapshot, path)

    @work(thread=True, group="save", description="save snapshot")
    def _save(self, snapshot: Snapshot, path: str) -> None:
        from ..snapshot import io as snapshot_io

        try:
            written = snapshot_io.save(snapshot, path)
        except VmaInspectError as e:
            self.call_from_thread(self._saved, None, str(e))
            return
        self.call_from_thread(self._saved, os.path.abspath(written), None)

    def _saved(self, path: str | None, error: str | None) -> None:
        if not self.is_running_ui():
            return
        if error:
            self.say(Text.assemble(("save failed: ", "red"), literal(error)))
            self.notify(error, title="save failed", severity="error")
        else:
            self.last_saved = path
            self.say(Text.assemble("saved ", literal(path, "b")))
            self.notify(path or "", title="snapshot saved")
