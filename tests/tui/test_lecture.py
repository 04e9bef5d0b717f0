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

from vmainspect.demo.control import PREFIX, temp_root
from vmainspect.demo.lesson import STEPS, Lesson, StepResult
from vmainspect.tui.lecture import LectureApp, NarrationPanel

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
        await wait_until(pilot, lambda: len(app.results) == n + 1 and not app.step_running)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


async def _three_steps_then_restart() -> None:
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, interval=0.3, faults=False)
        async with app.run_test(size=(120, 45)) as pilot:
            await wait_until(pilot, lambda: app.current_frame is not None)
            text = app.narration.text().plain
            assert "Press n or space for step 1" in text and STEPS[0].title in text

            await run_steps(app, pilot, ["n", "space", "n"])  # mmap, touch, cold file read
            assert [r.step.id for r in app.results] == ["anon-mmap", "touch-pages", "cold-file-read"]
            assert all(r.holds is True for r in app.results), [(r.step.id, r.reason) for r in app.results]
            text = app.narration.text().plain
            assert "Step 3/16" in text and STEPS[2].title in text
            assert STEPS[2].narration[0] in text and "Watch:" in text
            assert "HOLDS" in text and "major faults" in text
            assert app.results[-1].summary in text
            assert f"Next (n / space): {STEPS[3].title}" in text

            # the affected VMA gets selected once a frame after the step is on screen
            focus = app.results[-1].focus
            await wait_until(pilot, lambda: app.selected_vma is not None and app.selected_vma.contains(focus))
            assert app.selected_vma.path.endswith("private.dat")
            assert app._state() == "live"

            old_pid, old_dir = lesson.pid, lesson.session.dir
            await pilot.press("r")
            assert lesson.pid != old_pid and lesson.index == 0 and not app.results
            assert _gone(old_pid) and not os.path.exists(old_dir)
            assert "Press n or space for step 1" in app.narration.text().plain
            # a clean frame of the new workload: the old one's VMAs are not shown as removed
            await wait_until(
                pilot,
                lambda: (
                    app.current_frame is not None
                    and app.current_frame.snapshot.process.pid == lesson.pid
                    and not app.rows.ghost
                    and app._prev is None
                ),
            )
            await run_steps(app, pilot, ["n"])
            assert app.results[0].step.id == "anon-mmap" and app.results[0].holds is True
            pid, folder = lesson.pid, lesson.session.dir
            await pilot.press("q")
    assert _gone(pid) and not os.path.exists(folder)


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
            await pilot.press("r")
            await run_steps(app, pilot, ["n"])
            assert app.results[-1].holds is True
            await pilot.press("q")


def test_a_killed_workload_is_reported_and_r_recovers():
    asyncio.run(_workload_killed())


def _result(holds, reason=None) -> StepResult:
    return StepResult(
        4, STEPS[4], {"dirty": None}, holds, reason, "256 of 256 pages resident", None, (1,), 0.1
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
        panel.running(STEPS[4], 4, STEPS[5].title)
        assert "running" in panel.text().plain and "kpageflags needs root" in panel.text().plain
        panel.done(_result(None, "no page is dirty: needs root"))
        assert "UNKNOWN" in panel.text().plain and "needs root" in panel.text().plain
        panel.done(_result(False, "did not hold: no page is dirty"))
        assert "DID NOT HOLD" in panel.text().plain
        panel.failed("demo workload 123 exited")
        assert "could not run" in panel.text().plain and "r restarts" in panel.text().plain
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


def _workloads(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for c in proc.children():
        try:
            if "demo.workload" in " ".join(c.cmdline()):
                found.append(c)
        except psutil.Error:  # a short-lived helper that already went
            pass
    return found


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
            work = _workloads(proc)
            time.sleep(0.05)
        assert work, f"the workload did not start: {bytes(screen[-3000:])!r}"
        folders = [n for n in os.listdir(temp_root()) if n.startswith(f"{PREFIX}{p.pid}-")]
        assert folders
        # let the UI come up (raw mode: ctrl+c is a key, not SIGINT)
        while b"Next step" not in screen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"Next step" in screen, bytes(screen[-2000:])
        time.sleep(0.3)
        if how == "close-terminal":
            os.close(master)  # the kernel sends SIGHUP to the session leader
            closed = True
        elif how == "sigterm":
            p.send_signal(signal.SIGTERM)
        else:
            os.write(master, b"q" if how == "q" else b"\x03")
        p.wait(30)
        assert _gone(work[0].pid)
        assert not [n for n in os.listdir(temp_root()) if n.startswith(f"{PREFIX}{p.pid}-")]
        if how in ("q", "ctrl+c"):
            assert p.returncode == 0
    finally:
        stop.set()
        if p.poll() is None:
            p.kill()
            p.wait()
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
                panel.running(STEPS[5], 5, STEPS[6].title)
                reason = None if holds else "every written page is dirty: needs root (kpageflags/kpagecount)"
                dirty = "3 (0,100,200)" if holds else "? (needs root)"
                panel.done(
                    StepResult(
                        5,
                        STEPS[5],
                        {},
                        holds,
                        reason,
                        f"wrote 3 pages; dirty pages: {dirty}; read(2) of the file sees the new bytes",
                        None,
                        (1,),
                        0.1,
                    )
                )

        return Host()


def test_narration_panel_verdict_snapshot(snap_compare):
    assert snap_compare(_PanelHost.make(False, True), terminal_size=(100, 16))


def test_narration_panel_unknown_projector_snapshot(snap_compare):
    assert snap_compare(_PanelHost.make(True, None), terminal_size=(100, 18))
