"""Benchmark: `vmainspect snapshot` against `pmap -X` and `cat /proc/PID/smaps`.

    python3 benchmarks/bench_snapshot.py [--vmas 20000] [--size 4G] [--written 0.25] [--runs 5] [--diverse]

Spawns benchmarks/target_many_vmas.py (default: 20,000 VMAs, 4 GiB mapped,
25% of the pages written), waits until it has stopped itself, then times in
one run, best of --runs, the whole-process wall time (start-up and output
included, stdout to /dev/null) of each command below, and prints a table with
the ratio to `pmap -X`; beside it the best CPU time (user + system of all
threads), which a busy machine disturbs less. Writes nothing into the
repository; kills the target.
--diverse gives every VMA a different size and written count (see
target_many_vmas.py), so the smaps blocks do not repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_stopped(pid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t"):
                return
        time.sleep(0.01)
    raise TimeoutError(f"target {pid} did not stop")


def bytecode_env(cache_dir: str) -> dict:
    """The environment for the timed Python commands: bytecode caching ON, into
    ``cache_dir`` (not the repository). With PYTHONDONTWRITEBYTECODE set (as in
    some sandboxes) every run would recompile every module it imports, which an
    installed vmainspect never does."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def best_of(cmd: list[str], runs: int, env: dict | None = None) -> tuple[float, float, int]:
    """Best wall time and best CPU time (user + system, all threads) of ``runs``
    runs (after one warm-up run), and the last exit code."""
    best = best_cpu = float("inf")
    rc = 0
    for i in range(runs + 1):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env).returncode
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if i:  # run 0 warms caches (page cache for the Python modules, dentries)
            best = min(best, dt)
            best_cpu = min(best_cpu, cpu)
    return best, best_cpu, rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--written", type=float, default=0.25)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--diverse", action="store_true", help="vary VMA sizes and written pages")
    ap.add_argument(
        "--priority",
        type=int,
        default=0,
        metavar="N",
        help="raise the scheduling priority of every timed command by N (root; "
        "keeps a busy shared machine from skewing the runs)",
    )
    a = ap.parse_args()
    if a.priority:
        os.nice(-a.priority)  # inherited by every timed command alike

    target = subprocess.Popen(
        [
            sys.executable,
            os.path.join(HERE, "target_many_vmas.py"),
            "--vmas",
            str(a.vmas),
            "--size",
            a.size,
            "--written",
            str(a.written),
        ]
        + (["--diverse"] if a.diverse else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(target.stdout.readline())
        pid = info["pid"]
        wait_stopped(pid)
        with open(f"/proc/{pid}/maps", "rb") as f:
            nvmas = f.read().count(b"\n")
        py = sys.executable
        # The console script beside this Python (what `vmainspect` runs, without a
        # pyenv shim in front); `python -m vmainspect` if it is not installed.
        script = os.path.join(os.path.dirname(py), "vmainspect")
        vmi = [script] if os.access(script, os.X_OK) else [py, "-m", "vmainspect"]
        try:
            import vmainspect.procfs.pages  # noqa: F401

            have_pages = True
        except ImportError:
            have_pages = False
        cases = [
            ("cat /proc/PID/smaps", ["cat", f"/proc/{pid}/smaps"]),
            ("pmap -X PID", ["pmap", "-X", str(pid)]),
            ("vmainspect snapshot PID", vmi + ["snapshot", str(pid)]),
        ]
        if have_pages:
            cases.append(("vmainspect snapshot PID --pages", vmi + ["snapshot", str(pid), "--pages"]))
        cases += [
            ("vmainspect maps PID", vmi + ["maps", str(pid)]),
            (
                "psutil memory_maps(grouped=False)",
                [py, "-c", f"import psutil; psutil.Process({pid}).memory_maps(grouped=False)"],
            ),
            ("python3 -c pass (start-up only)", [py, "-c", "pass"]),
        ]
        if shutil.which("pmap") is None:
            print("pmap not installed: the ratios need it", file=sys.stderr)
            return 1
        results = []
        load0 = os.getloadavg()[0]
        cache_dir = tempfile.mkdtemp(prefix="vmainspect-bench-pycache-")
        try:
            env = bytecode_env(cache_dir)
            for name, cmd in cases:
                t, cpu, rc = best_of(cmd, a.runs, env)
                results.append((name, t, cpu, rc))
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
        pmap_t, pmap_cpu = next((t, c) for name, t, c, _ in results if name.startswith("pmap"))
        print(
            f"target: {nvmas} VMAs, {info['size'] / (1 << 30):.2f} GiB mapped, "
            f"{info['written_pages']} pages written ({a.written:.0%}"
            f"{', diverse VMAs' if a.diverse else ', uniform VMAs'}); "
            f"best of {a.runs} runs; kernel {os.uname().release}, {os.cpu_count()} CPUs, "
            f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}"
            + (f", priority +{a.priority}" if a.priority else "")
        )
        print(f"{'command':<36} {'wall s':>7} {'vs pmap':>8} {'CPU s':>7} {'vs pmap':>8}")
        for name, t, cpu, rc in results:
            flag = "" if rc == 0 else f"  (exit {rc})"
            print(f"{name:<36} {t:7.3f} {t / pmap_t:7.2f}x {cpu:7.3f} {cpu / pmap_cpu:7.2f}x{flag}")
    finally:
        try:
            os.kill(target.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        target.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
