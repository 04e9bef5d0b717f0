#!/usr/bin/env python3
"""Page-fault sampling: vmainspect's sampler beside `perf record -e page-faults -c 1 -d`.

The target (a tiny C program compiled here with gcc) faults continuously: a 64
MiB private anonymous mapping (MADV_NOHUGEPAGE, so one fault per 4 KiB page)
filled with memset, emptied with MADV_DONTNEED, again and again.

In one run, on the same target, alternating:
- baseline: the target's fault rate with nobody watching (/proc/PID/stat minflt);
- vmainspect: `vmainspect faults PID --duration S --json` (period 1): samples/s,
  lost, its CPU (user+sys of the process, from wait4 rusage) and its samples
  against the kernel's minflt delta over the same window;
- perf: `perf record -e page-faults -c 1 -d -p PID -- sleep S`: samples
  (perf report --stats), lost, CPU of perf record.

Usage: python3 benchmarks/bench_faults.py [--seconds 5] [--rounds 3] [--json]
Needs root (or perf_event_paranoid <= 1 for perf's kernel samples), gcc and perf.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_C = r"""
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
int main(void) {
    size_t n = 64UL << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    madvise(p, n, MADV_NOHUGEPAGE);
    printf("%lx\n", (unsigned long)p);
    fflush(stdout);
    for (;;) {
        memset(p, 1, n);
        madvise(p, n, MADV_DONTNEED);
    }
}
"""


def minflt(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[7])


def target_cpu(pid: int) -> float:
    """The target's own CPU seconds (utime + stime): its cost per fault does not depend on
    how much of a loaded machine it gets, unlike its fault rate."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        rest = f.read().rsplit(b")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class TargetCost:
    def __init__(self, pid: int) -> None:
        self.pid, self.f0, self.c0 = pid, minflt(pid), target_cpu(pid)

    def done(self, into: dict) -> dict:
        df, dc = minflt(self.pid) - self.f0, target_cpu(self.pid) - self.c0
        into["target_cpu_us_per_fault"] = 1e6 * dc / max(1, df)
        return into


# the CLI as installed: with its bytecode cached (pip compiles it at install; this
# environment may set PYTHONDONTWRITEBYTECODE, which would add ~70 ms of compiling per run)
CLI_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run cmd; return (result, wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=CLI_ENV)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r, wall, cpu


def baseline(pid: int, seconds: float) -> dict:
    a, t0 = minflt(pid), time.monotonic()
    time.sleep(seconds)
    b, t1 = minflt(pid), time.monotonic()
    return {"faults_per_s": (b - a) / (t1 - t0)}


def vmainspect(pid: int, seconds: float) -> dict:
    r, wall, cpu = run_measured(
        [sys.executable, "-m", "vmainspect", "faults", str(pid), "--duration", str(seconds), "--json"]
    )
    if r.returncode != 0:
        raise SystemExit(f"vmainspect faults failed: {r.stderr.strip()}")
    d = json.loads(r.stdout)
    kernel = d["proc_counters"]["minor"] + d["proc_counters"]["major"]
    return {
        "window_s": d["duration_s"],
        "samples": d["samples"],
        "lost": d["lost"],
        "samples_per_s": d["samples"] / d["duration_s"],
        "lost_pct": 100.0 * d["lost"] / max(1, d["samples"] + d["lost"]),
        "kernel_faults": kernel,
        "samples_vs_kernel_pct": 100.0 * d["samples"] / max(1, kernel),
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_pct_of_core": 100.0 * cpu / wall,
        "top_vma_share_pct": 100.0
        * (d["by_vma"][0]["minor"] + d["by_vma"][0]["major"])
        / max(1, d["samples"]),
        "top_symbol": d["by_symbol"][0]["symbol"] if d["by_symbol"] else None,
    }


def in_process(pid: int, seconds: float, per_thread: bool = False) -> dict:
    """The sampler as the TUI runs it: in this process, a tick every second.

    ``per_thread``: with one ring per thread (the fallback) instead of per-CPU inherited events."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from vmainspect.faults import rings
    from vmainspect.faults.sampler import FaultSampler
    from vmainspect.snapshot.collect import collect

    saved = rings.MAX_EVENTS
    rings.MAX_EVENTS = 0 if per_thread else saved
    try:
        return _in_process(pid, seconds, FaultSampler, collect)
    finally:
        rings.MAX_EVENTS = saved


def _figures(
    window: float, samples: int, lost: int, in_window: int, kernel: int, cpu: float, wall: float
) -> dict:
    """The figures every sampler's run reports: ``in_window`` samples fell in the
    ``window`` seconds in which the kernel counted ``kernel`` faults."""
    return {
        "window_s": window,
        "samples": samples,
        "lost": lost,
        "samples_per_s": in_window / window,
        "lost_pct": 100.0 * lost / max(1, samples + lost),
        "kernel_faults": kernel,
        "samples_vs_kernel_pct": 100.0 * in_window / max(1, kernel),
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_pct_of_core": 100.0 * cpu / wall,
    }


def _in_process(pid: int, seconds: float, FaultSampler, collect) -> dict:

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    s = FaultSampler(pid)
    s.start()
    c0 = s.start_counters
    snap = collect(pid)
    samples = lost = 0
    try:
        while time.monotonic() - t0 < seconds:
            time.sleep(max(0.0, min(1.0, seconds - (time.monotonic() - t0))))
            if time.monotonic() - t0 >= seconds:
                break
            tk = s.tick(snap).faults
            samples += tk.minor + tk.major
            lost += tk.lost
        c1 = s.proc_counters()
        s.stop()
        window = time.monotonic() - t0
        tk = s.tick(snap).faults
        samples += tk.minor + tk.major
        lost += tk.lost
    finally:
        s.close()
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    kernel = (c1[0] - c0[0]) + (c1[1] - c0[1])
    return _figures(window, samples, lost, samples, kernel, cpu, wall)


def perf_record(pid: int, seconds: float, tmp: str) -> dict:
    """perf record; compared with the kernel over the span where it was sampling.

    perf takes a while to start sampling on a busy machine, so /proc's counters are
    read every 10 ms meanwhile, and the comparison uses the readings inside the span
    of perf's own samples (perf script timestamps, CLOCK_MONOTONIC)."""
    out = os.path.join(tmp, "perf.data")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            "perf",
            "record",
            "-q",
            "-k",
            "CLOCK_MONOTONIC",
            "-e",
            "page-faults",
            "-c",
            "1",
            "-d",
            "-p",
            str(pid),
            "-o",
            out,
            "--",
            "sleep",
            str(seconds + 1),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    readings = []
    while proc.poll() is None:
        readings.append((time.monotonic_ns() / 1e9, minflt(pid), target_cpu(pid)))
        time.sleep(0.01)
    err = proc.stderr.read()
    proc.stderr.close()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"perf record failed: {err.strip()}")
    rep = subprocess.run(["perf", "report", "--stats", "-i", out], capture_output=True, text=True)

    def count(name: str) -> int:
        m = re.search(rf"^\s*{name} events:\s+(\d+)", rep.stdout, re.M)
        return int(m.group(1)) if m else 0

    samples, lost = count("SAMPLE"), count("LOST") + count("LOST_SAMPLES")
    script = subprocess.run(
        ["perf", "script", "-F", "time", "--ns", "-i", out], capture_output=True, text=True
    )
    ts = []
    for word in script.stdout.split():
        try:
            ts.append(float(word.rstrip(":")))
        except ValueError:
            continue
    ts.sort()
    inside = [r for r in readings if ts and ts[0] + 0.1 <= r[0] <= ts[-1] - 0.1]
    if len(inside) < 2:
        raise SystemExit("perf record sampled for too short a time to compare")
    (ta, fa, ca), (tb, fb, cb) = inside[0], inside[-1]
    lo, hi = bisect.bisect_left(ts, ta), bisect.bisect_left(ts, tb)
    in_window, kernel = hi - lo, fb - fa
    return {
        **_figures(tb - ta, samples, lost, in_window, kernel, cpu, wall),
        "window_target_cpu_us_per_fault": 1e6 * (cb - ca) / max(1, kernel),
        "sampling_started_after_s": ts[0] - (readings[0][0] if readings else ts[0]),
    }


def short_runs(pid: int, tmp: str, seconds: float = 0.05) -> dict:
    """CPU and samples of each tool sampling for a moment: its fixed cost (start-up, reading
    the map and the ELF files, writing the result), to tell it from the cost per sample."""
    r, _wall, cpu = run_measured(
        [sys.executable, "-m", "vmainspect", "faults", str(pid), "--duration", str(seconds), "--json"]
    )
    v = {"cpu_s": cpu, "samples": json.loads(r.stdout)["samples"] if r.returncode == 0 else 0}
    out = os.path.join(tmp, "perf-short.data")
    cmd = ["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-p", str(pid), "-o", out]
    r, _wall, cpu = run_measured([*cmd, "--", "sleep", str(seconds)])
    rep = subprocess.run(["perf", "report", "--stats", "-i", out], capture_output=True, text=True)
    m = re.search(r"^\s*SAMPLE events:\s+(\d+)", rep.stdout, re.M)
    return {"vmainspect": v, "perf": {"cpu_s": cpu, "samples": int(m.group(1)) if m else 0}}


def marginal(run: dict, fixed: dict) -> float:
    """Microseconds of CPU per sample beyond the tool's fixed cost."""
    return 1e6 * max(0.0, run["cpu_s"] - fixed["cpu_s"]) / max(1, run["samples"] - fixed["samples"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for tool in ("gcc", "perf"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool}")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "faulter.c"), os.path.join(tmp, "faulter")
        with open(src, "w") as f:
            f.write(TARGET_C)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        target = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
        try:
            target.stdout.readline()
            vmainspect(target.pid, 0.2)  # warm-up: bytecode written, page cache warm
            rounds = []
            pid = target.pid
            for i in range(args.rounds):
                r = {}
                for name, fn in (
                    ("baseline", lambda: baseline(pid, args.seconds)),
                    ("vmainspect", lambda: vmainspect(pid, args.seconds)),
                    ("in_process", lambda: in_process(pid, args.seconds)),
                    ("per_thread", lambda: in_process(pid, args.seconds, per_thread=True)),
                    ("perf", lambda: perf_record(pid, args.seconds, tmp)),
                ):
                    cost = TargetCost(pid)
                    r[name] = cost.done(fn())
                    if "window_target_cpu_us_per_fault" in r[name]:  # perf: its sampling window only
                        r[name]["target_cpu_us_per_fault"] = r[name]["window_target_cpu_us_per_fault"]
                r["fixed"] = short_runs(pid, tmp)
                rounds.append(r)
                print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            target.send_signal(signal.SIGKILL)
            target.wait()
    if args.json:
        print(json.dumps(rounds, indent=1))
        return 0
    print(
        f"target: 64 MiB anonymous MAP_PRIVATE, memset + MADV_DONTNEED loop; {args.seconds:g} s per "
        f"measurement, {args.rounds} rounds; {os.cpu_count()} CPUs, Linux {os.uname().release}"
    )
    print(
        f"{'':22} {'faults/s':>10} {'samples/s':>10} {'lost %':>7} {'samples/kernel':>15} "
        f"{'CPU % core':>11} {'CPU us/sample':>14} {'target us/fault':>16}"
    )
    labels = {
        "vmainspect": "vmainspect faults CLI",
        "in_process": "sampler in-process",
        "per_thread": "in-process, per-thread",
        "perf": "perf record",
    }
    for name in ("baseline", "vmainspect", "in_process", "per_thread", "perf"):
        rows = [r[name] for r in rounds]
        med = lambda k, rows=rows: statistics.median(x[k] for x in rows)  # noqa: E731
        if name == "baseline":
            print(
                f"{'no sampler':22} {med('faults_per_s'):>10,.0f} {'':>10} {'':>7} {'':>15} {'':>11} {'':>14} "
                f"{med('target_cpu_us_per_fault'):>16.2f}"
            )
            continue
        per = statistics.median(1e6 * x["cpu_s"] / max(1, x["samples"]) for x in rows)
        print(
            f"{labels[name]:22} {med('kernel_faults') / med('window_s'):>10,.0f} {med('samples_per_s'):>10,.0f} "
            f"{med('lost_pct'):>7.3f} {med('samples_vs_kernel_pct'):>14.2f}% {med('cpu_pct_of_core'):>10.1f}% "
            f"{per:>14.2f} {med('target_cpu_us_per_fault'):>16.2f}"
        )
    print(
        "(medians; 'target us/fault': the target's own CPU per fault, i.e. the in-kernel cost of"
        " sampling, robust on a loaded machine; CPU includes start-up: Python + imports for the CLI, perf's own for perf record;"
        " perf is compared over the middle of its run (perf script timestamps vs /proc);"
        " perf records PERF_COUNT_SW_PAGE_FAULTS, vmainspect the _MIN and _MAJ events)"
    )
    print()
    print("CPU per sample (user+sys of the sampler / samples), best and worst of the rounds:")
    best = {}
    for name in ("vmainspect", "in_process", "per_thread", "perf"):
        per = sorted(1e6 * r[name]["cpu_s"] / max(1, r[name]["samples"]) for r in rounds)
        best[name] = per[0]
        print(
            f"  {labels[name]:22} best {per[0]:.3f} us, worst {per[-1]:.3f} us, median {statistics.median(per):.3f} us"
        )
    print(
        f"  ratio to perf record (best of {args.rounds}): CLI {best['vmainspect'] / best['perf']:.2f}x, "
        f"in-process {best['in_process'] / best['perf']:.2f}x"
    )
    fixed_v = [r["fixed"]["vmainspect"]["cpu_s"] for r in rounds]
    fixed_p = [r["fixed"]["perf"]["cpu_s"] for r in rounds]
    print(
        f"fixed cost (a {0.05:g} s run: start-up, map, ELF files, output), CPU s: "
        f"vmainspect CLI {min(fixed_v):.3f}-{max(fixed_v):.3f}, perf record {min(fixed_p):.3f}-{max(fixed_p):.3f}"
    )
    mv = sorted(marginal(r["vmainspect"], r["fixed"]["vmainspect"]) for r in rounds)
    mp = sorted(marginal(r["perf"], r["fixed"]["perf"]) for r in rounds)
    print(
        f"CPU per sample beyond the fixed cost: vmainspect CLI best {mv[0]:.3f} us (worst {mv[-1]:.3f}), "
        f"perf record best {mp[0]:.3f} us (worst {mp[-1]:.3f}); ratio {mv[0] / max(1e-9, mp[0]):.2f}x"
    )
    v = [r["vmainspect"] for r in rounds]
    print(
        f"vmainspect per round: samples {[x['samples'] for x in v]}, lost {[x['lost'] for x in v]}, "
        f"kernel {[x['kernel_faults'] for x in v]}, CPU s {[round(x['cpu_s'], 2) for x in v]}, "
        f"top VMA share {[round(x['top_vma_share_pct'], 2) for x in v]}%, top symbol {v[0]['top_symbol']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
