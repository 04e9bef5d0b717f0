"""All or nothing under SIGKILL: a 20k-VMA process killed at a random moment
while ``snapshot``, ``maps`` or ``record`` reads it gives exit 3 or a complete
result, never a partial one (issue 15, point 2).

The targets are forked copies of one 20k-VMA process (benchmarks/
target_many_vmas.py --fork): each has exactly the VMAs the builder reported,
and is reaped by the kernel the moment it dies (the case where the reader sees
a live-looking stat while the address space is torn down). The kill moments
are drawn uniformly over the time an unkilled run of the same command takes,
so most of them land while /proc is being read.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from targets import wait_stopped

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "benchmarks", "target_many_vmas.py")
RUNS = 20
VMAS = 20000

pytestmark = pytest.mark.slow


class Zygote:
    """One 20k-VMA builder; ``spawn()`` forks a stopped copy and returns (pid, report)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, TARGET, "--vmas", str(VMAS), "--size", "160M", "--written", "0.05", "--fork"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def spawn(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        info = json.loads(self.proc.stdout.readline())
        wait_stopped(info["pid"])
        return info

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    try:
        yield z
    finally:
        z.close()


def _in_region(info: dict, starts: list[int]) -> int:
    lo, hi = info["start"], info["start"] + info["size"]
    return sum(1 for s in starts if lo <= s < hi)


def _run(argv: list[str], pid: int, kill_after: float | None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vmainspect", *argv]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    timer = None
    if kill_after is not None:
        timer = threading.Timer(kill_after, os.kill, (pid, signal.SIGKILL))
        timer.start()
    try:
        out, err = p.communicate(timeout=120)
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def _snapshot_vmas(r: subprocess.CompletedProcess, _out: str) -> list[int]:
    return [v["start"] for v in json.loads(r.stdout)["vmas"]]


def _maps_vmas(r: subprocess.CompletedProcess, _out: str) -> list[int]:
    starts = []
    for ln in r.stdout.splitlines():
        f = ln.split()
        try:
            starts.append(int(f[0], 16)) if len(f) > 2 and int(f[1], 16) > int(f[0], 16) else None
        except ValueError:
            continue
    return starts


def _check(zygote, argv_of, vmas_of, tmp_path) -> tuple[int, int]:
    """RUNS kills; returns (exit 3 count, complete count); fails on anything else."""
    info = zygote.spawn()
    t0 = time.monotonic()
    full = _run(argv_of(info["pid"], tmp_path / "calib"), info["pid"], None)
    span = time.monotonic() - t0
    assert full.returncode == 0, full.stderr
    assert _in_region(info, vmas_of(full, str(tmp_path / "calib"))) == VMAS
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    gone = complete = 0
    for i in range(RUNS):
        info = zygote.spawn()
        delay = rng.uniform(0, span)
        out = tmp_path / f"run{i}"
        t0 = time.monotonic()
        r = _run(argv_of(info["pid"], out), info["pid"], delay)
        if r.returncode == 0 and delay > time.monotonic() - t0:
            # it ended before its kill: the calibration run was slower than this one (a load
            # spike), and kills drawn over its time would land after most runs. Draw the next
            # ones over this run's time.
            span = time.monotonic() - t0
        what = f"run {i}, killed after {delay:.3f}s of {span:.3f}s: exit {r.returncode}: {r.stderr.strip()}"
        assert "Traceback" not in r.stderr, what
        if r.returncode == 3:
            assert r.stdout == "", what
            gone += 1
            continue
        assert r.returncode == 0, what
        assert _in_region(info, vmas_of(r, str(out))) == VMAS, what
        complete += 1
    return gone, complete


def test_snapshot_is_all_or_nothing(zygote, tmp_path):
    gone, complete = _check(zygote, lambda pid, _o: ["snapshot", str(pid)], _snapshot_vmas, tmp_path)
    assert gone + complete == RUNS and gone > 0


def test_maps_is_all_or_nothing(zygote, tmp_path):
    gone, complete = _check(zygote, lambda pid, _o: ["maps", str(pid)], _maps_vmas, tmp_path)
    assert gone + complete == RUNS and gone > 0


def test_record_ends_with_exited_and_only_complete_frames(zygote, tmp_path):
    from vmainspect.recording.io import END_EXITED, read_recording

    def argv(pid: int, out) -> list[str]:
        # --lock-budget 100: every tick reads the map, so the kills land mid-read
        return [
            "record",
            str(pid),
            "-o",
            str(out),
            "--interval",
            "0.05",
            "--duration",
            "1",
            "--no-faults",
        ] + [
            "--lock-budget",
            "100",
        ]

    def frames(r: subprocess.CompletedProcess, out: str) -> list[int]:
        rec = read_recording(out)
        assert rec.truncated_at_line is None
        counts = {_in_region(info_of[out], [v.start for v in rec.snapshot(i).vmas]) for i in range(len(rec))}
        assert counts == {VMAS}, f"frames with {sorted(counts)} VMAs"
        if rec.end == END_EXITED:
            ended.append(out)
        return [v.start for v in rec.snapshot(-1).vmas]

    info_of: dict[str, dict] = {}
    ended: list[str] = []
    real_spawn = zygote.spawn

    def spawn() -> dict:
        info = real_spawn()
        info_of[str(tmp_path / f"run{len(info_of) - 1}") if info_of else str(tmp_path / "calib")] = info
        return info

    zygote.spawn = spawn
    try:
        gone, complete = _check(zygote, argv, frames, tmp_path)
    finally:
        zygote.spawn = real_spawn
    assert gone + complete == RUNS
    assert ended, "no recording saw its process exit"
