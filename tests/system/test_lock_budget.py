"""The lock budget against a real process with thousands of VMAs that keeps faulting.

A budget so small that every step after the first collect is held back
(reading smaps of 4,000 VMAs takes well over a microsecond, so the next read
would be due in hours): the held-back steps must keep the very snapshot
object of the last read, the fault sampler must still count the target's
faults on them, and a forced step must read the map again (its VMA count
checked against /proc/PID/maps, read here independently).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from targets import many_vmas_code

from vmainspect.session import LiveSession

VMAS = 4000

# Maps VMAS pages, makes every other page read-only (the kernel cannot merge
# neighbours: one VMA per page), says so, then maps, writes and unmaps 16
# pages at a time until killed: page faults and mmap-lock traffic all along.
TARGET = (
    many_vmas_code(VMAS)
    + """
print("ready", flush=True)
while True:
    m = mmap.mmap(-1, 16 * page)
    for off in range(0, 16 * page, page):
        m[off] = 1
    m.close()
"""
)


def minor_faults(pid: int) -> int:
    """The target's minor faults so far (/proc/PID/stat, read here independently)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[7])


def wait_faults(pid: int, since: int) -> None:
    """Until the target has faulted a few times since ``since`` (it runs when a loaded machine
    lets it: polled, with a deadline only for a target that never runs)."""
    deadline = time.monotonic() + 60
    while minor_faults(pid) < since + 16:
        assert time.monotonic() < deadline, "the target did not fault"
        time.sleep(0.01)


def count_maps(pid: int) -> int:
    with open(f"/proc/{pid}/maps", "rb") as f:
        return f.read().count(b"\n")


@pytest.fixture
def target():
    child = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        yield child
    finally:
        child.kill()
        child.wait()


def test_held_back_steps_reuse_the_map_tick_faults_and_a_forced_step_reads(target):
    s = LiveSession(target.pid, pages=True, faults=True, lock_budget=1e-9)
    try:
        first = s.start()
        assert first.snapshot is not None and len(first.snapshot.vmas) >= VMAS
        held_faults = 0
        for _ in range(3):
            wait_faults(target.pid, minor_faults(target.pid))  # faults in every held-back window
            step = s.step()
            assert step.ended is None and not step.fresh
            assert step.snapshot is first.snapshot  # the same object: not read again
            assert step.held is not None and step.held.until > time.monotonic() + 60
            assert "smaps" in step.held.reads and "pagemap" in step.held.reads
            assert step.faults is not None  # the sampler still ticks on the kept map
            held_faults += step.faults.faults.minor
        assert held_faults > 0
        assert s.held_steps == 3 and s.pacer.collects == 1  # the sampler's refresh was held back too
        forced = s.step(force=True)
        assert forced.fresh and forced.held is None and forced.snapshot is not first.snapshot
        assert forced.snapshot is not None
        # independently: the kernel's maps of the target now (it maps and unmaps 16 pages
        # at a time, so one VMA more or less than when the session read it)
        assert abs(len(forced.snapshot.vmas) - count_maps(target.pid)) <= 1
        assert s.step().held is not None  # and the next is held back again
    finally:
        s.close()


def test_a_held_back_step_still_sees_the_process_exit(target):
    s = LiveSession(target.pid, faults=False, lock_budget=1e-9)
    try:
        s.start()
        assert s.step().held is not None
        target.kill()
        target.wait()
        step = s.step()
        assert step.ended is not None and s.pacer.collects == 1
    finally:
        s.close()


def test_a_collect_reports_the_cpu_time_of_each_lock_holding_read(target):
    """smaps, smaps_rollup and (with pages) pagemap are each timed; nothing else is."""
    from vmainspect.procfs.locktime import LockTime
    from vmainspect.snapshot.collect import collect

    spent = LockTime()
    snap = collect(target.pid, pages=True, lock_time=spent)
    assert len(snap.vmas) >= VMAS
    assert set(spent.by_read) == {"smaps", "smaps_rollup", "pagemap"}
    assert all(s > 0 for s in spent.by_read.values())
    without = LockTime()
    collect(target.pid, lock_time=without)
    assert set(without.by_read) == {"smaps", "smaps_rollup"}
