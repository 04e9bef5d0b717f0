"""What watching a process costs the process: its throughput with and without a watcher.

    python3 benchmarks/bench_target_cost.py [--vmas 20000] [--size 4G] [--rounds 3] [--window 8]
                                            [--only NAME,...]

The target (C, compiled here with ``cc``; a Python/ctypes copy if there is no
compiler) builds 20,000 VMAs over 4 GiB with every 4th page written (the
fragmented heap of bench_snapshot.py), then loops on work that needs its
mmap lock: mmap 16 pages, write each (16 page faults), munmap. It prints its
operation count ten times a second, so its throughput is measured by itself.

Watchers, each run for --window seconds after a 1.5 s warm-up (start-up of
the watcher is not counted), in rounds, interleaved (round 1: every watcher,
round 2: every watcher, ...: a load spike on a shared machine hits them
alike), with "none" (nobody watching) in every round as the reference:

- ``pmap -X`` run at 1 Hz and at 2 Hz (the reference tool, same rates);
- ``vmainspect record --pages --interval 1`` (what a live view with page
  state does each tick: collect with pages, sample faults; the live view
  shares this loop) and at ``--interval 0.5`` (2 Hz), with the default lock
  budget (1%: a collect waits until the last one's reads under the target's
  mmap lock are 1% of the time since it started) and with ``--lock-budget
  100`` (every tick reads the map, the behaviour before the budget), with
  and without ``--no-faults``;
- ``vmainspect record --interval 1`` without pages;
- ``record --pages`` with the default fault-sampling cap and ``--max-fault-rate 0``;
- ``vmainspect faults`` (the perf sampler alone).

Per watcher: the target's throughput (median of rounds), its loss against
"none" (per round, against that round's reference; median and min-max); the
same loss with the time the target spent waiting for a CPU left out (from
/proc/PID/schedstat: on a shared machine most of the raw loss is other
processes, the watcher included, taking the CPU; what remains is what the
watcher's reads cost the target in the kernel: lock waits, cache misses);
the share of time the target was blocked (off the CPU and not runnable:
this target only blocks on its mmap lock); the watcher's CPU per tick,
whether it kept its rate (ticks done / ticks due) and, for ``record``, how
many of those ticks the lock budget held back (frames that repeat the
previous map: an empty patch). A stopped "twin" with the
same 20k VMAs watched at the same rate is the control: it costs this
machine the same CPU but takes no lock of the target. Not a test: no assertions on time. Writes nothing into
the repository; kills what it started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_snapshot import kill, machine, spawn_target, vmainspect_cmd  # noqa: E402  (same folder)

TARGET_C = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long vmas = atol(argv[1]), stride = atol(argv[3]);
    size_t size = strtoull(argv[2], NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    size_t npages = size / page, chunk = npages / vmas;
    char *base = mmap(NULL, npages * page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return 1;
    madvise(base, npages * page, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < npages; i += stride) base[i * page] = 1;
    for (long v = 1; v < vmas; v += 2)  /* every other chunk read-only: no merging */
        mprotect(base + v * chunk * page, chunk * page, PROT_READ);
    printf("ready %d\n", getpid());
    fflush(stdout);
    uint64_t ops = 0;
    struct timespec now, next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        char *p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int k = 0; k < 16; k++) p[k * page] = 1;
        munmap(p, 16 * page);
        if ((++ops & 63) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
                printf("%ld.%09ld %llu\n", (long)now.tv_sec, now.tv_nsec, (unsigned long long)ops);
                fflush(stdout);
                next.tv_nsec += 100000000;
                if (next.tv_nsec >= 1000000000) { next.tv_sec++; next.tv_nsec -= 1000000000; }
            }
        }
    }
}
"""

TARGET_PY = r"""
import ctypes, ctypes.util, mmap, os, sys, time
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
vmas, size, stride = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
page = mmap.PAGESIZE
npages = size // page; chunk = npages // vmas
base = libc.mmap(None, npages * page, 3, 0x22 | 0x4000, -1, 0)
libc.madvise(base, npages * page, 15)
mem = (ctypes.c_char * (npages * page)).from_address(base)
mem[0 : npages * page : stride * page] = b"\1" * len(range(0, npages, stride))
for v in range(1, vmas, 2):
    libc.mprotect(base + v * chunk * page, chunk * page, 1)
print("ready", os.getpid(), flush=True)
ops, nxt = 0, time.monotonic()
while True:
    p = libc.mmap(None, 16 * page, 3, 0x22, -1, 0)
    ctypes.memset(p, 1, 16 * page)
    libc.munmap(p, 16 * page)
    ops += 1
    if ops & 15 == 0 and time.monotonic() >= nxt:
        print(time.monotonic(), ops, flush=True)
        nxt += 0.1
"""


class Target:
    """The working target and its self-reported operation counts."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd="/")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("target did not start")
        self.pid = int(line[1])
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t, n = line.split()
            with self._lock:
                self.samples.append((float(t), int(n)))

    def rate(self, t0: float, t1: float) -> float:
        """Operations per second between monotonic times t0 and t1 (the target's own clock)."""
        with self._lock:
            s = [x for x in self.samples if t0 <= x[0] <= t1]
        if len(s) < 2:
            raise RuntimeError("the target reported nothing in the window")
        return (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])

    def schedstat(self) -> tuple[float, float, float]:
        """(now, seconds on a CPU, seconds runnable but waiting for a CPU) from /proc/PID/schedstat."""
        with open(f"/proc/{self.pid}/schedstat") as f:
            on_cpu, waiting, _ = f.read().split()
        return time.monotonic(), int(on_cpu) / 1e9, int(waiting) / 1e9

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()


def build_target(tmp: str) -> tuple[list[str], str]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        src = os.path.join(tmp, "target.c")
        exe = os.path.join(tmp, "target")
        with open(src, "w") as f:
            f.write(TARGET_C)
        if subprocess.run([cc, "-O2", "-o", exe, src]).returncode == 0:
            return [exe], "C (cc -O2)"
    return [sys.executable, "-c", TARGET_PY], "Python/ctypes (no C compiler)"


class Periodic:
    """Runs ``cmd`` every ``1 / hz`` seconds (back to back when a run takes
    longer); counts runs and their CPU time."""

    def __init__(self, cmd: list[str], hz: float) -> None:
        self.cmd, self.period = cmd, 1.0 / hz
        self.runs, self.cpu = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, _, ru = os.wait4(p.pid, 0)
            p.returncode = 0
            self.runs += 1
            self.cpu += ru.ru_utime + ru.ru_stime
            nxt += self.period
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join()
        return self.runs, self.cpu


class Command:
    """A long-running watcher (record, faults): ticks counted from its output file."""

    def __init__(self, cmd: list[str], out: str | None) -> None:
        self.cmd, self.out = cmd, out
        self.proc: subprocess.Popen[bytes] | None = None
        self.held = 0  # frames that repeat the previous map (held back by the lock budget)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> tuple[int, float]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)  # record and faults end cleanly on Ctrl+C
        try:
            _, _, ru = os.wait4(self.proc.pid, 0)
        except ChildProcessError:
            return 0, 0.0
        self.proc.returncode = 0
        ticks = 0
        if self.out and os.path.exists(self.out):
            with open(self.out, "rb") as f:
                lines = f.readlines()
            ticks = max(0, len(lines) - 1)  # one header line, then one line per frame
            self.held = sum(1 for line in lines if b'"patch":{"{":{}}' in line)
            os.unlink(self.out)
        return ticks, ru.ru_utime + ru.ru_stime


def watchers(pid: int, twin: int, region: tuple[int, int], tmp: str) -> dict[str, tuple[float, object]]:
    """name -> (rate in Hz or 0, factory of a started/stoppable watcher).

    ``twin``: another 20k-VMA process, stopped: watching it costs this machine
    the same CPU but takes no lock of the measured target (the control that
    tells CPU competition from lock contention). ``region``: the target's
    big mapping (start, end), for the pagemap probe."""
    vmi = vmainspect_cmd()
    rec = os.path.join(tmp, "rec.jsonl")
    perf_data = os.path.join(tmp, "perf.data")
    page = os.sysconf("SC_PAGE_SIZE")
    dd = [
        "dd",
        f"if=/proc/{pid}/pagemap",
        "of=/dev/null",
        "bs=2M",
        "iflag=skip_bytes,count_bytes",
        f"skip={region[0] // page * 8}",
        f"count={(region[1] - region[0]) // page * 8}",
    ]

    def record(
        interval: str, pages: bool, faults: bool = True, budget: str | None = None, cap: str | None = None
    ) -> Command:
        extra = (["--pages"] if pages else []) + ([] if faults else ["--no-faults"])
        extra += ["--lock-budget", budget] if budget else []
        extra += ["--max-fault-rate", cap] if cap else []
        return Command(vmi + ["record", str(pid), "-o", rec, "--interval", interval, "--force", *extra], rec)

    every = {
        "none": (0.0, None),
        "pmap -X at 1 Hz": (1.0, lambda: Periodic(["pmap", "-X", str(pid)], 1.0)),
        "pmap -X at 2 Hz": (2.0, lambda: Periodic(["pmap", "-X", str(pid)], 2.0)),
        "pmap -X of the twin, 1 Hz": (1.0, lambda: Periodic(["pmap", "-X", str(twin)], 1.0)),
        "record --pages, 1 Hz": (1.0, lambda: record("1", True)),
        "record --pages --lock-budget 100, 1 Hz": (1.0, lambda: record("1", True, budget="100")),
        "record --pages of the twin, 1 Hz": (
            1.0,
            lambda: Command(
                vmi + ["record", str(twin), "-o", rec, "--interval", "1", "--force", "--pages"], rec
            ),
        ),
        "record --pages, 2 Hz": (2.0, lambda: record("0.5", True)),
        "record (no pages), 1 Hz": (1.0, lambda: record("1", False)),
        "record --pages --no-faults, 1 Hz": (1.0, lambda: record("1", True, False)),
        "record --pages --no-faults --lock-budget 100, 1 Hz": (
            1.0,
            lambda: record("1", True, False, budget="100"),
        ),
        "record --no-faults, 1 Hz": (1.0, lambda: record("1", False, False)),
        # the fault-sampling cap (faults/cap.py): the default (20,000 samples/s) beside every fault
        "record --pages --max-fault-rate 20000 (default), 1 Hz": (
            1.0,
            lambda: record("1", True, cap="20000"),
        ),
        "record --pages --max-fault-rate 0, 1 Hz": (1.0, lambda: record("1", True, cap="0")),
        "record --pages --lock-budget 100 --max-fault-rate 20000 (default), 1 Hz": (
            1.0,
            lambda: record("1", True, budget="100", cap="20000"),
        ),
        "record --pages --lock-budget 100 --max-fault-rate 0, 1 Hz": (
            1.0,
            lambda: record("1", True, budget="100", cap="0"),
        ),
        "faults (perf sampler)": (
            0.0,
            lambda: Command(vmi + ["faults", str(pid), "--duration", "600"], None),
        ),
        # perf's own tools on the same event: what the kernel charges any page-fault perf event
        # (counting alone, then sampling about as often as vmainspect's cap allows, with the
        # data mmap records vmainspect's sampler asks for too)
        "perf stat -e page-faults (counts, no samples)": (
            0.0,
            lambda: Command(["perf", "stat", "-e", "page-faults", "-o", os.devnull, "-p", str(pid)], None),
        ),
        "perf record -d -F 20000 -e page-faults": (
            0.0,
            lambda: Command(
                [
                    "perf",
                    "record",
                    "-q",
                    "-d",
                    "-F",
                    "20000",
                    "-e",
                    "page-faults",
                    "-o",
                    perf_data,
                    "-p",
                    str(pid),
                ],
                None,
            ),
        ),
        # probes: one /proc file each, read by a C tool at 1 Hz
        "probe: cat smaps, 1 Hz": (1.0, lambda: Periodic(["cat", f"/proc/{pid}/smaps"], 1.0)),
        "probe: cat maps, 1 Hz": (1.0, lambda: Periodic(["cat", f"/proc/{pid}/maps"], 1.0)),
        "probe: cat smaps_rollup, 1 Hz": (1.0, lambda: Periodic(["cat", f"/proc/{pid}/smaps_rollup"], 1.0)),
        # what a live session reads on every tick, held back or not (procfs.vitals): no mmap lock
        "probe: cat stat and status, 1 Hz": (
            1.0,
            lambda: Periodic(["cat", f"/proc/{pid}/stat", f"/proc/{pid}/status"], 1.0),
        ),
        "probe: dd pagemap (4 GiB), 1 Hz": (1.0, lambda: Periodic(dd, 1.0)),
    }
    if shutil.which("perf") is None:  # the perf references need perf (linux-perf)
        every = {k: v for k, v in every.items() if not k.startswith("perf ")}
    return every


def live_ticks(pid: int, steps: int, faults: bool = True, budget: float | None = 0.01) -> None:
    """The live view's loop, headless: ``LiveSession(pages=True)`` stepped at 1 Hz
    (collect with pages, then the fault sampler's tick, as the TUI's poll worker
    does), in this process, with lock budget ``budget`` (None: read every step).
    Prints the CPU and wall time of each step, how many the budget held back and the CPU of
    those alone, and (where the code has it) the CPU of one read of the process-level
    counters a step reads without the mmap lock (``procfs.vitals``)."""
    sys.path.insert(0, os.path.dirname(HERE))
    from vmainspect.session.live import LiveSession

    session = LiveSession(pid, pages=True, faults=faults, lock_budget=budget)
    cpu: list[float] = []
    wall: list[float] = []
    held_cpu: list[float] = []
    try:
        session.start()
        nxt = time.monotonic()
        for _ in range(steps):
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.monotonic()))
            w, c = time.monotonic(), time.process_time()
            step = session.step()
            wall.append(time.monotonic() - w)
            cpu.append(time.process_time() - c)
            if step.held is not None:
                held_cpu.append(cpu[-1])
    finally:
        session.close()
    vitals = ""
    try:
        from vmainspect.procfs.reader import ProcReader
        from vmainspect.procfs.vitals import read_vitals
    except ImportError:  # the code before the per-tick counters
        pass
    else:
        reader = ProcReader(pid)
        c = time.thread_time()
        for _ in range(200):
            read_vitals(reader)
        vitals = f"; one read of stat and status (procfs.vitals) {(time.thread_time() - c) / 200 * 1e6:.0f} us of CPU"
    held_note = (
        f"held-back steps' CPU median {statistics.median(held_cpu) * 1000:.2f} ms "
        f"(max {max(held_cpu) * 1000:.2f} ms); "
        if held_cpu
        else ""
    )
    late = sum(1 for x in wall if x > 1.0)
    lock = session.pacer.last_lock
    reads = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in lock.by_read.items()) if lock else "?"
    what = f"lock budget {budget * 100:g}%" if budget is not None else "no lock budget"
    print(
        f"live view loop (session.LiveSession, pages{', faults' if faults else ', no fault sampling'}, {what}) "
        f"stepped at 1 Hz, {steps} steps, {session.held_steps} held back by the budget "
        f"(the last read held the mmap lock for: {reads}): "
        f"CPU per step median {statistics.median(cpu):.3f} s (min {min(cpu):.3f}, max {max(cpu):.3f}), "
        f"wall per step median {statistics.median(wall):.3f} s (max {max(wall):.3f}); "
        f"{held_note}{late} of {steps} steps took longer than the 1 s tick{vitals}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--size", type=int, default=4 << 30, help="bytes mapped (default 4 GiB)")
    ap.add_argument("--stride", type=int, default=4, help="write one page in STRIDE (default 4)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=8.0, help="seconds measured per watcher and round")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated watcher names (substrings; separate with ';' instead when a name has a comma, "
        "e.g. 'record --pages, 1 Hz;pmap -X at 1 Hz'); 'none' is always run",
    )
    ap.add_argument(
        "--live-steps", type=int, default=10, help="then step the live view's loop N times (0: skip)"
    )
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vmainspect-bench-cost-")
    target = None
    twin = None
    try:
        cmd, kind = build_target(tmp)
        target = Target(cmd + [str(a.vmas), str(a.size), str(a.stride)])
        twin, twin_info = spawn_target(
            [
                "--vmas",
                str(a.vmas),
                "--size",
                str(a.size),
                "--written",
                str(1 / a.stride),
                "--pattern",
                "fragmented",
            ]
        )
        region = (twin_info["start"], twin_info["start"] + twin_info["size"])  # same layout: any big range
        with open(f"/proc/{target.pid}/maps") as f:
            spans = [tuple(int(x, 16) for x in ln.split()[0].split("-")) for ln in f]
        big = [s for s in spans if s[1] - s[0] >= (1 << 20)]
        region = (big[0][0], big[-1][1]) if big else region
        table = watchers(target.pid, twin_info["pid"], region, tmp)
        wanted = [x.strip() for x in a.only.split(";" if ";" in a.only else ",") if x.strip()]
        names = [n for n in table if n == "none" or not wanted or any(x in n for x in wanted)]
        with open(f"/proc/{target.pid}/maps", "rb") as f:
            nvmas = f.read().count(b"\n")
        load0 = os.getloadavg()[0]
        rates: dict[str, list[float]] = {n: [] for n in names}
        losses: dict[str, list[float]] = {n: [] for n in names}
        ticks: dict[str, list[tuple[int, float, float]]] = {n: [] for n in names}
        eff: dict[str, list[float]] = {n: [] for n in names}
        eff_losses: dict[str, list[float]] = {n: [] for n in names}
        blocked: dict[str, list[float]] = {n: [] for n in names}
        held: dict[str, list[int]] = {n: [] for n in names}  # record: frames held back by the lock budget
        for rnd in range(a.rounds):
            base = base_eff = None
            for name in names:
                hz, make = table[name]
                w = make() if callable(make) else None
                if w is not None:
                    w.start()  # type: ignore[attr-defined]
                time.sleep(1.5)  # the watcher's start-up is not measured
                s0 = target.schedstat()
                time.sleep(a.window)
                s1 = target.schedstat()
                t0, t1 = s0[0], s1[0]
                r = target.rate(t0, t1)
                wall, cpu, queued = t1 - t0, s1[1] - s0[1], s1[2] - s0[2]
                # Not counting the time the target waited for a CPU (other
                # processes on this shared machine, or the watcher itself)
                # leaves what it lost to the watcher's locks: off the CPU and
                # not runnable = blocked (this target never sleeps otherwise).
                eff[name].append(r * wall / max(wall - queued, 1e-9))
                blocked[name].append(max(0.0, wall - cpu - queued) / wall)
                if w is not None:
                    n, cpu = w.stop()  # type: ignore[attr-defined]
                    ticks[name].append((n, cpu, hz * (t1 - t0 + 1.5)))
                    held[name].append(getattr(w, "held", 0))
                rates[name].append(r)
                if name == "none":
                    base, base_eff = r, eff[name][-1]
                elif base:
                    losses[name].append(1 - r / base)
                    eff_losses[name].append(1 - eff[name][-1] / base_eff)
                time.sleep(0.5)
            print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr)
        if a.rounds:
            print(
                f"machine: {machine()}; target: {kind}, {nvmas} VMAs, {a.size / (1 << 30):.1f} GiB mapped, "
                f"1 page in {a.stride} written, loop of mmap(16 pages) + 16 faults + munmap; "
                f"{a.rounds} rounds x {a.window:.0f} s per watcher, interleaved; "
                f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f}"
            )
            width = max(len(n) for n in names)
            print(
                f"{'watcher':<{width}} {'ops/s':>6} {'loss (median, min-max)':>24} "
                f"{'loss, CPU queueing left out':>28} {'blocked':>8} {'CPU/tick':>9} {'ticks':>9} {'held':>5}"
            )

            def pct(xs: list[float]) -> str:
                if not xs:
                    return " " * 24
                return f"{statistics.median(xs):7.1%} ({min(xs):6.1%} - {max(xs):6.1%})"

            for name in names:
                line = f"{name:<{width}} {statistics.median(rates[name]):6.0f} {pct(losses[name]):>24} "
                line += f"{pct(eff_losses[name]):>28} {statistics.median(blocked[name]):7.2%}"
                done = ticks[name]
                if done:
                    n = sum(x[0] for x in done)
                    cpu = sum(x[1] for x in done)
                    due = sum(x[2] for x in done)
                    line += f" {cpu / n:8.3f}s" if n else f" {cpu / len(done):6.2f}s/w"
                    if due:
                        line += f" {n:4d}/{due:<4.0f}"
                    if "record" in name:
                        line += f" {sum(held[name]):5d}"
                print(line)
        if a.live_steps:
            live_ticks(target.pid, a.live_steps)
            live_ticks(target.pid, a.live_steps, faults=False)
            live_ticks(target.pid, a.live_steps, faults=False, budget=None)
    finally:
        if target is not None:
            target.kill()
        if twin is not None:
            kill(twin)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
