"""Benchmark: `diff` of two runs of a program under ASLR, where every VMA moved.

    python3 benchmarks/bench_diff.py [--vmas 20000] [--runs 5] [--reference-vmas 2000,5000]

Spawns benchmarks/target_many_vmas.py twice (two runs: ASLR puts its region,
split into --vmas VMAs, at two different addresses), takes a snapshot of each
(`collect`, no pages), kills them, and times `diff_snapshots(a, b)` best of
--runs (with spread) at --vmas. Beside it, in the same run and on the same
snapshots cut to --reference-vmas VMAs, it times the previous algorithm (for
every added or removed VMA a linear scan of the other side, O(n^2); 131 s at
20,000 VMAs when it was found) and the current one, so the growth of each is
visible. Checks that both give the same `overlaps` for every change. Last,
the command itself (`vmainspect diff run1.json run2.json`, text and --json:
loading, diffing, printing) on the two snapshots saved to a temporary folder.
Writes nothing into the repository.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_snapshot import kill, machine, spawn_target  # noqa: E402

from vmainspect.model import Snapshot, Vma, replace  # noqa: E402
from vmainspect.snapshot import diff as diff_mod  # noqa: E402
from vmainspect.snapshot import io as snapshot_io  # noqa: E402
from vmainspect.snapshot.collect import collect  # noqa: E402


def quadratic_overlapping(vmas: tuple[Vma, ...], v: Vma) -> Vma | None:
    """The previous search: a scan from the first VMA for every query."""
    best, most = None, 0
    for w in vmas:
        if w.end <= v.start:
            continue
        if w.start >= v.end:
            break
        n = min(v.end, w.end) - max(v.start, w.start)
        if n > most and w.inode == v.inode:
            best, most = w, n
    return best


class QuadraticIndex:
    def __init__(self, vmas: tuple[Vma, ...]) -> None:
        self.vmas = vmas

    def overlapping(self, v: Vma) -> Vma | None:
        return quadratic_overlapping(self.vmas, v)


def timed(a: Snapshot, b: Snapshot, runs: int, reference: bool = False) -> tuple[list[float], object]:
    saved = diff_mod._ByAddress
    if reference:
        diff_mod._ByAddress = QuadraticIndex  # type: ignore[assignment,misc]
    try:
        times, d = [], None
        for _ in range(runs):
            t = time.perf_counter()
            d = diff_mod.diff_snapshots(a, b)
            times.append(time.perf_counter() - t)
        return times, d
    finally:
        diff_mod._ByAddress = saved  # type: ignore[misc]


def cut(s: Snapshot, n: int) -> Snapshot:
    """The snapshot with only its first ``n`` VMAs of the big region (the rest dropped)."""
    big = sorted(s.vmas, key=lambda v: v.start)
    return replace(s, vmas=tuple(big[:n]))


def overlaps(d) -> list:
    return [(c.status, (c.a or c.b).start, c.overlaps.start if c.overlaps else None) for c in d.changes]


def fmt(times: list[float]) -> str:
    return f"best {min(times):8.3f} s  median {statistics.median(times):8.3f} s  spread {max(times) - min(times):.3f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reference-vmas", default="2000,5000", help="sizes at which the O(n^2) search is timed")
    a = ap.parse_args()
    snaps = []
    for _ in range(2):
        target, info = spawn_target(["--vmas", str(a.vmas), "--size", "1G", "--written", "0"])
        try:
            snaps.append(collect(info["pid"], pages=False))
        finally:
            kill(target)
    s1, s2 = snaps
    moved = len({(v.start, v.end) for v in s1.vmas} - {(v.start, v.end) for v in s2.vmas})
    print(machine())
    print(f"snapshots: {len(s1.vmas):,} and {len(s2.vmas):,} VMAs; {moved:,} of the first's moved")
    for n in [int(x) for x in a.reference_vmas.split(",") if x]:
        x, y = cut(s1, n), cut(s2, n)
        t_new, d_new = timed(x, y, a.runs)
        t_old, d_old = timed(x, y, max(1, min(a.runs, 2)), reference=True)
        assert overlaps(d_new) == overlaps(d_old), "the two searches disagree"
        print(f"{n:>7,} VMAs  previous O(n^2): {fmt(t_old)}")
        print(f"{n:>7,} VMAs  current:         {fmt(t_new)}")
    t, d = timed(s1, s2, a.runs)
    print(f"{len(s1.vmas):>7,} VMAs  current:         {fmt(t)}  ({len(d.changes):,} changes)")  # type: ignore[attr-defined]
    # the command as a user runs it: load both files, diff, print (text and JSON)
    with tempfile.TemporaryDirectory(prefix="vmainspect-bench-diff-") as tmp:
        files = [os.path.join(tmp, f"run{i}.json") for i in (1, 2)]
        for s, f in zip(snaps, files):
            snapshot_io.save(s, f)
        for extra in ([], ["--json"]):
            cmd = [sys.executable, "-m", "vmainspect", "diff", *files, *extra]
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
                times.append(time.perf_counter() - t0)
                assert r.returncode == 1, r.stderr  # 1: the snapshots differ
            print(f"`vmainspect diff{' --json' if extra else ''}` of the two files: {fmt(times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
