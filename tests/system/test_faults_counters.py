"""Counters mode on a fake /proc tree: deltas per process and per thread, exits, PID reuse."""

from __future__ import annotations

import os

import pytest

from vmainspect.errors import ProcessGone
from vmainspect.faults.sampler import FaultSampler

PID = 4242


def stat_line(
    pid: int, minflt: int, majflt: int, state: str = "S", start: int = 777, comm: str = "a) b"
) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime priority nice num_threads itrealvalue starttime ...
    return (
        f"{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 {minflt} 5 {majflt} 6 1 2 0 0 20 0 "
        f"2 0 {start} 1000 100 18446744073709551615\n"
    )


def write_tree(root, threads: dict[int, tuple[int, int]], *, state="S", start=777) -> None:
    base = root / str(PID)
    (base / "task").mkdir(parents=True, exist_ok=True)
    for d in (base / "task").iterdir():
        if int(d.name) not in threads:
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    tot = [sum(v[0] for v in threads.values()), sum(v[1] for v in threads.values())]
    (base / "stat").write_text(stat_line(PID, tot[0], tot[1], state, start))
    for tid, (mi, ma) in threads.items():
        (base / "task" / str(tid)).mkdir(exist_ok=True)
        (base / "task" / str(tid) / "stat").write_text(stat_line(tid, mi, ma, state, start))


def test_counters_deltas_per_process_and_thread(tmp_path):
    write_tree(tmp_path, {PID: (100, 1), PID + 1: (50, 0)})
    s = FaultSampler(PID, proc_root=str(tmp_path))
    s.start()
    assert s.mode == "counters" and "proc root" in s.reason
    assert s.start_counters == (150, 1)
    write_tree(tmp_path, {PID: (130, 3), PID + 1: (60, 0), PID + 2: (7, 0)})  # a new thread
    t = s.tick(None).faults
    assert (t.mode, t.minor, t.major, t.lost) == ("counters", 47, 2, None)
    assert t.by_thread == {PID: (30, 2), PID + 1: (10, 0), PID + 2: (7, 0)}
    assert t.by_vma == {} and t.by_symbol == () and t.reason == s.reason
    write_tree(tmp_path, {PID: (131, 3), PID + 2: (9, 0)})  # a thread exited
    r = s.tick(None)
    assert r.faults.by_thread == {PID: (1, 0), PID + 2: (2, 0)}
    assert r.ended is None


def test_zombie_counts_its_last_faults_then_is_gone(tmp_path):
    write_tree(tmp_path, {PID: (10, 0)})
    s = FaultSampler(PID, proc_root=str(tmp_path))
    s.start()
    write_tree(tmp_path, {PID: (15, 0)}, state="Z")
    r = s.tick(None)
    assert r.faults.minor == 5 and "zombie" in r.ended


def test_pid_reuse_is_not_counted(tmp_path):
    write_tree(tmp_path, {PID: (10, 0)})
    s = FaultSampler(PID, proc_root=str(tmp_path))
    s.start()
    write_tree(tmp_path, {PID: (99999, 0)}, start=888)  # another process with the same PID
    r = s.tick(None)
    assert (r.faults.minor, r.faults.major) == (0, 0) and "reused" in r.ended
    # the other process's counters are never subtracted from this one's
    assert s.proc_counters() is None


def test_no_such_process(tmp_path):
    with pytest.raises(ProcessGone):
        FaultSampler(PID, proc_root=str(tmp_path)).start()


def test_process_vanishes_between_ticks(tmp_path):
    write_tree(tmp_path, {PID: (10, 0)})
    s = FaultSampler(PID, proc_root=str(tmp_path))
    s.start()
    for f in (tmp_path / str(PID) / "task" / str(PID)).iterdir():
        f.unlink()
    os.rmdir(tmp_path / str(PID) / "task" / str(PID))
    os.rmdir(tmp_path / str(PID) / "task")
    os.unlink(tmp_path / str(PID) / "stat")
    os.rmdir(tmp_path / str(PID))
    r = s.tick(None)
    assert r.ended is not None and r.faults.minor == 0 and r.faults.by_thread == {}
