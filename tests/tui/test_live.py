"""The TUI on a live process the test spawns, and the commands' one-line errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from targets import AS_NOBODY, spawn_target
from tui_helpers import fixture_path, next_frame, wait_frames

from vmainspect.tui.pagegrid import cells
from vmainspect.tui.sources import LiveSource, SourceKind
from vmainspect.tui.widgets.vma_table import VmaTable

TARGET = """
m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
_keep.append(m)
for i in range(0, 16):
    m[i * PAGE] = 1          # the first 16 pages written
report["addr"] = addr_of(m)
checkpoint(report)
for i in range(16, 32):
    m[i * PAGE] = 1          # stage 2: 16 more
"""


async def test_attach_sees_the_mapping_and_its_pages_change():
    from vmainspect.tui.app import VmaInspectApp

    with spawn_target(TARGET) as t:
        addr = t.report["addr"]
        source = LiveSource(t.pid, interval=3600, faults=False, lock_budget=None)  # every tick reads
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_frames(app, pilot)
                assert app.select_address(addr + 5 * 4096) is True
                vma = app.selected_vma
                assert vma.start == addr and vma.end == addr + 64 * 4096
                grid = cells(vma, 4096, 1)
                assert [c.state for c in grid[:16]] == ["anon"] * 16
                assert {c.state for c in grid[16:]} == {"absent"}
                # the target writes 16 more pages; the next tick shows them, marked changed
                t.resume_and_wait_stop()
                await next_frame(app, pilot)
                vma = app.selected_vma
                assert vma.start == addr
                assert vma.pages.counts.present == 32
                table = app.query_one(VmaTable)
                row = table.selected_row
                assert app.rows.rss_delta[row] == 16 * 4096
                grid = app.page_map.query_one("#pm-grid")
                grid.render_line(0)
                changed = [i for i, c in enumerate(grid._cells) if c.changed]
                per = grid.per
                assert changed == list(range(16 // per, 32 // per))
        finally:
            source.close()


async def test_exit_of_the_live_process_keeps_the_last_snapshot():
    from vmainspect.tui.app import VmaInspectApp

    with spawn_target(TARGET) as t:
        source = LiveSource(t.pid, interval=3600, faults=False)
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_frames(app, pilot)
            before = app.current_frame.snapshot
            os.kill(t.pid, signal.SIGKILL)  # not reaped yet: a zombie
            deadline = time.monotonic() + 60
            while _state(t.pid) not in ("Z", "X"):
                assert time.monotonic() < deadline, "SIGKILL did not make the target a zombie in 60 s"
                await asyncio.sleep(0.01)
            await next_frame(app, pilot)
            assert app.current_frame.gone and f"process {t.pid} exited" in app.current_frame.message
            assert app.current_frame.snapshot is before and len(app.rows) == len(before.vmas)
            t.proc.wait()  # reaped: the PID is gone for good
            await pilot.press("r")  # no more polling once gone
            await pilot.pause()
            assert app.frames_seen == 2
        source.close()


async def test_a_tick_held_back_says_so_and_r_reads_the_map_now():
    from vmainspect.tui.app import VmaInspectApp

    with spawn_target(TARGET) as t:
        # a budget so small that after the first read every tick is held back
        source = LiveSource(t.pid, interval=3600, faults=False, lock_budget=1e-9)
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        try:
            async with app.run_test(size=(200, 30)) as pilot:
                await wait_frames(app, pilot)
                before = app.current_frame.snapshot
                await next_frame(app, pilot)
                frame = app.current_frame
                assert frame.snapshot is before and frame.held is not None and source.held_steps == 1
                status = str(app.status.render())
                assert "map " in status and "s old, next read in " in status and "r reads now" in status
                assert " ms under mmap lock (budget 1e-07%)" in status
                n = app.frames_seen
                await pilot.press("r")  # the user asked: read it whatever the budget says
                await wait_frames(app, pilot, n + 1)
                assert app.current_frame.snapshot is not before and app.current_frame.held is None
                assert "s old" not in str(app.status.render())
        finally:
            source.close()


def test_the_lecture_is_never_held_back_by_the_lock_budget(tmp_path):
    from vmainspect.tui.lecture import LectureSource

    src = LectureSource(os.getpid(), str(tmp_path))
    try:
        assert src._src.lock_budget is None  # a step's evidence must show on the next tick
        src.retarget(os.getpid(), str(tmp_path))
        assert src._src.lock_budget is None
    finally:
        src.close()
    default = LiveSource(os.getpid())
    from vmainspect.session import DEFAULT_LOCK_BUDGET

    assert default.lock_budget == DEFAULT_LOCK_BUDGET  # attach's live view: the budget by default
    default.close()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0].decode()


async def test_picker_attaches_to_the_chosen_process():
    from vmainspect.tui.app import VmaInspectApp
    from vmainspect.tui.proclist import ProcRow

    with spawn_target(TARGET) as t:
        rows = [
            ProcRow(1, "root", "init", "/sbin/init", 1 << 20, 10, 0),
            ProcRow(t.pid, "root", "python3", "python3 -c target", 1 << 22, 100, 0),
        ]
        app = VmaInspectApp(
            None, interval=3600, describe=None, picker_lister=lambda: rows, live_options={"faults": False}
        )
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press(*"target")  # filter as you type: one row left
            table = app.screen.query_one("#picker-table")
            assert table.row_count == 1
            await pilot.press("enter")
            await wait_frames(app, pilot)
            assert app.current_frame.snapshot.process.pid == t.pid
            assert app.select_address(t.report["addr"])
            app.source.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmainspect", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_open_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "vmainspect/snapshot@1", "vmas": [')
    r = _cli("open", str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("vmainspect: ")
    r = _cli("open", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_attach_errors_are_one_line():
    r = _cli("attach", "999999999")
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "999999999" in r.stderr
    r = _cli("attach", "--name", "no-such-process-name-xyzzy")
    assert r.returncode == 3 and "no process matches" in r.stderr
    r = _cli("attach", "--interval", "0", "1")
    assert r.returncode == 2


@pytest.mark.nobody
@pytest.mark.root("runs vmainspect as nobody against a root process")
def test_attach_other_users_process_without_privilege_says_what_is_missing():
    with spawn_target("pass") as t:
        r = subprocess.run(
            [*AS_NOBODY, sys.executable, "-m", "vmainspect", "attach", str(t.pid)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert r.returncode == 4
    assert r.stderr.count("\n") == 1 and "permission denied" in r.stderr and "ptrace" in r.stderr


def test_open_of_a_fixture_builds_a_file_source():
    from vmainspect.tui.sources import FileSource

    src = FileSource(fixture_path("small"))
    assert src.kind is SourceKind.SNAPSHOT and src.next_frame().snapshot.process.name == "python3"
