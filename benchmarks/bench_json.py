"""Benchmark the snapshot JSON serializer (the hot path of `vmainspect snapshot`).

Builds a realistic synthetic Snapshot of N VMAs (default 20,000) by replicating
the VMAs of a real snapshot (tests/fixtures/python.json, or a live
collect(os.getpid(), pages=True) with --live, or --from FILE) at fresh
addresses, with the real smaps fields (about 25 per VMA). The "pages" variant
gives every VMA 52 pages (1M pages in all), 25% of them written:

  - "block" runs: each VMA's written quarter is one block (2 runs per VMA),
    like the issue's benchmark target that writes a quarter of each mapping;
  - "stride" runs: every 4th page written (worst case: 500k runs).

It reports, side by side in one run, the wall time of
  dumps(s)             compact, what `vmainspect snapshot` writes to a pipe
  dumps(s, indent=1)   top level indented, one VMA per line (files)
  json                 json.dumps(to_dict(s)): the json module's C encoder over dicts
  naive                json.dumps(msgspec.to_builtins(s), indent=1): the obvious way (--naive)
  loads(text)          parse + validate + rebuild the model
  json.loads           json.loads(text) alone (GC off, as loads runs): the floor for loads
With --target it also times real snapshots (collect(), with and without pages)
of benchmarks/target_many_vmas.py, the issue's 20,000-VMA 4 GiB target, plain
and --diverse. Best of --repeat runs.
Usage: python3 benchmarks/bench_json.py [--vmas N] [--repeat R] [--target] [--naive]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import msgspec

from vmainspect.model import PageCounts, PageInfo, PageRun, Snapshot, Vma, replace
from vmainspect.snapshot import io as snapshot_io

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "python.json")
PAGES_PER_VMA = 52  # 20,000 x 52 = 1.04M pages (about 4 GiB)


def source_snapshot(args) -> Snapshot:
    if args.from_file:
        return snapshot_io.load(args.from_file)
    if args.live or not os.path.exists(FIXTURE):
        from vmainspect.snapshot.collect import collect

        return collect(os.getpid(), pages=True)
    return snapshot_io.load(FIXTURE)


def _pages(npages: int, stride: bool) -> PageInfo:
    written = npages // 4
    if stride:
        runs = []
        for i in range(0, npages, 4):
            runs.append(PageRun(i, 1, "anon"))
            if i + 1 < npages:
                runs.append(PageRun(i + 1, min(3, npages - i - 1), "absent"))
    else:
        runs = [PageRun(0, written, "anon"), PageRun(written, npages - written, "absent")]
    counts = PageCounts(
        present=written,
        swapped=0,
        file=0,
        anon=written,
        exclusive=written,
        dirty=written,
        zero=0,
        thp=0,
        ksm=0,
        shared=0,
    )
    return PageInfo(counts=counts, runs=tuple(runs), shared_runs=())


def synthetic(src: Snapshot, n: int, pages: str | None) -> Snapshot:
    """``n`` VMAs copied round-robin from ``src`` (real perms, paths, flags, smaps)."""
    ps = src.host.page_size
    base = 0x7F0000000000
    protos = [v for v in src.vmas if v.end < 1 << 47] or list(src.vmas)
    vmas = []
    for i in range(n):
        v = protos[i % len(protos)]
        size = PAGES_PER_VMA * ps if pages else v.size
        start = base
        base += size + ps  # a hole between VMAs, as the kernel would not merge them
        vmas.append(
            Vma(
                start=start,
                end=start + size,
                perms=v.perms,
                offset=v.offset,
                dev=v.dev,
                inode=v.inode,
                path=v.path,
                kind=v.kind,
                flags=v.flags,
                smaps=dict(v.smaps),
                # fresh objects per VMA, as a collector makes them (shared ones would be cache-hot)
                pages=_pages(PAGES_PER_VMA, pages == "stride") if pages else None,
            )
        )
    caps = replace(src.capabilities, pages=bool(pages))
    return replace(src, vmas=tuple(vmas), capabilities=caps)


def target_snapshots(diverse: bool) -> list[tuple[str, Snapshot]]:
    """Real snapshots of benchmarks/target_many_vmas.py (20,000 VMAs, 4 GiB,
    25% of each chunk written), the issue's benchmark target."""
    import signal
    import subprocess

    from vmainspect.snapshot.collect import collect

    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "target_many_vmas.py")] + (["--diverse"] if diverse else [])
    target = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(target.stdout.readline())
        while Path(f"/proc/{info['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            time.sleep(0.01)
        tag = "target" + (" div" if diverse else "")
        return [
            (f"{tag}, no pages", collect(info["pid"])),
            (f"{tag}, pages", collect(info["pid"], pages=True)),
        ]
    finally:
        os.kill(target.pid, signal.SIGKILL)
        target.wait()


def best(fn, repeat: int) -> tuple[float, object]:
    """Lowest wall time of ``repeat`` runs (the machine may be shared: the
    lowest is the one least disturbed), and the last result."""
    t_best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best, out


def _json_loads_no_gc(text: str) -> object:
    gc.disable()
    try:
        return json.loads(text)
    finally:
        gc.enable()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmas", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--from", dest="from_file", help="a snapshot JSON to replicate")
    ap.add_argument("--live", action="store_true", help="replicate a live collect(os.getpid())")
    ap.add_argument("--naive", action="store_true", help="also time msgspec.to_builtins + json.dumps (slow)")
    ap.add_argument(
        "--target",
        action="store_true",
        help="also time real snapshots of benchmarks/target_many_vmas.py (plain and --diverse)",
    )
    args = ap.parse_args()
    src = source_snapshot(args)
    nfields = round(sum(len(v.smaps) for v in src.vmas) / max(1, len(src.vmas)), 1)
    print(
        f"source: {len(src.vmas)} VMAs, {nfields} smaps fields per VMA; replicated to {args.vmas} VMAs; "
        f"best of {args.repeat}; python {sys.version.split()[0]}"
    )
    print(
        f"{'variant':<20}{'runs':>9}{'MB':>7}{'dumps':>9}{'indent=1':>10}{'json':>9}{'naive':>9}{'loads':>9}{'json.loads':>11}"
    )
    cases = [
        ({None: "no pages", "block": "pages, block", "stride": "pages, stride"}[p], p)
        for p in (None, "block", "stride")
    ]
    if args.target:
        cases += target_snapshots(False) + target_snapshots(True)
    for label, pages in cases:
        s = pages if isinstance(pages, Snapshot) else synthetic(src, args.vmas, pages)
        nruns = sum(len(v.pages.runs) for v in s.vmas if v.pages)
        t_compact, text = best(lambda s=s: snapshot_io.dumps(s), args.repeat)
        t_indent, _ = best(lambda s=s: snapshot_io.dumps(s, indent=1), args.repeat)
        t_json, _ = best(lambda s=s: json.dumps(snapshot_io.to_dict(s), separators=(",", ":")), args.repeat)
        if args.naive:
            t_naive, _ = best(lambda s=s: json.dumps(msgspec.to_builtins(s), indent=1), min(args.repeat, 2))
        else:
            t_naive = float("nan")
        t_loads, back = best(lambda text=text: snapshot_io.loads(text), min(args.repeat, 3))
        assert back == s, "round trip failed"
        del back
        t_jl, _ = best(lambda text=text: _json_loads_no_gc(text), min(args.repeat, 3))
        print(
            f"{label:<20}{nruns:>9}{len(text) / 1e6:>7.1f}{t_compact:>8.3f}s{t_indent:>9.3f}s"
            f"{t_json:>8.3f}s{t_naive:>8.3f}s{t_loads:>8.3f}s{t_jl:>10.3f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
