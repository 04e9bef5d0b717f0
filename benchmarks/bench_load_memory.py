"""Peak memory of loading a snapshot and a recording, against their file size.

Writes two files from tests/fixtures/python.json (plain JSON work, so the
files do not depend on the vmainspect being measured):

- a snapshot of --vmas VMAs (default 20,000) with page runs (two per VMA);
- a recording of --frames frames (default 60) of --rec-vmas VMAs (default
  5,000) with page runs, where each frame changes the runs of 2% of the VMAs
  and the process's counters, written as ``vmainspect record`` writes it (a
  whole first snapshot, then patches).

Then, each in a fresh interpreter (``--root`` chooses the vmainspect to
import, so a checkout of another commit can be measured the same way), it
reports the peak RSS growth (VmHWM after minus VmRSS before) of
  snapshot.io.load(FILE)
  recording read_recording(FILE) + frame -1 (what `diff REC#1 REC#-1` needs)
  recording read_recording(FILE) + every frame in turn (a replay to the end)
Best (lowest) of --repeat runs.

    python3 benchmarks/bench_load_memory.py [--root DIR] [--vmas N] [--frames N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "python.json")
PAGES = 52


def _snapshot_doc(n: int) -> dict:
    with open(FIXTURE) as f:
        src = json.load(f)
    ps = src["host"]["page_size"]
    protos = [v for v in src["vmas"] if v["end"] < 1 << 47]
    base = 0x7F0000000000
    vmas = []
    for i in range(n):
        v = dict(protos[i % len(protos)])
        size = PAGES * ps
        v["start"], v["end"] = base, base + size
        base += size + ps
        w = 13 + i % 7
        v["pages"] = {
            "counts": {"present": w, "swapped": 0, "file": 0, "anon": w, "exclusive": w}
            | {"dirty": w, "zero": 0, "thp": 0, "ksm": 0, "shared": 0},
            "runs": [[0, w, "anon"], [w, PAGES - w, "absent"]],
            "shared_runs": [],
        }
        vmas.append(v)
    src["vmas"] = vmas
    src["capabilities"]["pages"] = True
    return src


def write_files(d: str, nvmas: int, rec_vmas: int, frames: int) -> tuple[str, str]:
    sys.path.insert(0, os.path.join(HERE, ".."))
    from vmainspect.recording.patch import make_patch

    snap = os.path.join(d, "snapshot.json")
    with open(snap, "w") as f:
        json.dump(_snapshot_doc(nvmas), f, separators=(",", ":"))
    rec = os.path.join(d, "recording.jsonl")
    doc = _snapshot_doc(rec_vmas)
    rnd = random.Random(1)
    enc = json.JSONEncoder(separators=(",", ":"))
    with open(rec, "w") as f:
        header = {
            "schema": "vmainspect/recording@1",
            "started_at": "2026-12-04T10:00:00.000000Z",
            "interval_s": 0.5,
            "pid": doc["process"]["pid"],
            "name": doc["process"]["name"],
            "cmdline": doc["process"]["cmdline"],
            "create_time": doc["process"]["create_time"],
            "host": doc["host"],
            "pages": True,
            "faults": False,
            "vmainspect": "bench",
        }
        f.write(enc.encode(header) + "\n")
        f.write(enc.encode({"t": 0.0, "snapshot": doc, "faults": None}) + "\n")
        prev = doc
        for k in range(1, frames):
            doc = copy.deepcopy(prev)
            doc["process"]["minor_faults"] += 1000
            for i in rnd.sample(range(rec_vmas), rec_vmas // 50):
                p = doc["vmas"][i]["pages"]
                w = rnd.randrange(1, PAGES - 1)
                p["runs"] = [[0, w, "anon"], [w, PAGES - w, "absent"]]
                p["counts"].update(present=w, anon=w, exclusive=w, dirty=w)
            f.write(enc.encode({"t": k * 0.5, "patch": make_patch(prev, doc), "faults": None}) + "\n")
            prev = doc
        f.write(enc.encode({"t": frames * 0.5, "note": "end", "end": "duration"}) + "\n")
    return snap, rec


MEASURE = r"""
import sys
sys.path.insert(0, sys.argv[1])
def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
from vmainspect.snapshot import io as snapshot_io
from vmainspect.recording import io as recording_io
import gc
gc.collect()
before = kb("VmRSS:")
what, path = sys.argv[2], sys.argv[3]
if what == "snapshot":
    x = snapshot_io.load(path)
elif what == "rec-last":
    r = recording_io.read_recording(path)
    x = r.frame(-1)
else:
    r = recording_io.read_recording(path)
    for i in range(len(r)):
        x = r.frame(i)
print(kb("VmHWM:") - before)
"""


def measure(root: str, what: str, path: str, repeat: int) -> int:
    out = []
    for _ in range(repeat):
        p = subprocess.run(
            [sys.executable, "-c", MEASURE, root, what, path], capture_output=True, text=True, check=True
        )
        out.append(int(p.stdout.split()[-1]))
    return min(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", default=os.path.join(HERE, ".."), help="directory holding the vmainspect package"
    )
    ap.add_argument("--vmas", type=int, default=20_000)
    ap.add_argument("--rec-vmas", type=int, default=5_000)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="write the files into this directory and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or tmp
        if args.keep:
            os.makedirs(d, exist_ok=True)
        snap, rec = write_files(d, args.vmas, args.rec_vmas, args.frames)
        root = os.path.abspath(args.root)
        print(f"vmainspect from {root}; python {sys.version.split()[0]}; best of {args.repeat}")
        print(f"{'load':<34}{'file MB':>9}{'peak MB':>9}{'x file':>8}")
        for label, what, path in (
            (f"snapshot, {args.vmas} VMAs", "snapshot", snap),
            (f"recording {args.frames}x{args.rec_vmas}, frame -1", "rec-last", rec),
            (f"recording {args.frames}x{args.rec_vmas}, all frames", "rec-all", rec),
        ):
            size = os.path.getsize(path) / 1e6
            peak = measure(root, what, path, args.repeat) / 1024
            print(f"{label:<34}{size:>9.1f}{peak:>9.1f}{peak / size:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
