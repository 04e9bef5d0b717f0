"""`vmainspect wss`: the working set of a process that reads a known set of pages."""

from __future__ import annotations

import json
import mmap
import os
import signal

import jsonschema
import pytest
from cli_helpers import one_line_error, run_cli
from targets import read_smaps_kb, spawn_target

from vmainspect import schemas

PAGE = mmap.PAGESIZE
ROOT = os.geteuid() == 0
N = 10_000  # pages per region
HOT = 1_000  # pages of the first region read over and over

READER = f"""
N, HOT = {N}, {HOT}
m = mmap.mmap(-1, (2 * N + 1) * PAGE, flags=mmap.MAP_PRIVATE)
m.madvise(mmap.MADV_NOHUGEPAGE)  # a huge page would count whole in Referenced
for p in range(2 * N + 1):
    m[p * PAGE] = 1
a = addr_of(m)
libc.mprotect(a + N * PAGE, PAGE, 0)  # a guard page: the two regions stay two VMAs
report["hot"] = a
report["cold"] = a + (N + 1) * PAGE
checkpoint(report)
import time
while True:
    for p in range(HOT):
        m[p * PAGE]
    time.sleep(0.002)
"""


@pytest.fixture()
def reader():
    with spawn_target(READER, user="65534" if ROOT else None) as t:
        smaps = {s: f for s, _e, f in read_smaps_kb(t.pid)}
        for key in ("hot", "cold"):  # the kernel says: each region is one VMA, fully resident
            assert smaps[t.report[key]]["Rss"] == N * PAGE
        os.kill(t.pid, signal.SIGCONT)
        yield t


def _region(interval: dict, start: int) -> dict:
    (v,) = [v for v in interval["vmas"] if v["start"] == start]
    assert v["end"] - v["start"] == N * PAGE
    return v


@pytest.mark.nobody
def test_working_set_of_a_reader(reader):
    """The issue's check: the read region within 10% of 1,000 pages, the other under 5%."""
    r = run_cli("wss", reader.pid, "--duration", "3", "--json", user="nobody" if ROOT else None)
    assert r.returncode == 0, r.stderr
    assert "clear_refs" in r.stderr  # the cost is said, once
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, schemas.load("vmainspect/wss@1"))
    assert doc["interval"] == 1.0 and len(doc["intervals"]) == 3
    near = 0  # intervals in which the read region measured within 10% of its 1,000 pages
    for iv in doc["intervals"]:
        hot = _region(iv, reader.report["hot"])
        cold = _region(iv, reader.report["cold"])
        # The reader touches no more than HOT pages, so no interval may count more; fewer happens
        # when a loaded machine keeps the reader off the CPU for most of a second (seen in CI:
        # 899 of 1,000), so the 10% bound must hold in most intervals, not in every one.
        assert hot["accessed"] / PAGE <= HOT * 1.10, hot
        near += abs(hot["accessed"] / PAGE - HOT) <= HOT * 0.10
        assert cold["accessed"] / PAGE < N * 0.05, cold
        assert hot["resident"] == cold["resident"] == N * PAGE
        assert iv["total_accessed"] == sum(v["accessed"] for v in iv["vmas"])
    assert near >= 2, doc["intervals"]
    assert any("page_idle" in n for n in doc["notes"])


def test_text_report_and_errors(reader):
    r = run_cli("wss", reader.pid, "--interval", "0.5")
    assert r.returncode == 0, r.stderr
    assert "ACCESSED/INTERVAL" in r.stdout and f"{reader.report['hot']:x}" in r.stdout
    assert "idle page tracking" in r.stdout
    r = run_cli("wss", "999999999")
    assert r.returncode == 3 and "does not exist" in one_line_error(r)  # no warning: nothing was reset


@pytest.mark.nobody
@pytest.mark.skipif(not ROOT, reason="needs root: runs vmainspect as nobody via setpriv")
def test_another_users_process_is_access_denied():
    r = run_cli("wss", os.getpid(), user="nobody")
    assert r.returncode == 4
    assert "permission denied" in one_line_error(r)


def test_record_wss_frames_carry_the_working_set(reader, tmp_path):
    from schema_check import validate_recording

    from vmainspect.recording.io import read_recording

    out = tmp_path / "wss.jsonl"
    r = run_cli(
        "record",
        reader.pid,
        "-o",
        out,
        "--wss",
        "--interval",
        "0.5",
        "--duration",
        "1.5",
        "--no-faults",
        "--lock-budget",
        "100",  # every frame reads the map: each covers its own interval
    )
    assert r.returncode == 0, r.stderr
    assert "clear_refs" in r.stderr
    rec = read_recording(str(out))
    assert validate_recording(str(out)) == len(rec) >= 3
    assert rec.header["working_set"] is True and rec.frame(0).wss_interval is None
    near = []
    for i in range(1, len(rec)):
        frame = rec.frame(i)
        assert frame.wss_interval is not None and frame.wss_interval > 0
        hot = frame.snapshot.vma_at(reader.report["hot"]).smaps["referenced"] // PAGE
        cold = frame.snapshot.vma_at(reader.report["cold"]).smaps["referenced"] // PAGE
        assert hot <= HOT * 1.10 and cold < N * 0.05, (i, hot, cold)  # never more than was read
        near.append(abs(hot - HOT) <= HOT * 0.10)
    assert sum(near) > len(near) / 2, near  # a starved reader may miss pages in one interval
