"""`r` pressed while a tick is being fetched reads the map right after that tick.

The fetch in flight may have asked the source for its frame before the key
(so it did not read the map); waiting for the next timer tick would make `r`
wait a whole interval. A source that blocks in ``next_frame`` until told makes
the order certain: the key comes while the fetch is in flight, the interval is
an hour, and one more frame must come right after the blocked one, with the
source asked to read.
"""

from __future__ import annotations

import threading

from tui_helpers import fixture_path, wait_frames

from vmainspect.model import Frame
from vmainspect.snapshot import io as snapshot_io
from vmainspect.tui.sources import SourceKind


class BlockingSource:
    kind = SourceKind.LIVE
    title = "blocking"
    interval = 3600.0
    faults_note: str | None = None

    def __init__(self) -> None:
        self.snapshot = snapshot_io.load(fixture_path("small"))
        self.release = threading.Event()
        self.release.set()
        self.in_fetch = threading.Event()
        self.forced: list[bool] = []  # per next_frame(): whether `r` had asked for a read
        self._force = False

    def refresh_now(self) -> None:
        self._force = True

    def next_frame(self) -> Frame:
        force, self._force = self._force, False
        self.in_fetch.set()
        assert self.release.wait(30)
        self.forced.append(force)
        return Frame(self.snapshot)

    def close(self) -> None:
        self.release.set()


async def test_r_during_a_fetch_fetches_again_right_after_it():
    from vmainspect.tui.app import VmaInspectApp

    source = BlockingSource()
    app = VmaInspectApp(source, interval=3600, describe=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        source.release.clear()
        source.in_fetch.clear()
        app.request_frame()  # a tick: its fetch blocks in next_frame, before the key
        assert source.in_fetch.wait(10) and app.polling
        await pilot.press("r")
        source.release.set()
        await wait_frames(app, pilot, 3)  # the blocked tick, then the one `r` asked for
        assert source.forced == [False, False, True]
    source.close()
