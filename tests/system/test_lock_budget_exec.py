"""A held-back step notices an exec: same PID and start time, a new memory map.

The lock budget keeps the last map while reading it again would hold the
process's mmap lock too often; but after an exec that map belongs to a
program no longer running (and the fault sampler would attribute the new
program's faults to its VMAs). The target maps VMAS pages split into one VMA
each, then execs ``sleep`` when told: the next step, although the budget
would hold it back for hours, must read the new map (its VMA count checked
against /proc/PID/maps, read here independently) and the one after is held
back again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from targets import many_vmas_code

from vmainspect.session import LiveSession

VMAS = 400
SLEEP = shutil.which("sleep")

TARGET = (
    many_vmas_code(VMAS)
    + f"""
import os
print("ready", flush=True)
sys.stdin.readline()
os.execv({SLEEP!r}, ["sleep", "600"])
"""
)


def count_maps(pid: int) -> int:
    with open(f"/proc/{pid}/maps", "rb") as f:
        return f.read().count(b"\n")


def wait_exec(pid: int) -> None:
    deadline = time.monotonic() + 60
    while os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(SLEEP or ""):
        assert time.monotonic() < deadline, "the target did not exec sleep"
        time.sleep(0.02)
    # the exe link changes during the exec; then the dynamic loader maps libc: sleep's map is
    # complete once it sleeps (state S, in nanosleep) with the same VMAs twice in a row
    seen = None
    while True:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        n = count_maps(pid)
        if state == b"S" and n == seen and n < VMAS // 2:
            return
        seen = n
        assert time.monotonic() < deadline, "sleep's map did not settle"
        time.sleep(0.05)


@pytest.mark.skipif(SLEEP is None, reason="no sleep binary")
def test_a_held_back_step_reads_the_new_map_after_an_exec():
    child = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    s = LiveSession(child.pid, pages=True, faults=True, lock_budget=1e-9)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        first = s.start()
        assert first.snapshot is not None and len(first.snapshot.vmas) >= VMAS
        held = s.step()
        assert held.held is not None and held.snapshot is first.snapshot
        assert child.stdin is not None
        child.stdin.write(b"\n")
        child.stdin.flush()
        wait_exec(child.pid)
        step = s.step()
        assert step.ended is None and step.held is None and step.fresh
        assert step.snapshot is not None and step.snapshot.process.name == "sleep"
        assert len(step.snapshot.vmas) == count_maps(child.pid)  # sleep's map does not change
        assert s.pacer.collects == 2
        again = s.step()  # the new map was read: the budget holds the next read back again
        assert again.held is not None and again.snapshot is step.snapshot
    finally:
        s.close()
        child.kill()
        child.wait()


def _maps_fds(pid: int) -> list[str]:
    """This process's fds open on /proc/PID/maps (what the session keeps between collects)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"/proc/{pid}/maps":
                out.append(fd)
        except OSError:
            pass
    return out


def test_a_session_that_fails_to_start_on_a_zombie_keeps_no_fd():
    from vmainspect.errors import ProcessGone

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 60
        while True:  # exited, not reaped: a zombie
            with open(f"/proc/{child.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        s = LiveSession(child.pid, faults=False)
        with pytest.raises(ProcessGone, match="zombie"):
            s.start()
        assert _maps_fds(child.pid) == []
    finally:
        child.wait()


def test_closing_a_session_closes_its_maps_fd():
    child = subprocess.Popen([SLEEP or "sleep", "600"])
    try:
        s = LiveSession(child.pid, faults=False)
        s.start()
        assert len(_maps_fds(child.pid)) == 1  # bound to the map the collect read
        s.step()
        assert len(_maps_fds(child.pid)) == 1  # replaced, not added
        s.close()
        assert _maps_fds(child.pid) == []
    finally:
        child.kill()
        child.wait()
