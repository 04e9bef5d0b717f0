"""A held-back tick's ages stay on screen in a narrow status line, and as non-root.

The status line cuts off what does not fit. At 80 columns, with the not-root
note (a process of one's own, as nobody), the ages used to come after 120
columns of other text: the user saw a stale map with nothing saying so. The
ages come right after the VMA count, then why (the lock time and the budget,
short), and the whole line of a held tick fits 100 columns: no sort (the
column header's mark says it) and no time taken (the age says it).
"""

from __future__ import annotations

import pytest
from tui_helpers import fixture_path, wait_frames

from vmainspect.model import Frame
from vmainspect.session.pacing import HeldBack
from vmainspect.snapshot import io as snapshot_io
from vmainspect.tui.sources import FramesSource, SourceKind, held_text
from vmainspect.tui.statusline import held_parts
from vmainspect.units import seconds_text

HELD = "map 12.4 s old, next read in 11.6 s: 41 ms under mmap lock (budget 1%); r reads now"


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
        assert "map 12.4 s old, next read in 11.6 s" in line
        full = str(app.status.render())  # the rest of the held line is still there, then the others
        assert full.count("12.4 s old") == 1 and "not root" in full
        assert full.index("r reads now") < full.index("not root")
        app.request_frame()  # read again: nothing says the map is old
        await wait_frames(app, pilot, 3)
        assert "old" not in str(app.status.render())


async def test_a_held_status_line_fits_100_columns_whole():
    """As root (no not-root note), on 20,025 VMAs (the benchmark target's count)."""
    from vmainspect.model import replace
    from vmainspect.tui.app import VmaInspectApp

    base = snapshot_io.load(fixture_path("small"))
    assert base.capabilities.root
    v = base.vmas[0]
    page = base.host.page_size
    vmas = tuple(replace(v, start=k * 2 * page, end=k * 2 * page + page, pages=None) for k in range(1, 20026))
    snap = replace(base, vmas=vmas)
    line = held_text(HeldBack(until=1011.6, since=987.6, lock_s=0.041, reads=("smaps",), budget=0.01), 1000.0)
    frames = [Frame(snap), Frame(snap, held=line)]
    source = FramesSource(frames, kind=SourceKind.LIVE, interval=3600)
    app = VmaInspectApp(source, interval=3600, describe=None)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_frames(app, pilot)
        app.request_frame()
        await wait_frames(app, pilot, 2)
        full = str(app.status.render())
        assert full == (
            "20,025 VMAs · map 12.4 s old, next read in 11.6 s · 41 ms under mmap lock (budget 1%); r reads now"
        )
        assert len(full) <= 100 and screen_line(app, app.status).rstrip() == full


@pytest.mark.parametrize(
    ("s", "text"),
    [
        (0.0, "0.0 s"),
        (1.64, "1.6 s"),
        (99.9, "99.9 s"),
        (720, "12 min"),
        (12600, "3.5 h"),
        (1e8, "1,157 days"),
    ],
)
def test_seconds_text(s, text):
    assert seconds_text(s) == text


def test_a_tiny_budget_says_days_not_a_nine_digit_count_of_seconds():
    now = 1000.0
    held = HeldBack(until=now + 1e8, since=now - 2.35, lock_s=0.041, reads=("smaps", "pagemap"), budget=1e-11)
    line = held_text(held, now)
    assert (
        line == "map 2.4 s old, next read in 1,157 days: 41 ms under mmap lock (budget 1e-09%); r reads now"
    )
    assert held_parts(line) == ("map 2.4 s old, next read in 1,157 days", line.split(": ", 1)[1])
