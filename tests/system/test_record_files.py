"""A recording carries each frame's mapped files and their page-cache counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from dirty_target import WRITTEN, dirty_target
from kernel_cache import have_cachestat, kernel_cachestat
from record_helpers import frames_written, recorder, wait_frames
from schema_check import validate_recording

from vmainspect.recording.io import read_recording


@pytest.mark.skipif(not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)")
def test_frames_carry_files_and_a_sync_shows_as_clean(tmp_path):
    out = tmp_path / "rec.jsonl"
    # --lock-budget 100: every frame reads the map, so the frames after the fsync show it
    with (
        dirty_target() as (t, path),
        recorder(t.pid, out, "--interval", "0.05", "--lock-budget", "100") as rec,
    ):
        wait_frames(out, 2, rec)  # frames with the pages dirty (if nothing synced them meanwhile)
        dirty_then = kernel_cachestat(path)["dirty"]
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # write them back: this file only, not the whole machine
        os.close(fd)
        assert kernel_cachestat(path)["dirty"] == 0
        wait_frames(out, frames_written(out) + 2, rec)  # frames taken after the fsync
        rec.send_signal(signal.SIGINT)
        assert rec.wait(30) == 0, rec.stderr.read()
    r = read_recording(str(out))
    assert validate_recording(str(out)) == len(r) >= 4
    dirty = []
    for i in range(len(r)):
        (f,) = [f for f in r.snapshot(i).files if f.path == path]
        dirty.append(f.page_cache.dirty)
    assert dirty[-1] == 0  # after the fsync
    if dirty_then >= len(WRITTEN):  # no sync elsewhere before the first frames were taken
        assert dirty[0] >= len(WRITTEN)
    assert dirty == sorted(dirty, reverse=True)  # nothing writes: the count only falls


@pytest.mark.skipif(not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)")
def test_diff_shows_the_written_back_pages(tmp_path):
    import json

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with dirty_target() as (t, path):
        snap = [sys.executable, "-m", "vmainspect", "snapshot", str(t.pid), "-o"]
        subprocess.run([*snap, str(a)], check=True, timeout=60)
        before = kernel_cachestat(path)["dirty"]
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # this file only
        os.close(fd)
        subprocess.run([*snap, str(b)], check=True, timeout=60)
    r = subprocess.run(
        [sys.executable, "-m", "vmainspect", "diff", str(a), str(b), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    (f,) = [f for f in doc["files"] if f["path"] == path]
    assert f["status"] == "changed" and f["dirty"]["b"] == 0
    assert f["dirty"]["a"] >= before  # A was taken before the kernel read 'before' (it only falls)
    if before >= len(WRITTEN):
        assert f["dirty"]["delta"] <= -len(WRITTEN)
