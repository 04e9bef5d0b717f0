"""How big is a recording? `vmainspect record --pages` of a process with 1 GiB resident.

The target maps and touches 1 GiB of private anonymous memory plus a 256 MiB
region it fills sparsely; every tick it touches 256 random pages of the sparse
region and drops 64 random pages of the big one (MADV_DONTNEED), so its page
runs fragment a little more each tick (tens of thousands of runs by the end;
--touch and --drop change the churn).

It then records it with `vmainspect record PID --interval 0.5 --duration 60
--pages` (a subprocess, as a user would run it) and reports, side by side:

- the recording's size (budget: under 20 MB for 60 s at 2 Hz);
- the size of the same frames written as full snapshots, one per line (what
  recording without delta encoding would cost), and that gzip-compressed;
- the recorder's CPU time per frame, and the reader's load time.

    python3 benchmarks/bench_record.py [--duration 60] [--interval 0.5] [--resident-mib 1024]
                                       [--touch 256] [--drop 64]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGET = r"""
import ctypes, ctypes.util, mmap, os, random, sys, time
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
big_n = int(sys.argv[1]) * (1 << 20) // PAGE
sparse_n = 256 * (1 << 20) // PAGE
big = mmap.mmap(-1, big_n * PAGE, flags=mmap.MAP_PRIVATE)
sparse = mmap.mmap(-1, sparse_n * PAGE, flags=mmap.MAP_PRIVATE)
big_addr = ctypes.addressof(ctypes.c_char.from_buffer(big))
for i in range(big_n):
    big[i * PAGE] = 1
rnd = random.Random(1)
print("ready", flush=True)
interval = float(sys.argv[2])
touch, drop = int(sys.argv[3]), int(sys.argv[4])
while True:
    for _ in range(touch):
        sparse[rnd.randrange(sparse_n) * PAGE] = 1
    for _ in range(drop):
        libc.madvise(big_addr + rnd.randrange(big_n) * PAGE, PAGE, 4)   # MADV_DONTNEED
    time.sleep(interval)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--resident-mib", type=int, default=1024)
    ap.add_argument(
        "--touch", type=int, default=256, help="random sparse pages touched per tick (default 256)"
    )
    ap.add_argument(
        "--drop", type=int, default=64, help="random pages of the 1 GiB dropped per tick (default 64)"
    )
    ap.add_argument(
        "--user",
        default=None,
        help="run target and recorder as this user (e.g. 65534): no kpageflags, faster collection",
    )
    args = ap.parse_args()

    as_user = (
        ["setpriv", f"--reuid={args.user}", f"--regid={args.user}", "--clear-groups"] if args.user else []
    )
    target = subprocess.Popen(
        as_user
        + [
            sys.executable,
            "-c",
            TARGET,
            str(args.resident_mib),
            str(args.interval),
            str(args.touch),
            str(args.drop),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    out_dir = tempfile.mkdtemp(prefix="bench-record-")
    os.chmod(out_dir, 0o777)
    out = os.path.join(out_dir, "rec.jsonl")
    try:
        if target.stdout.readline().strip() != "ready":
            raise SystemExit("target failed")
        with open(f"/proc/{target.pid}/smaps_rollup") as f:
            rss_kb = next(int(line.split()[1]) for line in f if line.startswith("Rss:"))
        print(
            f"target pid {target.pid}: Rss {rss_kb / 1024:.0f} MiB; recording {args.duration:g} s "
            f"at {1 / args.interval:g} Hz with --pages as {args.user or os.getuid()} ...",
            flush=True,
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        rc = subprocess.call(
            as_user
            + [
                sys.executable,
                "-m",
                "vmainspect",
                "record",
                str(target.pid),
                "-o",
                out,
                "--interval",
                str(args.interval),
                "--duration",
                str(args.duration),
                "--pages",
            ]
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if rc != 0:
            raise SystemExit(f"record exited {rc}")
    finally:
        target.kill()
        target.wait()

    from vmainspect.recording.io import read_recording
    from vmainspect.snapshot.io import dumps

    size = os.path.getsize(out)
    with open(out, "rb") as f:
        lines = f.readlines()
    frames = [json.loads(x) for x in lines[1:] if b'"note"' not in x[:60]]
    t1 = time.perf_counter()
    rec = read_recording(out)
    load_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    full = [dumps(rec.snapshot(i)) + "\n" for i in range(len(rec))]
    rebuild_s = (time.perf_counter() - t2) / len(rec)
    full_bytes = sum(len(x.encode()) for x in full)
    full_gz = len(gzip.compress("".join(full).encode(), 6))
    last = rec.snapshot(-1)
    runs = sum(len(v.pages.runs) for v in last.vmas if v.pages)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    patch_sizes = [len(x) for x in lines[2:] if b'"patch"' in x[:60]]

    mb = 1e6
    print(
        f"frames: {len(rec)} over {rec.duration:.1f} s; page runs in the last frame: {runs:,}; "
        f"VMAs: {len(last.vmas)}"
    )
    print(f"{'':34} {'bytes':>14} {'MB':>8}")
    print(
        f"{'vmainspect record (delta JSONL)':34} {size:>14,} {size / mb:>8.2f}   budget 20 MB: "
        f"{'OK' if size < 20 * mb else 'OVER'}"
    )
    first = next(x for x in lines[1:] if b'"snapshot"' in x[:40])
    print(f"{'  first frame (full snapshot)':34} {len(first):>14,} {len(first) / mb:>8.2f}")
    if patch_sizes:
        print(
            f"{'  later frames (patches), mean':34} {sum(patch_sizes) // len(patch_sizes):>14,} "
            f"{sum(patch_sizes) / len(patch_sizes) / mb:>8.3f}   max {max(patch_sizes):,}"
        )
    print(
        f"{'full snapshot per frame (JSONL)':34} {full_bytes:>14,} {full_bytes / mb:>8.2f}   "
        f"{full_bytes / size:.1f}x the recording"
    )
    print(f"{'  the same, gzip -6':34} {full_gz:>14,} {full_gz / mb:>8.2f}")
    print(
        f"recorder: {wall:.1f} s wall, {cpu:.2f} s CPU ({cpu / len(frames) * 1000:.0f} ms per frame: "
        f"collect with --pages + encode + write)"
    )
    print(f"reader: load {load_s * 1000:.0f} ms; rebuild one frame as a Snapshot {rebuild_s * 1000:.1f} ms")
    os.unlink(out)
    os.rmdir(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
