"""Fetching a frame off the UI thread: the poll thread's work and the messages it posts.

``fetch()`` runs in a daemon thread (quitting must not wait for a collect in
flight: seconds on a 65k-VMA process). It asks the source for the next
frame, merges it with the previous one (``rows.build_rows``: new and removed
VMAs, RSS and dirty growth), orders it for the current view and lays out the
overview strip, then returns a message for the app to post. It never touches
a widget.
"""

from __future__ import annotations

from textual.message import Message

from ..errors import VmaInspectError
from ..model import Frame, Snapshot
from . import rows as R
from .rows import Rows
from .sources import Source
from .widgets.overview import overview_layout

View = tuple[str, bool, str]  # (sort key, reverse, filter text)


class FrameReady(Message):
    """A frame with everything the UI thread needs to show it at once."""

    def __init__(
        self,
        frame: Frame,
        rows: Rows,
        prev: Snapshot | None,
        view: View,
        order: list[int],
        layout: tuple[list[tuple[int, int]], list[int], list[str]],
    ) -> None:
        super().__init__()
        self.frame, self.rows, self.prev, self.view, self.order = frame, rows, prev, view, order
        self.layout = layout


class FrameFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


def fetch(source: Source, prev: Snapshot | None, view: View) -> FrameReady | FrameFailed:
    """Runs in the poll thread. A bug in the source is reported, then re-raised."""
    try:
        frame = source.next_frame()
    except (VmaInspectError, OSError) as e:
        return FrameFailed(str(e))
    rows = R.build_rows(prev, frame.snapshot, frame.faults)
    order = R.order(rows, *view)
    rows.haystack()  # the filter's text, here rather than on the first '/' key
    return FrameReady(frame, rows, prev, view, order, overview_layout(frame.snapshot))
