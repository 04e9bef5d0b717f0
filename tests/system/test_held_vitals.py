"""While the lock budget keeps the map, the process-level counters still move.

A target that writes 256 new pages between two ticks, stopped (SIGSTOP) when
each tick reads it, so its counters hold still while this test reads them
too. The session's budget is so small that every tick after the first is held
back: the kept snapshot still has the first read's fault count and RSS, and
the step's ``vitals`` must have the kernel's numbers of now, compared with
/proc/PID/stat and status parsed here, by hand, independently of vmainspect.
"""

from __future__ import annotations

import pytest
from targets import spawn_target

from vmainspect.session import LiveSession

GROW = 256  # pages written between the two ticks

TARGET = f"""
m = mmap.mmap(-1, {GROW} * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
_keep.append(m)
checkpoint(report)
for i in range({GROW}):
    m[i * PAGE] = 1          # stage 2: {GROW} page faults, {GROW} pages resident more
"""


def kernel_stat(pid: int) -> tuple[str, int, int, int]:
    """(state, minflt, majflt, num_threads) from /proc/PID/stat, split after the last ')'."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        rest = f.read().rsplit(b")", 1)[1].split()
    return rest[0].decode(), int(rest[7]), int(rest[9]), int(rest[17])


def kernel_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in status")


@pytest.mark.parametrize("pages", [False, True])
def test_a_held_back_step_reads_the_counters_of_now(pages):
    with spawn_target(TARGET) as t:
        s = LiveSession(t.pid, pages=pages, faults=False, lock_budget=1e-9)
        try:
            first = s.start()
            snap = first.snapshot
            assert snap is not None and first.vitals is not None
            assert first.vitals.minor_faults == kernel_stat(t.pid)[1]  # stopped: nothing moved since
            t.resume_and_wait_stop()  # GROW pages written, stopped again
            step = s.step()
            assert step.held is not None and not step.fresh
            assert step.snapshot is snap  # the map is kept ...
            v = step.vitals
            assert v is not None  # ... and the counters are of now
            state, minflt, majflt, threads = kernel_stat(t.pid)
            assert (v.state, v.minor_faults, v.major_faults, v.threads) == (state, minflt, majflt, threads)
            assert v.state == "T"  # stopped by its checkpoint
            assert v.rss == kernel_status_kb(t.pid, "VmRSS") * 1024
            assert v.swap == kernel_status_kb(t.pid, "VmSwap") * 1024
            # the kept snapshot still says what the first read saw, the vitals what came since
            assert v.minor_faults - snap.process.minor_faults >= GROW
            assert v.rss - snap.totals["rss"] >= GROW * 4096 * 9 // 10  # some pages may leave meanwhile
            assert s.pacer.collects == 1  # the map was not read again
        finally:
            s.close()


def test_a_step_that_reads_the_map_has_vitals_too():
    """Read after the collect: consecutive ticks' counters are read the same way."""
    with spawn_target(TARGET) as t:
        s = LiveSession(t.pid, faults=False, lock_budget=None)
        try:
            s.start()
            t.resume_and_wait_stop()
            step = s.step()
            assert step.fresh and step.held is None and step.vitals is not None
            assert step.vitals.minor_faults == kernel_stat(t.pid)[1]
            assert step.vitals.minor_faults == step.snapshot.process.minor_faults  # stopped: the same
        finally:
            s.close()


def test_record_writes_the_counters_of_each_held_frame_and_replay_shows_them(tmp_path):
    import signal

    from record_helpers import frames_written, recorder, wait_frames
    from schema_check import validate_recording

    from vmainspect.recording.io import read_recording

    out = tmp_path / "held.jsonl"
    with spawn_target(TARGET) as t:
        # a budget so small that only the first tick reads the map
        with recorder(t.pid, out, "--interval", "0.05", "--no-faults", "--lock-budget", "1e-7") as rec:
            wait_frames(out, 3, rec)
            before = kernel_stat(t.pid)[1]
            t.resume_and_wait_stop()  # GROW pages written, stopped again
            after = kernel_stat(t.pid)[1]
            # a frame being taken right now may predate the stop; the 3 after it do not
            wait_frames(out, frames_written(out) + 4, rec)
            rec.send_signal(signal.SIGINT)
            assert rec.wait(30) == 0, rec.stderr.read()
        rss_kb = kernel_status_kb(t.pid, "VmRSS")
    r = read_recording(str(out))
    assert validate_recording(str(out)) == len(r)  # the new field against the shipped schema
    assert after - before >= GROW
    assert [r.map_of(i) for i in range(len(r))] == [0] * len(r)  # every frame kept the first map
    first, last = r.frame(0), r.frame(-1)
    assert first.vitals is not None and first.vitals.minor_faults == before
    assert last.held is not None and last.snapshot.process.minor_faults == before  # the kept map
    assert last.vitals is not None and last.vitals.minor_faults == after  # the counters of its tick
    assert last.vitals.rss == rss_kb * 1024
