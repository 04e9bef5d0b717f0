"""The lecture app against the live demo workload: narration, verdicts, keys, clean-up."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import termios
import threading
import time

import psutil
import pytest
from demo_procs import end, gone, temp_folders, workloads

from vmainspect.demo.lesson import STEPS, Lesson, StepResult
from vmainspect.procfs.cachestat import page_cache_of
from vmainspect.tui.lecture import LectureApp
from vmainspect.tui.lecture_panels import (
    KEYS,
    ConfirmRestart,
    LectureHelpScreen,
    NarrationPanel,
    lecture_help,
)

BY_ID = {s.id: s for s in STEPS}
SHARED_MAP, SHARED_WRITE = STEPS.index(BY_ID["shared-map"]), STEPS.index(BY_ID["shared-write"])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def wait_until(pilot, cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await pilot.pause(0.05)


async def run_steps(app, pilot, keys: list[str]) -> None:
    for key in keys:
        n = len(app.results)
        await pilot.press(key)
        await wait_until(pilot, lambda n=n: len(app.results) == n + 1 and not app.step_running)


async def _three_steps_then_restart() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, interval=0.3, faults=False)
        async with app.run_test(size=(120, 45)) as pilot:
            await wait_until(pilot, lambda: app.current_frame is not None)
            text = app.narration.text().plain
            assert "Press n or space for step 1" in text and STEPS[0].title in text

            await run_steps(app, pilot, ["n", "space", "n", "n"])  # mmap, touch, huge page, cold read
            assert [r.step.id for r in app.results] == [
                "anon-mmap",
                "touch-pages",
                "huge-first-touch",
                "cold-file-read",
            ]
            assert all(r.holds is True for r in app.results), [(r.step.id, r.reason) for r in app.results]
            text = app.narration.text().plain
            assert f"Step 4/{len(STEPS)}" in text and STEPS[3].title in text
            assert STEPS[3].narration[0] in text and "Watch:" in text
            assert "HOLDS" in text and "major faults" in text
            assert app.results[-1].summary in text
            assert f"Next (n / space): {STEPS[4].title}" in text

            # the affected VMA gets selected once a frame after the step is on screen
            focus = app.results[-1].focus
            await wait_until(pilot, lambda: app.selected_vma is not None and app.selected_vma.contains(focus))
            assert app.selected_vma.path.endswith("private.dat")
            assert app._state() == "live"

            old_pid, old_dir = lesson.pid, lesson.session.dir
            # every frame applied from here on: (its pid, the pid it was diffed against, ghost rows)
            applied: list[tuple[int, int | None, int]] = []
            apply = app.frame_applied

            def record(frame):
                prev = app._prev.process.pid if app._prev is not None else None
                applied.append((frame.snapshot.process.pid, prev, len(app.rows.ghost)))
                apply(frame)

            app.frame_applied = record
            await pilot.press("r")  # asks first
            await pilot.pause()
            assert lesson.pid == old_pid and isinstance(app.screen, ConfirmRestart)
            await pilot.press("y")
            await pilot.pause()
            assert lesson.pid != old_pid and lesson.index == 0 and not app.results
            assert gone(old_pid) and not os.path.exists(old_dir)
            assert "Press n or space for step 1" in app.narration.text().plain
            # a clean frame of the new workload: diffed against nothing, so the old one's VMAs
            # are not shown as removed (recorded: the next poll may replace it at once)
            await wait_until(pilot, lambda: (lesson.pid, None, 0) in applied)
            await run_steps(app, pilot, ["n"])
            assert app.results[0].step.id == "anon-mmap" and app.results[0].holds is True
            pid, folder = lesson.pid, lesson.session.dir
            await pilot.press("q")
    assert gone(pid) and not os.path.exists(folder)


def test_three_steps_verdicts_selection_and_restart():
    asyncio.run(_three_steps_then_restart())


async def _auto_advances() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, auto=0.5, interval=0.3, faults=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await wait_until(pilot, lambda: len(app.results) >= 2)
            assert [r.step.id for r in app.results[:2]] == ["anon-mmap", "touch-pages"]
            assert all(r.holds is True for r in app.results)
            await pilot.press("q")


def test_auto_advances_by_itself():
    asyncio.run(_auto_advances())


async def _workload_killed() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, interval=0.3, faults=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await run_steps(app, pilot, ["n"])
            os.kill(lesson.pid, signal.SIGKILL)
            await pilot.press("n")
            await wait_until(pilot, lambda: app.narration.state == "error")
            text = app.narration.text().plain
            assert "could not run" in text and "exited" in text and "r restarts" in text
            await pilot.press("r", "y")
            await run_steps(app, pilot, ["n"])
            assert app.results[-1].holds is True
            await pilot.press("q")


def test_a_killed_workload_is_reported_and_r_recovers():
    asyncio.run(_workload_killed())


def _result(holds, reason=None) -> StepResult:
    return StepResult(
        SHARED_MAP,
        STEPS[SHARED_MAP],
        {"dirty": None},
        holds,
        reason,
        "256 of 256 pages resident",
        None,
        (1,),
        0.1,
    )


async def _panel_states() -> None:
    from textual.app import App

    class Host(App):
        def compose(self):
            yield NarrationPanel(len(STEPS), id="n")

    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(NarrationPanel)
        panel.intro(STEPS[0], root=False)
        assert "Not root" in panel.text().plain
        panel.running(STEPS[SHARED_MAP], SHARED_MAP, STEPS[SHARED_MAP + 1].title)
        assert "running" in panel.text().plain and "kpageflags needs root" in panel.text().plain
        panel.done(_result(None, "no page is dirty: needs root"))
        assert "UNKNOWN" in panel.text().plain and "needs root" in panel.text().plain
        panel.done(_result(False, "did not hold: no page is dirty"))
        assert "DID NOT HOLD" in panel.text().plain
        panel.failed("demo workload 123 exited")
        assert "could not run" in panel.text().plain and "r restarts" in panel.text().plain
        panel.review(_result(True))
        assert "recorded" in panel.text().plain and "HOLDS" in panel.text().plain
        await pilot.pause()


def test_narration_panel_shows_unknown_failed_and_errors():
    asyncio.run(_panel_states())


def _drain(fd: int, stop: threading.Event, out: bytearray) -> None:
    while not stop.is_set():
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        out += chunk


@pytest.mark.parametrize("how", ["close-terminal", "sigterm", "q", "ctrl+c"])
def test_vmainspect_demo_in_a_terminal_cleans_up(how):
    """`vmainspect demo` in a pty: closing the terminal, SIGTERM or q end the workload and remove files."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x28\x00\x78\x00\x00\x00\x00\x00")  # 40 x 120
    env = dict(
        os.environ, TERM="xterm-256color", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "demo"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(slave)
    stop = threading.Event()
    screen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, stop, screen), daemon=True)
    reader.start()
    closed = False
    try:
        proc = psutil.Process(p.pid)
        deadline = time.monotonic() + 30
        work = []
        while not work and time.monotonic() < deadline and p.poll() is None:
            work = workloads(proc)
            time.sleep(0.05)
        assert work, f"the workload did not start: {bytes(screen[-3000:])!r}"
        folders = temp_folders(p.pid)
        assert folders
        # let the UI come up (raw mode: ctrl+c is a key, not SIGINT)
        while b"Next" not in screen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"Next" in screen, bytes(screen[-2000:])
        time.sleep(0.3)
        if how == "close-terminal":
            os.close(master)  # the kernel sends SIGHUP to the session leader
            closed = True
        elif how == "sigterm":
            p.send_signal(signal.SIGTERM)
        else:
            os.write(master, b"q" if how == "q" else b"\x03")
        p.wait(30)
        assert gone(work[0].pid)
        assert not temp_folders(p.pid)
        if how in ("q", "ctrl+c"):
            assert p.returncode == 0
    finally:
        stop.set()
        end(p)
        if not closed:
            os.close(master)


class _PanelHost:
    """A tiny app showing only the narration panel in a given state (deterministic)."""

    @staticmethod
    def make(big: bool, holds):
        from textual.app import App

        class Host(App):
            CSS = "Screen { background: black; }"

            def compose(self):
                yield NarrationPanel(len(STEPS), big=big, id="n")

            def on_mount(self):
                panel = self.query_one(NarrationPanel)
                panel.intro(STEPS[0], root=holds is not None)
                panel.running(STEPS[SHARED_WRITE], SHARED_WRITE, STEPS[SHARED_WRITE + 1].title)
                reason = None if holds else "every written page is dirty: needs root (kpageflags/kpagecount)"
                dirty = "3 (0,100,200)" if holds else "? (needs root)"
                panel.done(
                    StepResult(
                        SHARED_WRITE,
                        STEPS[SHARED_WRITE],
                        {},
                        holds,
                        reason,
                        f"wrote 3 pages; dirty pages: {dirty}; read(2) of the file sees the new bytes",
                        None,
                        (1,),
                        0.1,
                    ),
                    STEPS[SHARED_WRITE + 1].title,
                )

        return Host()


def test_narration_panel_verdict_snapshot(snap_compare):
    assert snap_compare(_PanelHost.make(False, True), terminal_size=(100, 16))


def test_narration_panel_unknown_projector_snapshot(snap_compare):
    assert snap_compare(_PanelHost.make(True, None), terminal_size=(100, 18))


async def _keys_back_jump_pause_help() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, interval=0.3, faults=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_until(pilot, lambda: app.current_frame is not None)
            footer = {k: ab.binding.description for k, ab in app.active_bindings.items() if ab.binding.show}
            # the footer names what the keys do in the lecture (one meaning each)
            assert footer.get("n") == "Next" and footer.get("b") == "Back" and footer.get("p") == "Pause"
            assert footer.get("g") == "Jump" and footer.get("r") == "Restart"
            assert "space" not in footer  # space is "Next" too, not a pause key
            await run_steps(app, pilot, ["n", "space", "n"])
            assert app.viewing is None and not app.paused
            # b: the previous step's recorded evidence, the live refresh paused
            await pilot.press("b")
            assert app.viewing == 1 and app.paused
            assert "Touching pages" in app.narration.text().plain and "recorded" in app.narration.text().plain
            ev = app.evidence.plain()
            assert "64 absent → anon" in ev and "recorded" in ev
            assert "PAUSED (p resumes)" in str(app.status.render())
            await pilot.press("left")
            assert app.viewing == 0
            await pilot.press("b")  # nothing before step 1
            assert app.viewing == 0
            # n walks forward through the recorded steps, then runs the next one
            await pilot.press("n")
            assert app.viewing == 1
            await pilot.press("n")
            assert app.viewing == 2
            await run_steps(app, pilot, ["n"])
            assert app.viewing is None and not app.paused and len(app.results) == 4
            # a digit: a recorded step is shown; g N past the last runs up to N
            await pilot.press("2")
            assert app.viewing == 1
            await pilot.press("g")
            await pilot.pause()
            await pilot.press("6", "enter")
            await wait_until(pilot, lambda: len(app.results) == 6 and not app.step_running, 60)
            assert app.viewing is None and [r.step.id for r in app.results][-1] == STEPS[5].id
            # p pauses and resumes the refresh
            await pilot.press("p")
            assert app.paused
            await pilot.press("p")
            assert not app.paused
            # a: all of the workload's mappings, or its own only
            own = app.source.own_only
            await pilot.press("a")
            assert app.source.own_only is not own
            # ?: the lecture's own help, naming the lecture's keys
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, LectureHelpScreen)
            await pilot.press("escape")
            # r asks first; n keeps the lecture
            await pilot.press("r")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmRestart)
            await pilot.press("n")
            await pilot.pause()
            assert len(app.results) == 6
            await pilot.press("q")


def test_keys_back_jump_pause_restart_help():
    asyncio.run(_keys_back_jump_pause_help())


def test_lecture_help_names_the_lecture_keys():
    from rich.console import Console

    console = Console(width=120, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(lecture_help())
    text = console.export_text()
    for key, _ in KEYS:
        assert key in text
    assert "refresh now" not in text and "most significant" in text


async def _msync_after_talking() -> None:
    """35 s of talking after the shared write: writeback has cleaned the pages; msync still holds."""
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, interval=0.3, faults=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_until(pilot, lambda: app.current_frame is not None)
            upto = SHARED_WRITE + 1
            await pilot.press("g")
            await pilot.pause()
            await pilot.press(*str(upto), "enter")
            await wait_until(pilot, lambda: len(app.results) == upto and not app.step_running, 60)
            assert app.results[-1].step.id == "shared-write"
            shared = lesson.ctx.files["shared"]
            # the writeback clock follows the dirtied file
            await wait_until(pilot, lambda: app.evidence.clock is not None)
            assert app.evidence.clock.path == shared and "Writeback clock" in app.evidence.plain()
            # what 35 s of talking lets the kernel do (dirty_expire_centisecs = 30 s): write back
            os.sync()
            assert page_cache_of(shared).dirty == 0
            while lesson.current is not None and lesson.current.id != "msync":
                await run_steps(app, pilot, ["n"])
            await run_steps(app, pilot, ["n"])
            r = app.results[-1]
            # without root the "no mapped page is dirty" part needs kpageflags: unknown, never false;
            # the counts the verdict rests on come from cachestat, which needs no root
            root = os.geteuid() == 0
            assert r.step.id == "msync" and r.holds is (True if root else None), r.reason
            assert r.measured["dirty_before_msync"] >= 3 and r.measured["dirty_after_msync"] == 0
            text = app.narration.text().plain
            assert ("HOLDS" if root else "UNKNOWN") in text
            assert f"right before msync {r.measured['dirty_before_msync']} pages" in text
            await pilot.press("q")


def test_msync_holds_after_a_long_talk():
    asyncio.run(_msync_after_talking())


async def _projector_100x30() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, big=True, interval=0.3, faults=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.current_frame is not None)
            await run_steps(app, pilot, ["n", "n"])
            await wait_until(pilot, lambda: app._focus is None and app.selected_vma is not None)
            await pilot.pause(0.3)
            screen = app.screen.region
            # only the workload's own mapping is listed, and it is on screen
            assert [v.start for v in app.current_frame.snapshot.vmas] == [lesson.ctx.regions["anon"][0]]
            table = app.table.region
            assert table.height >= 4 and screen.contains_region(table)
            grid = app.query_one("#pm-grid").region
            counts = app.query_one("#pm-counts").region
            assert grid.height >= 2 and counts.height >= 1 and screen.contains_region(counts)
            for box in ("#narration-box", "#evidence-box"):
                r = app.query_one(box).region
                assert r.height >= 6 and screen.contains_region(r), box
            assert "Touching pages" in app.narration.text().plain
            assert "64 absent → anon" in app.evidence.plain()
            # every touched page shows in the page map, whatever the scale
            cells = app.query_one("#pm-grid")._cells
            assert sum(c.state == "anon" for c in cells) * app.query_one("#pm-grid").per >= 64
            await pilot.press("q")


def test_projector_mode_at_100x30_shows_table_page_map_step_and_evidence():
    asyncio.run(_projector_100x30())


class _RecordedLesson:
    """Stands in for a Lesson whose step 2 has run: no workload, fixed numbers (snapshot tests)."""

    steps = STEPS
    session = None
    ctx = None
    index = 2
    done = False

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def close(self) -> None:
        pass


def _projector_app(small):
    from vmainspect.demo.evidence import Evidence, FunctionFaults, MappingFaults, Transition
    from vmainspect.model import Frame
    from vmainspect.tui.lecture import own_frame
    from vmainspect.tui.sources import FramesSource, SourceKind

    anon = next(v for v in small.vmas if v.kind == "anon-private" and v.pages and v.pages.counts.present > 4)
    heap = next(v for v in small.vmas if v.kind == "heap")
    frame = own_frame(Frame(small), "/nonexistent", ((anon.start, anon.size), (heap.start, heap.size)))
    lesson = _RecordedLesson(small.process.pid)
    app = LectureApp(
        lesson,
        big=True,
        interval=3600,
        faults=False,
        source=FramesSource([frame], kind=SourceKind.LIVE, interval=3600),
    )
    ev = Evidence(
        minor=64,
        major=0,
        by_mapping=(MappingFaults("anon", 64, 0),),
        by_function=(FunctionFaults("memset (libc)", "__memset_avx2_unaligned_erms", 64),),
        interpreter=1,
        faults_note=None,
        transitions=(Transition("anon", "absent", "anon", 64),),
        numbers=(("touched pages", "64"), ("present before", "0"), ("present after", "64")),
        zoom=(anon.start, anon.size),
    )
    result = StepResult(
        1,
        STEPS[1],
        {"touched_pages": 64},
        True,
        None,
        "touched 64 pages: 0 -> 64 resident, 64 minor / 0 major faults",
        anon.start,
        (small.process.pid,),
        0.1,
        ev,
    )
    return app, result


def test_projector_100x30_snapshot(snap_compare, small):
    """--lecture at 100x30: VMA rows, the page map with its counts, the step text and the evidence."""
    app, result = _projector_app(small)

    async def run_before(pilot) -> None:
        while app.current_frame is None:
            await pilot.pause(0.01)
        app._step_done(result)
        app._focus = None  # the fixture's frame is older than the step: select by hand
        while app.polling:
            await pilot.pause(0.01)
        app.select_address(result.focus)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
