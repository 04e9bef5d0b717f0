"""Benchmark: `vmainspect cache` on trees of thousands of files, beside vmtouch and fincore.

    python3 benchmarks/bench_cache.py [--files 5000] [--tree /usr/lib] [--runs 7]

Builds a synthetic tree (``--files`` files of 1 to 64 pages in 100
directories, in a temporary folder on the disk, about half of them read into
the page cache), and also measures each ``--tree`` given (default /usr/lib
when it exists). On each tree it runs, interleaved (round 1 of every
command, then round 2, ...: a load spike on this shared machine hits them
alike) after one warm-up round:

- ``vmainspect cache -s TREE`` and ``vmainspect cache --json TREE`` (a new
  Python each time: start-up included, as a user runs it);
- ``vmtouch TREE`` (Debian's vmtouch: mmap + mincore per file, recursive);
- ``find TREE -type f -print0 | xargs -0 fincore`` (util-linux 2.38's
  fincore does not walk directories);

and ``cachetree.measure`` in this process (no start-up: the walk alone).
Per command: median wall time, spread (min-max), ratio of the medians to
vmtouch, median CPU time. It then checks that vmainspect and vmtouch count
the same resident pages (run as root: as another user vmtouch's mincore
reports every page of a file it may not write as resident, see
docs/kernel-notes.md). Removes the synthetic tree; writes nothing into the
repository.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from bench_snapshot import bytecode_env, interleaved  # noqa: E402

from vmainspect.snapshot import cachetree  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def build_tree(root: str, files: int) -> None:
    """``files`` files of 1..64 pages in 100 folders; every other file read (cached), the rest evicted."""
    for i in range(files):
        folder = os.path.join(root, f"d{i % 100:03d}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"f{i:06d}.dat")
        with open(path, "wb") as f:
            f.write(os.urandom(64) * (PAGE // 64) * (1 + i % 64))
            f.flush()
            os.fsync(f.fileno())
            if i % 2:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def vmtouch_resident(tree: str) -> int | None:
    exe = shutil.which("vmtouch")
    if exe is None:
        return None
    out = subprocess.run([exe, tree], capture_output=True, text=True).stdout
    m = re.search(r"Resident Pages:\s*(\d+)/", out)
    return int(m.group(1)) if m else None


def in_process(tree: str, runs: int) -> list[float]:
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        cachetree.measure([tree])
        if i:
            times.append(time.perf_counter() - t0)
    return times


def bench(tree: str, runs: int, env: dict[str, str]) -> None:
    report, _ = cachetree.measure([tree])
    t = report.total
    print(f"\n{tree}: {t.files:,} files, {t.pages:,} pages, {t.cached:,} cached")
    vmi = [sys.executable, "-m", "vmainspect", "cache"]
    cases = [
        ("vmainspect cache -s", [*vmi, "-s", tree]),
        ("vmainspect cache --json", [*vmi, "--json", tree]),
    ]
    if shutil.which("vmtouch"):
        cases.append(("vmtouch", ["vmtouch", tree]))
    if shutil.which("fincore"):
        cmd = f"find {shlex.quote(tree)} -type f -print0 | xargs -0 fincore -b"
        cases.append(("find | xargs fincore", ["sh", "-c", cmd]))
    res = interleaved(cases, runs, env)
    ref = statistics.median(res["vmtouch"]["wall"]) if "vmtouch" in res else None  # type: ignore[arg-type]
    print(f"{'command':<26}{'median':>9}{'spread':>17}{'vs vmtouch':>12}{'CPU':>9}")
    rows = [(name, r["wall"], r["cpu"]) for name, r in res.items()]
    rows.append(("measure() in-process", in_process(tree, runs), None))
    for name, wall, cpu in rows:
        med = statistics.median(wall)  # type: ignore[arg-type]
        spread = f"{min(wall):.3f}-{max(wall):.3f}s"  # type: ignore[type-var]
        ratio = f"{med / ref:.2f}x" if ref else "-"
        cpu_s = f"{statistics.median(cpu):.3f}s" if cpu else "-"  # type: ignore[arg-type]
        print(f"{name:<26}{med:>8.3f}s{spread:>17}{ratio:>12}{cpu_s:>9}")
    resident = vmtouch_resident(tree)
    if resident is not None:
        again, _ = cachetree.measure([tree])  # a moment later: the page cache may have moved meanwhile
        cached = again.total.cached or 0
        print(
            f"resident pages, read one after the other: vmtouch {resident:,}, vmainspect {cached:,} "
            f"(difference {cached - resident:+,})"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000, help="files in the synthetic tree (default 5000)")
    ap.add_argument("--tree", action="append", help="also measure this tree (default: /usr/lib)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    trees = args.tree if args.tree is not None else [t for t in ("/usr/lib",) if os.path.isdir(t)]
    cache_dir = tempfile.mkdtemp(prefix="vmainspect-bench-pyc-")
    root = tempfile.mkdtemp(prefix="vmainspect-bench-cache-", dir="/var/tmp")
    try:
        env = bytecode_env(cache_dir)
        env["PYTHONPATH"] = os.path.dirname(HERE)
        print(f"building {args.files:,} files in {root} ...")
        build_tree(root, args.files)
        for tree in [root, *trees]:
            bench(tree, args.runs, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
