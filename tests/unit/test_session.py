"""session.LiveSession: one place decides exited / zombie / PID reused, and what a
gone process leaves (its last complete snapshot; never another process's counters)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from vmainspect.errors import AccessDenied, ProcessGone
from vmainspect.procfs.process import Liveness
from vmainspect.session import LiveSession

PID = 4343


def stat_line(pid: int, minflt: int, state: str = "S", start: int = 777) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime priority nice num_threads itrealvalue starttime ...
    return (
        f"{pid} (t) {state} 1 {pid} {pid} 0 -1 4194560 {minflt} 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 100 0\n"
    )


def write_tree(root, minflt: int, *, state: str = "S", start: int = 777) -> None:
    task = root / str(PID) / "task" / str(PID)
    task.mkdir(parents=True, exist_ok=True)
    (root / str(PID) / "stat").write_text(stat_line(PID, minflt, state, start))
    (task / "stat").write_text(stat_line(PID, minflt, state, start))


def no_map(pid: int, **_kw: object):
    raise AccessDenied(pid, "smaps", "needs root")


def counters_session(root) -> LiveSession:
    """``faults`` on a process whose map is unreadable: /proc counters only."""
    return LiveSession(
        PID,
        proc_root=str(root),
        collect_each_step=False,
        need_snapshot=False,
        need_faults=True,
        collector=no_map,
    )


def test_pid_reuse_ends_the_session_and_never_subtracts_another_process(tmp_path):
    write_tree(tmp_path, 100_000)
    s = counters_session(tmp_path)
    first = s.start()
    assert first.snapshot is None and s.sampler is not None and s.sampler.mode == "counters"
    write_tree(tmp_path, 5, start=999)  # a new process, far fewer faults, same PID
    step = s.step()
    assert step.ended is not None and step.ended.state is Liveness.REUSED
    assert "PID was reused" in step.ended.message
    final = s.finish()
    assert final.counters is None  # c1 - c0 would be negative: not reported at all
    assert final.step.ended == step.ended
    s.close()


def test_a_zombie_ends_the_session_with_its_last_faults(tmp_path):
    write_tree(tmp_path, 10)
    s = counters_session(tmp_path)
    s.start()
    write_tree(tmp_path, 15, state="Z")
    step = s.step()
    assert step.ended is not None and step.ended.state is Liveness.ZOMBIE
    assert step.faults is not None and step.faults.faults.minor == 5
    s.close()


def test_no_process_at_the_start(tmp_path):
    with pytest.raises(ProcessGone):
        counters_session(tmp_path).start()


def test_live_process_exit_keeps_the_last_complete_snapshot():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        s = LiveSession(child.pid, faults=False, lock_budget=None)  # every step collects
        first = s.start()
        assert first.snapshot is not None and first.snapshot.vmas
        step = s.step()
        assert step.ended is None and step.fresh and step.snapshot.vmas
        last = step.snapshot
        os.kill(child.pid, signal.SIGKILL)
        child.wait()  # reaped: no such PID (until reused)
        gone = s.step()
        assert gone.ended is not None and gone.ended.state is Liveness.EXITED
        assert gone.snapshot is last and not gone.fresh
        assert s.step().ended == gone.ended  # stays ended
        s.close()
    finally:
        child.kill()
        child.wait()


def test_a_zombie_cannot_be_started():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while True:  # not reaped: a zombie
            with open(f"/proc/{child.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.005)
        with pytest.raises(ProcessGone, match="zombie"):
            LiveSession(child.pid, faults=False).start()
    finally:
        child.wait()
