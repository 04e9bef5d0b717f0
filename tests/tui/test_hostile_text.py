"""Text from processes and files is text: markup and terminal escapes in names,
paths, perms and symbols are shown literally, and never crash the TUI.

Every string here is something another user controls: a process's name and
command line (`exec -a "[/]x"`, `/proc/self/comm`), a path, a recording's
perms field, what is typed into the go-to box.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tui_helpers import make_app, wait_frames

from vmainspect.model import Frame, replace
from vmainspect.safetext import printable
from vmainspect.tui.widgets.vma_table import VmaTable

EVIL = "[/]x[b]\x1b[31m\x1b]0;pwned\x07[/b]"


def screen_text(app) -> str:
    """Everything the current screen shows, as plain text (the compositor's output)."""
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


def hostile(snap):
    """``snap`` with markup and escapes in the process name, paths and perms."""
    vmas = list(snap.vmas)
    vmas[0] = replace(vmas[0], path="/tmp/" + EVIL, perms="[/]")
    vmas[1] = replace(vmas[1], path="[bold red]" + "\x9b" + "2J")
    proc = replace(snap.process, name=EVIL, cmdline=[EVIL, "[/]"])
    return replace(snap, vmas=tuple(vmas), process=proc)


def assert_safe(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


async def test_hostile_snapshot_is_shown_literally(small, tmp_path):
    snap = hostile(small)
    app = make_app([snap, Frame(snap, gone=True, message=f"process {EVIL} has exited")], interval=0.05)
    app.save_dir = str(tmp_path / "sd[/]")
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await wait_frames(app, pilot, 2)
        await pilot.pause(0.2)
        table = app.query_one(VmaTable)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert any(printable(EVIL) in line for line in lines)  # the path, its start cut to fit
        assert any("[/]" in line for line in lines)  # the perms cell
        for panel in ("1", "2"):  # the page map and the details of the evil VMA
            await pilot.press(panel)
            await pilot.pause()
            shown = screen_text(app)
            assert_safe(shown)
        assert printable(EVIL) in shown  # details shows the path literally
        await pilot.press("s")  # save into a directory named with markup: reported, no crash
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.query_one("#status").render())
        assert "sd[/]" in status and "save failed" in status
        assert_safe(screen_text(app))
        assert app.is_running


async def test_goto_box_takes_markup_as_text(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("g", "[", "/", "]", "enter")
        await pilot.pause()
        assert "not a hex address: '[/]'" in screen_text(app)
        await pilot.press("escape")
        assert app.is_running


async def test_notifications_are_text(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_frames(app, pilot)
        app.notify(EVIL, title="[/]")
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert_safe(shown)
        assert printable(EVIL)[:10] in shown


def evil_process():
    """A process whose command line and name (comm) are markup with escapes."""
    code = "import sys, time; open('/proc/self/comm', 'w').write('[/]\\x1b[31mz'); print(1, flush=True); time.sleep(600)"
    p = subprocess.Popen(
        ["bash", "-c", f'exec -a "[/]x" {sys.executable} -c "$0" "[b]\x1b[2J"', code],
        stdout=subprocess.PIPE,
    )
    assert p.stdout.readline() == b"1\n"
    return p


async def test_picker_shows_a_markup_named_process():
    from vmainspect.tui.app import VmaInspectApp
    from vmainspect.tui.screens.picker import PickerScreen

    p = evil_process()
    try:
        app = VmaInspectApp(None, picker_only={p.pid}, describe=None)
        async with app.run_test(size=(160, 30)) as pilot:
            # the process list is read in a worker thread, then drawn: wait for each in turn
            # (deadlines for a loaded machine; the failure says which step did not happen)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60

            def loaded() -> bool:
                return isinstance(app.screen, PickerScreen) and any(r.pid == p.pid for r in app.screen.rows)

            while not loaded() and loop.time() < deadline:
                await pilot.pause(0.05)
            assert loaded(), f"the picker did not list {p.pid}: {type(app.screen).__name__}"
            while str(p.pid) not in screen_text(app) and loop.time() < deadline:
                await pilot.pause(0.05)
            shown = screen_text(app)
            assert str(p.pid) in shown, shown
            assert "[/]x" in shown and "[/]\\x1b[31mz" in shown
            assert_safe(shown)
            assert app.is_running
    finally:
        p.kill()
        p.wait()


async def test_recording_with_markup_in_perms_and_notes(small, tmp_path):
    from vmainspect.recording.io import RecordingWriter
    from vmainspect.tui.replay import RecordingSource, ReplayApp

    (tmp_path / "[red]rec").mkdir()
    path = str(tmp_path / "[red]rec" / "evil.jsonl")  # the loader's error names the file
    snap = hostile(small)
    w = RecordingWriter.create(path)
    w.header(snap, interval_s=0.5, pages=True, faults=False)
    w.frame(0.0, small)
    w.frame(0.5, snap)
    w.note(1.0, EVIL, end="exited")
    w.close()
    app = ReplayApp(RecordingSource.open(path), describe=None)
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await pilot.press("right_square_bracket")  # the last frame: its perms are refused
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        status = app.query_one("#status")
        while "perms" not in str(status.render()) and loop.time() < deadline:
            await pilot.pause(0.05)
        assert "[red]rec" in str(status.render()) and "perms" in str(status.render())  # as text
        await pilot.pause(0.2)
        assert_safe(screen_text(app))  # the notification too
        assert app.is_running
