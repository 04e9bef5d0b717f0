"""The header keeps moving while the lock budget keeps the map.

State, threads, RSS, swap and the fault totals and rates come from the
counters read each tick without the mmap lock (``Frame.vitals``); the VMA
table and PSS stay at the last read, and the status line says how old that is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from targets import spawn_target
from tui_helpers import fixture_path, next_frame, wait_frames

from vmainspect.model import Frame, ProcessVitals
from vmainspect.snapshot import io as snapshot_io
from vmainspect.tui.sources import FramesSource, LiveSource, SourceKind
from vmainspect.units import human_bytes

HELD = "map 3.0 s old, next read in 9.0 s: 41 ms under mmap lock (budget 1%); r reads now"


def facts(app) -> str:
    from textual.widgets import Static

    return str(app.header.query_one("#facts", Static).render())


def screen_line(widget) -> str:
    return "".join(seg.text for seg in widget.render_line(0))


async def test_a_held_frame_shows_the_counters_read_at_its_tick():
    from vmainspect.tui.app import VmaInspectApp

    snap = snapshot_io.load(fixture_path("small"))
    p = snap.process
    t0 = datetime.fromisoformat(snap.taken_at.replace("Z", "+00:00"))
    later = (t0 + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # 2 s after the snapshot
    vitals = ProcessVitals(
        taken_at=later,
        state="D",
        threads=p.threads + 3,
        minor_faults=p.minor_faults + 4000,
        major_faults=p.major_faults + 10,
        rss=snap.totals["rss"] + (64 << 20),
        swap=5 << 20,
    )
    frames = [Frame(snap), Frame(snap, held=HELD, vitals=vitals)]
    app = VmaInspectApp(
        FramesSource(frames, kind=SourceKind.LIVE, interval=3600), interval=3600, describe=None
    )
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_frames(app, pilot)
        text = facts(app)
        assert f"faults min {p.minor_faults:,}" in text and f"threads {p.threads}" in text
        await next_frame(app, pilot)
        text = facts(app)
        assert "state D" in text and f"threads {p.threads + 3}" in text
        assert f"RSS {human_bytes(vitals.rss)}" in text and f"Swap {human_bytes(5 << 20)}" in text
        assert f"PSS {human_bytes(snap.totals['pss'])}" in text  # only a map read counts it
        assert f"faults min {vitals.minor_faults:,} (2,000/s)" in text  # 4000 in 2 s
        assert f"maj {vitals.major_faults:,} (5.0/s)" in text
        assert len(app.rows) == len(snap.vmas)  # the table is the kept map's


GROW = 256

TARGET = f"""
m = mmap.mmap(-1, {GROW} * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
_keep.append(m)
checkpoint(report)
for i in range({GROW}):
    m[i * PAGE] = 1          # stage 2: {GROW} faults, {GROW} pages more resident
"""


def kernel_minflt(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[7])


def kernel_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        (line,) = [x for x in f if x.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize("width", [80, 160])
async def test_a_live_process_faulting_while_its_map_is_held_back(width):
    from vmainspect.tui.app import VmaInspectApp

    with spawn_target(TARGET) as t:
        source = LiveSource(t.pid, interval=3600, faults=False, lock_budget=1e-9)  # every later tick held
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        try:
            async with app.run_test(size=(width, 30)) as pilot:
                await wait_frames(app, pilot)
                first = app.current_frame.snapshot
                before = kernel_minflt(t.pid)
                assert f"faults min {before:,}" in facts(app)
                t.resume_and_wait_stop()  # GROW pages written, stopped again
                await next_frame(app, pilot)
                frame = app.current_frame
                assert frame.held is not None and frame.snapshot is first  # the map is kept
                after = kernel_minflt(t.pid)
                assert after - before >= GROW
                text = facts(app)
                assert f"faults min {after:,}" in text  # ... the totals are the kernel's of now
                assert f"RSS {human_bytes(kernel_rss(t.pid))}" in text
                assert "state T" in text  # stopped at its checkpoint
                rate = re.search(r"faults min [\d,]+ \(([\d,.]+)/s\)", text)
                assert rate is not None and float(rate.group(1).replace(",", "")) > 0
                line = screen_line(app.status)
                assert "s old, next read in " in line  # on screen, not cut off, at 80 columns too
                assert len(line.rstrip()) <= width
        finally:
            source.close()
