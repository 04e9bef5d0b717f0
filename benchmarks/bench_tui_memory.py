"""The live TUI's memory over a long run on a 65,000-VMA process (issue 15, point 7).

    python3 benchmarks/bench_tui_memory.py [--vmas 65000] [--minutes 10] [--interval 0.5]
                                           [--every 15] [--no-pages]

Spawns bench_tui's target (``--vmas`` VMAs, stopped; resumed before every
frame so that it touches a few pages and the frames differ), runs the real
app on a ``LiveSource`` in this process (Textual's ``App.run_test``,
220x60, per-page state and fault sampling on, as ``attach`` runs), and
every ``--every`` seconds prints: elapsed time, frames shown, this
process's RSS (VmRSS), objects tracked by the cyclic GC, and the longest
event-loop stall and full (generation 2) collection in the last period.

At the end: the largest RSS, GC-tracked objects (frozen ones included),
stall and full collection in each quarter of the run after warm-up (3
frames), and the RSS trend (least squares, MB per hour). RSS swings by one
snapshot's worth as frames are swapped in; "flat" means the quarters' maxima
do not climb. Nothing asserts; it prints
figures (docs/performance.md has a run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from bench_tui import spawn  # noqa: E402

from vmainspect.tui.app import VmaInspectApp  # noqa: E402
from vmainspect.tui.sources import LiveSource  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class GcTimes:
    """Durations of full collections (gc.callbacks), longest since the last ``take()``."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self.longest = 0.0
        self.count = 0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._t0)
            self.count += 1

    def take(self) -> tuple[float, int]:
        out = (self.longest, self.count)
        self.longest, self.count = 0.0, 0
        return out


class Lifecycle(LiveSource):
    """The live source, resuming the stopped target before each collect."""

    def __init__(self, pid: int, **kw) -> None:
        super().__init__(pid, **kw)
        self._target = pid

    def next_frame(self):
        os.kill(self._target, signal.SIGCONT)  # it touches a few pages, then stops itself
        return super().next_frame()


async def run(a: argparse.Namespace) -> list[tuple[float, int, float, int, float, float, int]]:
    proc, _info = spawn(a.vmas)
    with open(f"/proc/{proc.pid}/maps") as maps:
        nvmas = sum(1 for _ in maps)
    print(f"target {proc.pid}: {nvmas:,} VMAs; pages={'on' if a.pages else 'off'}, faults on")
    source = Lifecycle(proc.pid, interval=a.interval, pages=a.pages, faults=True)
    source.prime()
    app = VmaInspectApp(source, interval=a.interval, describe=None, save_dir=None)
    gct = GcTimes()
    rows: list[tuple[float, int, float, int, float, float, int]] = []
    stall = [0.0]

    async def watch_loop() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            stall[0] = max(stall[0], time.perf_counter() - t - 0.01)

    try:
        async with app.run_test(size=(220, 60)) as pilot:
            watcher = asyncio.create_task(watch_loop())
            t0 = time.monotonic()
            end = t0 + a.minutes * 60
            print(
                f"{'t (s)':>7} {'frames':>7} {'RSS MB':>8} {'GC objects':>11} {'stall ms':>9} {'gen2 ms':>8} {'gen2 n':>7}"
            )
            next_sample = t0
            while time.monotonic() < end:
                await pilot.pause(0.5)
                if time.monotonic() >= next_sample:
                    next_sample += a.every
                    longest, count = gct.take()
                    row = (
                        time.monotonic() - t0,
                        app.frames_seen,
                        rss_mb(),
                        len(gc.get_objects()) + gc.get_freeze_count(),  # frozen ones too
                        stall[0] * 1000,
                        longest * 1000,
                        count,
                    )
                    stall[0] = 0.0
                    rows.append(row)
                    print(
                        f"{row[0]:7.0f} {row[1]:7d} {row[2]:8.1f} {row[3]:11,d} {row[4]:9.0f} {row[5]:8.0f} {row[6]:7d}"
                    )
                    sys.stdout.flush()
            watcher.cancel()
            source.close()
    finally:
        proc.kill()
        proc.wait()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmas", type=int, default=65000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between frames (the app's poll)")
    ap.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    ap.add_argument("--no-pages", dest="pages", action="store_false", help="without per-page state")
    a = ap.parse_args()
    rows = asyncio.run(run(a))
    warm = [r for r in rows if r[1] >= 3]
    if len(warm) < 4:
        print("too short a run for a trend")
        return 0
    print(
        f"\nRSS after warm-up {warm[0][2]:.1f} MB (t={warm[0][0]:.0f}s, frame {warm[0][1]}); by quarter of the run:"
    )
    q = max(1, len(warm) // 4)
    for k in range(0, len(warm), q):
        part = warm[k : k + q]
        print(
            f"  t {part[0][0]:5.0f}-{part[-1][0]:5.0f}s  frames {part[0][1]:4d}-{part[-1][1]:4d}  "
            f"RSS max {max(r[2] for r in part):6.1f} MB  GC objects max {max(r[3] for r in part):9,d}  "
            f"stall max {max(r[4] for r in part):4.0f} ms  full GC max {max(r[5] for r in part):4.0f} ms"
        )
    ts, ms = [r[0] for r in warm], [r[2] for r in warm]
    slope = statistics.linear_regression(ts, ms).slope * 3600  # MB per hour
    print(f"RSS trend after warm-up (least squares): {slope:+.1f} MB/hour")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
