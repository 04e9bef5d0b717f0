"""A held-back tick's ages stay on screen in a narrow status line, and as non-root.

The held line is long (what was read, its cost, the budget); the status line
cuts off what does not fit. At 80 columns, with the not-root note (a
process of one's own, as nobody), the ages used to come after 120 columns of
other text: the user saw a stale map with nothing saying so. The ages now
come right after the VMA count; the rest follows the other parts.
"""

from __future__ import annotations

from conftest import fixture_path, wait_frames

from vmainspect.model import Frame
from vmainspect.snapshot import io as snapshot_io
from vmainspect.tui.sources import FramesSource, SourceKind

HELD = (
    "map 2.4 s old, next read in 1.6 s: smaps of 20,025 VMAs took 41 ms under the process's "
    "mmap lock (lock budget 1%, --lock-budget; r reads now)"
)


def screen_line(app, widget) -> str:
    """The text of ``widget``'s first row as drawn (cut to the screen's width)."""
    return "".join(seg.text for seg in widget.render_line(0))


async def test_the_ages_of_a_held_map_fit_80_columns_as_non_root():
    from vmainspect.tui.app import VmaInspectApp

    snap = snapshot_io.load(fixture_path("small-nonroot"))
    assert not snap.capabilities.root  # the status line carries the not-root note
    frames = [Frame(snap), Frame(snap, held=HELD), Frame(snap)]
    source = FramesSource(frames, kind=SourceKind.LIVE, interval=3600)
    app = VmaInspectApp(source, interval=3600, describe=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_frames(app, pilot)
        assert "old" not in str(app.status.render())
        app.request_frame()
        await wait_frames(app, pilot, 2)
        line = screen_line(app, app.status)
        assert len(line.rstrip()) <= 80
        assert "map 2.4 s old, next read in 1.6 s" in line
        full = str(app.status.render())  # the rest of the held line is still there, after the others
        assert "not root" in full and full.endswith("(lock budget 1%, --lock-budget; r reads now)")
        assert full.count("2.4 s old") == 1
        app.request_frame()  # read again: nothing says the map is old
        await wait_frames(app, pilot, 3)
        assert "old" not in str(app.status.render())
