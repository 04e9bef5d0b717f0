"""Replaying a recording in the TUI: stepping, jumping, playing, change highlighting."""

import asyncio
from pathlib import Path

import pytest
from made_up import anon_vma

from vmainspect.errors import BadInput
from vmainspect.model import Capabilities, HostInfo, ProcessInfo, Snapshot
from vmainspect.recording.io import RecordingWriter, read_recording
from vmainspect.tui.replay import RecordingSource, ReplayApp, parse_jump

PS = 4096
P = 0x7F0000000000
N = 6


def snapshot(k: int) -> Snapshot:
    """Frame k: VMA 2 gains a page per frame; a VMA at P+0x40000 exists only in frames 2 and 3."""
    vmas = [anon_vma(P, 4, 4, swap=0), anon_vma(P + 0x10000, 16, k, swap=0)]
    if k in (2, 3):
        vmas.append(anon_vma(P + 0x40000, 2, 1, swap=0))
    caps = Capabilities(True, True, True, True, True, True)
    proc = ProcessInfo(42, 1, "demo", ("demo",), "/usr/bin/demo", "root", 0, "S", 1, 10 * k, 0, 1000.0)
    return Snapshot(
        f"2026-11-25T07:00:{k:02d}Z",
        HostInfo("6.18", PS, "h"),
        proc,
        caps,
        {"rss": sum(x.smaps["rss"] for x in vmas), "pss": 0, "swap": 0},
        tuple(vmas),
    )


@pytest.fixture(scope="module")
def rec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "rec.jsonl"
    w = RecordingWriter.create(str(path))
    w.header(snapshot(0), interval_s=0.05, pages=True, faults=False)
    for k in range(N):
        w.frame(k * 1.0, snapshot(k))
    w.note(N * 1.0, "process 42 exited", end="exited")
    w.close()
    return str(path)


async def settle(app, pilot, timeout: float = 60.0):
    """Until the frame asked for is shown (the deadline is for a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await pilot.pause()
        if not app._polling and app.current_frame is not None and app.replay.shown == app.replay.upcoming:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"frame {app.replay.upcoming} asked for, {app.replay.shown} shown")
        await asyncio.sleep(0.01)


async def play_to_the_end(app, pilot, timeout: float = 60.0):
    """Until playing stops (the deadline is for a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while app.replay.playing and asyncio.get_running_loop().time() < deadline:
        await pilot.pause()
        await asyncio.sleep(0.01)


def shown_k(app) -> int:
    return int(app.current_frame.snapshot.taken_at[17:19])


def test_step_jump_and_highlighting(rec_path):
    asyncio.run(_step_jump_and_highlighting(rec_path))


async def _step_jump_and_highlighting(rec_path):
    app = ReplayApp(RecordingSource.open(rec_path), describe=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert shown_k(app) == 0 and app.paused
        await pilot.press("right")
        await settle(app, pilot)
        await pilot.press("right")
        await settle(app, pilot)
        assert shown_k(app) == 2
        # frame 2 vs frame 1: the VMA at P+0x40000 is new
        new_starts = {app.rows.vmas[r].start for r in app.rows.new}
        assert new_starts == {P + 0x40000}
        # jump to the end, then step back to frame 4: compared with frame 3 (where
        # P+0x40000 still existed), so it shows as removed, not as anything about frame 5
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert shown_k(app) == N - 1 and app.current_frame.gone
        await pilot.press("left")
        await settle(app, pilot)
        assert shown_k(app) == 4 and not app.current_frame.gone
        assert "exited" not in getattr(app, "_message", "")  # the exit belongs to the last frame only
        assert {app.rows.vmas[r].start for r in app.rows.ghost} == {P + 0x40000}
        assert app.rows.rss_delta  # VMA 2 grew by a page since frame 3
        # back to 3: compared with 2, nothing new
        await pilot.press("left")
        await settle(app, pilot)
        assert shown_k(app) == 3 and not app.rows.new and not app.rows.ghost
        # t: jump to a time
        await pilot.press("t")
        await pilot.pause()
        for ch in "1.5":
            await pilot.press(ch)
        await pilot.press("enter")
        await settle(app, pilot)
        assert shown_k(app) == 1
        assert "frame 2/6" in str(app.timeline.render())
        # clicking the sparkline seeks: its last column is the last frame, its first the first
        width = app.timeline.size.width
        await pilot.click("#timeline", offset=(width - 3, 1))
        await settle(app, pilot)
        assert shown_k(app) == N - 1
        await pilot.click("#timeline", offset=(1, 1))
        await settle(app, pilot)
        assert shown_k(app) == 0


def test_play_to_the_end_and_restart(rec_path):
    asyncio.run(_play_to_the_end_and_restart(rec_path))


async def _play_to_the_end_and_restart(rec_path):
    seen = []

    class Recorder(ReplayApp):
        def frame_applied(self, frame):
            seen.append(shown_k(self))
            super().frame_applied(frame)

    app = Recorder(RecordingSource.open(rec_path), describe=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")  # plays every recorded frame in order, then stops
        await play_to_the_end(app, pilot)
        assert not app.replay.playing and app.paused
        assert seen == list(range(N))
        assert "PAUSED" in str(app.timeline.render())
        seen.clear()
        await pilot.press("space")  # at the end: plays again from the start
        await play_to_the_end(app, pilot)
        assert not app.replay.playing
        assert seen == list(range(N))


def test_parse_jump(rec_path):
    rec = read_recording(rec_path)
    assert parse_jump(rec, "2") == 2 and parse_jump(rec, "0:03") == 3 and parse_jump(rec, "#-1") == N - 1
    for bad in ("", "x", "1:xx", "#99"):
        with pytest.raises(BadInput):
            parse_jump(rec, bad)


def test_open_starts_at_a_moment(rec_path):
    assert RecordingSource.open(rec_path + "#3").upcoming == 2
    assert RecordingSource.open(rec_path + "@4.2").upcoming == 4


def test_replay_needs_no_proc(rec_path, tmp_path):
    """Replaying a recording in the app never opens anything under /proc nor imports the collector."""
    import subprocess
    import sys

    code = (
        "import asyncio, builtins, os, sys\n"
        "real_open, real_os_open = builtins.open, os.open\n"
        "def guard(f):\n"
        "    if str(f).startswith('/proc'): raise AssertionError('opened ' + str(f))\n"
        "def g_open(f, *a, **k):\n"
        "    guard(f); return real_open(f, *a, **k)\n"
        "def g_os_open(f, *a, **k):\n"
        "    guard(f); return real_os_open(f, *a, **k)\n"
        "builtins.open, os.open = g_open, g_os_open\n"
        "from vmainspect.tui.replay import RecordingSource, ReplayApp\n"
        "async def main():\n"
        f"    app = ReplayApp(RecordingSource.open({rec_path!r}))\n"
        "    async with app.run_test(size=(100, 30)) as pilot:\n"
        "        for key in ('right', 'right', 'left', 'p'):\n"
        "            await pilot.press(key)\n"
        "            for _ in range(20): await pilot.pause()\n"
        "        print(len(app.current_frame.snapshot.vmas))\n"
        "asyncio.run(main())\n"
        "assert 'vmainspect.snapshot.collect' not in sys.modules, 'collector imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() in ("2", "3")


def test_open_command_dispatches_recordings(rec_path, tmp_path, monkeypatch, capsys):
    from vmainspect import cli

    started = []
    monkeypatch.setattr(ReplayApp, "run", lambda self: started.append(self))
    assert cli.main(["open", rec_path + "#2"]) == 0
    assert isinstance(started[0], ReplayApp) and started[0].replay.upcoming == 1
    # a cut-off recording opens, with a one-line warning saying where it stops
    cut = tmp_path / "cut.jsonl"
    data = Path(rec_path).read_bytes()
    cut.write_bytes(data[: data.rindex(b'{"t"') + 20])
    assert cli.main(["open", str(cut)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "stopped at line" in err and err.count("\n") == 1
    # another version of the format: one line, exit 2, no UI
    bad = tmp_path / "v9.jsonl"
    bad.write_text('{"schema": "vmainspect/recording@9", "interval_s": 1, "pid": 1}\n')
    assert cli.main(["open", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "@9" in err and err.count("\n") == 1
    assert len(started) == 2
