"""Benchmark: `vmainspect snapshot` (with and without --pages) against `pmap -X` and `cat smaps`.

    python3 benchmarks/bench_snapshot.py [--pattern both|contiguous|fragmented] [--vmas 20000]
                                         [--size 4G] [--written 0.25] [--runs 7] [--diverse]

Spawns benchmarks/target_many_vmas.py (default: 20,000 VMAs, 4 GiB mapped,
25% of the pages written) once per pattern: ``contiguous`` writes the first
quarter of every VMA, ``fragmented`` every 4th page (a fragmented heap: about
500,000 page runs). It waits until the target has stopped itself, then runs
every command below --runs times, interleaved (run 1 of each command, then
run 2 of each, ...: a load spike on this shared machine hits all of them
alike), after one warm-up round. Per command it reports the median wall time
(start-up and output included, stdout to /dev/null), the spread (min-max),
the ratio of the medians to `pmap -X`, the median CPU time (user + system,
all threads: steadier than wall time on a loaded machine) and the peak RSS
(the command's own maximum resident set, from wait4). Writes nothing into the
repository; kills the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
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


def bytecode_env(cache_dir: str) -> dict[str, str]:
    """The environment for the timed Python commands: bytecode caching ON, into
    ``cache_dir`` (not the repository). With PYTHONDONTWRITEBYTECODE set (as in
    some sandboxes) every run would recompile every module it imports, which an
    installed vmainspect never does."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


TIME = shutil.which("time") or "/usr/bin/time"


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, int]:
    """Wall time, CPU time (user + system, all threads), peak RSS (KiB) and exit code of one run.

    The peak RSS comes from GNU time (``%M``) when it is installed: the
    ru_maxrss that wait4 gives for a child of this process also counts the
    memory of this Python process it was forked from (Linux keeps the
    larger high-water mark across exec), so a 3 MiB pmap would show 15 MiB.
    """
    have_time = os.access(TIME, os.X_OK)
    with tempfile.NamedTemporaryFile("r", prefix="vmainspect-bench-rss-") as out:
        wrap = [TIME, "-f", "%M", "-o", out.name] if have_time else []
        t0 = time.perf_counter()
        p = subprocess.Popen(wrap + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc
        text = out.read().strip().splitlines() if have_time else []
    rss = int(text[-1]) if text and text[-1].isdigit() else ru.ru_maxrss
    return dt, ru.ru_utime + ru.ru_stime, rss, rc


def best_of(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Best wall time and best CPU time of ``runs`` runs (after one warm-up run), and the last exit code."""
    best = best_cpu = float("inf")
    rc = 0
    for i in range(runs + 1):
        dt, cpu, _, rc = run_once(cmd, env)
        if i:  # run 0 warms caches (page cache for the Python modules, dentries)
            best, best_cpu = min(best, dt), min(best_cpu, cpu)
    return best, best_cpu, rc


def interleaved(
    cases: list[tuple[str, list[str]]], runs: int, env: dict[str, str] | None = None
) -> dict[str, dict[str, list[float] | int]]:
    """Each case ``runs`` times, round-robin, after one warm-up round: per case
    its wall times, CPU times, peak RSS values and last exit code."""
    out: dict[str, dict[str, list[float] | int]] = {
        name: {"wall": [], "cpu": [], "rss": [], "rc": 0} for name, _ in cases
    }
    for i in range(runs + 1):
        for name, cmd in cases:
            dt, cpu, rss, rc = run_once(cmd, env)
            r = out[name]
            r["rc"] = rc
            if i:
                r["wall"].append(dt)  # type: ignore[union-attr]
                r["cpu"].append(cpu)  # type: ignore[union-attr]
                r["rss"].append(rss)  # type: ignore[union-attr]
    return out


def spawn_target(args: list[str], prefix: list[str] | None = None) -> tuple[subprocess.Popen[str], dict]:
    target = subprocess.Popen(
        (prefix or []) + [sys.executable, os.path.join(HERE, "target_many_vmas.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    assert target.stdout is not None
    info = json.loads(target.stdout.readline())
    wait_stopped(info["pid"])
    return target, info


def kill(target: subprocess.Popen[str]) -> None:
    try:
        os.kill(target.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    target.wait()


def vmainspect_cmd() -> list[str]:
    """The console script beside this Python (what `vmainspect` runs, without a
    pyenv shim in front); `python -m vmainspect` if it is not installed."""
    py = sys.executable
    script = os.path.join(os.path.dirname(py), "vmainspect")
    return [script] if os.access(script, os.X_OK) else [py, "-m", "vmainspect"]


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{model}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM, Linux {os.uname().release}"


def bench_pattern(a: argparse.Namespace, pattern: str, env: dict[str, str]) -> None:
    args = ["--vmas", str(a.vmas), "--size", a.size, "--written", str(a.written), "--pattern", pattern]
    target, info = spawn_target(args + (["--diverse"] if a.diverse else []))
    try:
        pid = info["pid"]
        with open(f"/proc/{pid}/maps", "rb") as f:
            nvmas = f.read().count(b"\n")
        vmi = vmainspect_cmd()
        py = sys.executable
        cases = [
            ("cat /proc/PID/smaps", ["cat", f"/proc/{pid}/smaps"]),
            ("pmap -X PID", ["pmap", "-X", str(pid)]),
            ("vmainspect snapshot PID", vmi + ["snapshot", str(pid)]),
            ("vmainspect snapshot PID --pages", vmi + ["snapshot", str(pid), "--pages"]),
        ]
        if a.all:
            cases += [
                ("vmainspect maps PID", vmi + ["maps", str(pid)]),
                (
                    "psutil memory_maps(grouped=False)",
                    [py, "-c", f"import psutil; psutil.Process({pid}).memory_maps(grouped=False)"],
                ),
                ("python3 -c pass (start-up only)", [py, "-c", "pass"]),
            ]
        load0 = os.getloadavg()[0]
        res = interleaved(cases, a.runs, env)
        pmap_wall = statistics.median(res["pmap -X PID"]["wall"])  # type: ignore[arg-type]
        pmap_cpu = statistics.median(res["pmap -X PID"]["cpu"])  # type: ignore[arg-type]
        print(
            f"\n{pattern} pattern: {nvmas} VMAs, {info['size'] / (1 << 30):.2f} GiB mapped, "
            f"{info['written_pages']} pages written ({a.written:.0%}"
            f"{', diverse VMAs' if a.diverse else ''}); {a.runs} runs each, interleaved; "
            f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'command':<34} {'wall s (median, min-max)':>25} {'vs pmap':>8} "
            f"{'CPU s':>6} {'vs pmap':>8} {'peak RSS':>9}"
        )
        for name, _ in cases:
            r = res[name]
            wall, cpu, rss = r["wall"], r["cpu"], r["rss"]
            assert isinstance(wall, list) and isinstance(cpu, list) and isinstance(rss, list)
            mw, mc = statistics.median(wall), statistics.median(cpu)
            flag = "" if r["rc"] == 0 else f"  (exit {r['rc']})"
            print(
                f"{name:<34} {mw:7.3f} ({min(wall):6.3f}-{max(wall):6.3f}) {mw / pmap_wall:7.2f}x "
                f"{mc:6.3f} {mc / pmap_cpu:7.2f}x {max(rss) / 1024:5.0f} MiB{flag}"
            )
    finally:
        kill(target)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--pattern", choices=("both", "contiguous", "fragmented"), default="both")
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--written", type=float, default=0.25)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--diverse", action="store_true", help="vary VMA sizes and written pages")
    ap.add_argument("--all", action="store_true", help="also time `maps`, psutil and bare start-up")
    a = ap.parse_args()
    if shutil.which("pmap") is None:
        print("pmap not installed: the ratios need it", file=sys.stderr)
        return 1
    print(f"machine: {machine()}; running as {'root' if os.geteuid() == 0 else 'uid ' + str(os.geteuid())}")
    cache_dir = tempfile.mkdtemp(prefix="vmainspect-bench-pycache-")
    try:
        env = bytecode_env(cache_dir)
        for pattern in ("contiguous", "fragmented") if a.pattern == "both" else (a.pattern,):
            bench_pattern(a, pattern, env)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
