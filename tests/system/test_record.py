"""`vmainspect record` on spawned targets, read back and compared with the kernel's own smaps.

The recorder runs as a subprocess (as a user would run it); the targets stop
themselves at checkpoints so the kernel's numbers can be read while the
recorder samples them.
"""

import json
import math
import os
import signal
import subprocess
import sys

import pytest
from cli_helpers import run_cli
from record_helpers import frames_written, recorder, wait_frames
from schema_check import validate as validate_schema
from schema_check import validate_recording
from targets import read_smaps_kb, spawn_target

from vmainspect.recording.io import read_recording

PAGE = os.sysconf("SC_PAGE_SIZE")

# Stage k touches 8 more pages of a 64-page private anonymous region, then stops.
STAGED = """
m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE)
report["addr"] = addr_of(m)
_keep.append(m)
for stage in range(1, 5):
    checkpoint(report)
    for i in range((stage - 1) * 8, stage * 8):
        m[i * PAGE] = 1
"""

# Runs (touching a page every 20 ms) until killed.
BUSY = """
import time
m = mmap.mmap(-1, 4096 * PAGE, flags=mmap.MAP_PRIVATE)
report["addr"] = addr_of(m)
_keep.append(m)
checkpoint(report)
i = 0
while True:
    m[(i % 4096) * PAGE] = 1
    i += 1
    time.sleep(0.02)
"""


def region_rss(snapshot, addr):
    v = snapshot.vma_at(addr)
    return v.smaps["rss"]


def kernel_rss(pid, addr):
    for start, end, fields in read_smaps_kb(pid):
        if start <= addr < end:
            return fields["Rss"]
    raise AssertionError("region not in smaps")


def test_recording_matches_the_kernel_at_every_stage(tmp_path):
    out = tmp_path / "staged.jsonl"
    with spawn_target(STAGED) as t:
        addr = t.report["addr"]
        # every tick reads the map (--lock-budget 100): each stage must show in the next frames
        with recorder(
            t.pid, out, "--interval", "0.05", "--pages", "--no-faults", "--lock-budget", "100"
        ) as rec:
            kernel = []
            for stage in range(4):
                if stage:
                    t.resume_and_wait_stop()
                kernel.append(kernel_rss(t.pid, addr))
                # a frame being taken right now may predate the stop; the 3 after it do not
                wait_frames(out, frames_written(out) + 4, rec)
            rec.send_signal(signal.SIGINT)  # Ctrl+C: clean end, exit 0
            assert rec.wait(30) == 0, rec.stderr.read()
    r = read_recording(str(out))
    assert r.end == "interrupted" and r.truncated_at_line is None
    assert validate_recording(str(out)) == len(r)  # every line and rebuilt frame vs the shipped schemas
    assert kernel == [0, 8 * PAGE, 16 * PAGE, 24 * PAGE]
    seen = [region_rss(r.snapshot(i), addr) for i in range(len(r))]
    # every stage the kernel reported appears in the recording, in order (a frame taken
    # in the instant the target ran between two stages may show a value in between)
    stages = [x for i, x in enumerate(seen) if i == 0 or x != seen[i - 1]]
    assert stages == sorted(stages) and set(kernel) <= set(stages)
    assert seen[:3] == [kernel[0]] * 3 and seen[-3:] == [kernel[-1]] * 3
    # page runs: the last frame has exactly the touched pages present
    last = r.snapshot(-1).vma_at(addr)
    assert last.pages.counts.present == 24
    assert last.pages.runs[0].state == "anon" and last.pages.runs[0].count == 24
    # diff of the first and last frames: 24 pages absent -> anon, Rss +96K, like the kernel said
    res = run_cli("diff", f"{out}#1", f"{out}#-1", "--json")
    assert res.returncode == 1, res.stderr
    d = json.loads(res.stdout)
    validate_schema(d, "vmainspect/diff@1")
    (v,) = [x for x in d["vmas"] if x["b"] and x["b"]["start"] <= addr < x["b"]["end"]]
    assert v["rss"]["delta"] == kernel[-1] - kernel[0]
    assert v["transitions"] == [{"from": "absent", "to": "anon", "pages": 24}]


def test_sigkill_mid_run_leaves_a_file_that_opens(tmp_path):
    out = tmp_path / "killed.jsonl"
    with spawn_target(BUSY) as t:
        os.kill(t.pid, signal.SIGCONT)
        with recorder(t.pid, out, "--interval", "0.05", "--pages") as rec:
            wait_frames(out, 4, rec)
            rec.kill()  # SIGKILL: no chance to write an end note
            rec.wait()
    r = read_recording(str(out))
    assert len(r) >= 4 and r.end is None
    assert r.snapshot(-1).vma_at(t.report["addr"]) is not None
    res = run_cli("diff", f"{out}#1", f"{out}#-1")
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr
    # the file also opens in the replay source (what `vmainspect open` uses)
    from vmainspect.tui.replay import RecordingSource

    src = RecordingSource.open(str(out))
    assert src.next_frame().snapshot.process.pid == t.pid


def test_recording_ends_when_the_process_exits(tmp_path):
    out = tmp_path / "exit.jsonl"
    # the child lives until its stdin closes: it exits once two frames are on disk
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with recorder(child.pid, out, "--interval", "0.1", "--no-faults") as rec:
            wait_frames(out, 2, rec)
            child.stdin.close()
            child.wait()  # reaped: the recorder finds no process
            _, err = rec.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert rec.returncode == 0, err
    r = read_recording(str(out))
    assert r.end == "exited" and len(r) >= 2
    assert f"process {child.pid} exited" in r.notes[-1][1]
    assert r.frame(-1).gone


def test_duration_and_faults(tmp_path):
    out = tmp_path / "dur.jsonl"
    with spawn_target(BUSY) as t:
        os.kill(t.pid, signal.SIGCONT)
        res = run_cli("record", str(t.pid), "-o", str(out), "--interval", "0.2", "--duration", "2")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # no progress line when stderr is not a terminal
    r = read_recording(str(out))
    assert validate_recording(str(out)) == len(r)
    # t = 0, 0.2, ... 2.0, at most one frame per slot: a slot is skipped (not bunched up) when a
    # collect overruns on a busy machine, so a slot begins between any two frames (times are
    # rounded to the ms). Not a gap in seconds: a loaded machine may wake the recorder late.
    # The duration counts from before the first collect (0.1-0.2 s on a loaded machine, all
    # slots it overran skipped): 2 s leaves room for 3 frames when it takes longer still.
    assert r.end == "duration" and 3 <= len(r) <= 11, r.times
    assert all(
        math.floor((b + 5e-4) / 0.2) > math.floor((a - 5e-4) / 0.2) for a, b in zip(r.times, r.times[1:])
    ), r.times
    assert r.header["interval_s"] == 0.2 and r.header["pid"] == t.pid
    if r.header["faults"]:
        ticks = [r.faults(i) for i in range(1, len(r))]
        assert all(ft is not None for ft in ticks)
        # the target touches a page every 20 ms: some of those are first touches (minor faults)
        assert sum(ft.minor for ft in ticks) > 0


def test_ticks_held_back_by_the_lock_budget_record_the_last_map_and_their_faults(tmp_path):
    out = tmp_path / "held.jsonl"
    with spawn_target(BUSY) as t:
        os.kill(t.pid, signal.SIGCONT)
        # 0.0001%: the first read allows the next only after hours; every later tick is held back
        res = run_cli(
            "record",
            str(t.pid),
            "-o",
            str(out),
            "--interval",
            "0.1",
            "--duration",
            "1.5",  # from before the first collect: room for 3 frames after a slow one
            "--lock-budget",
            "0.0001",
        )
    assert res.returncode == 0, res.stderr
    r = read_recording(str(out))
    assert validate_recording(str(out)) == len(r) and r.end == "duration" and len(r) >= 3
    first = r.snapshot(0)
    assert all(r.snapshot(i).taken_at == first.taken_at for i in range(len(r)))  # the map read once
    with open(out, "rb") as f:
        patches = [line for line in f if line.startswith(b'{"t":') and b'"patch"' in line]
    assert len(patches) == len(r) - 1 and all(b'"patch":{"{":{}}' in p for p in patches)
    held = [text for _, text in r.notes if "kept the previous map" in text]
    assert held and held[0].startswith(f"{len(r) - 1} of {len(r)} frames") and "--lock-budget" in held[0]
    if r.header["faults"]:  # each held-back tick still has its own faults
        assert all(r.faults(i) is not None for i in range(1, len(r)))


def test_no_such_process_creates_no_file(tmp_path):
    out = tmp_path / "none.jsonl"
    res = run_cli("record", "999999999", "-o", str(out))
    assert res.returncode == 3 and res.stderr.count("\n") == 1 and not out.exists()


def test_existing_file_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "keep.jsonl"
    out.write_text("precious\n")
    res = run_cli("record", str(os.getpid()), "-o", str(out), "--duration", "0.1")
    assert res.returncode == 5 and "--force" in res.stderr and res.stderr.count("\n") == 1
    assert out.read_text() == "precious\n"


def test_sigterm_ends_cleanly(tmp_path):
    out = tmp_path / "term.jsonl"
    with spawn_target(BUSY) as t:
        os.kill(t.pid, signal.SIGCONT)
        with recorder(t.pid, out, "--interval", "0.05", "--no-faults") as rec:
            wait_frames(out, 2, rec)
            rec.send_signal(signal.SIGTERM)
            assert rec.wait(30) == 0, rec.stderr.read()
    r = read_recording(str(out))
    assert r.end == "interrupted" and r.notes[-1][1] == "stopped by SIGTERM" and r.truncated_at_line is None


@pytest.mark.nobody
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the recorder as nobody")
def test_no_permission_is_exit_4_and_no_file(nobody_dir):
    out = nobody_dir / "denied.jsonl"
    res = run_cli("record", os.getpid(), "-o", out, user="nobody", timeout=60)
    assert res.returncode == 4, res.stderr
    assert res.stderr.count("\n") == 1 and "permission denied" in res.stderr
    assert not os.path.exists(out)
