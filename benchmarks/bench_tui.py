"""TUI responsiveness on a 65,000-VMA process (issue 3's scale target).

    python3 benchmarks/bench_tui.py [--vmas 65000] [--ticks 10] [--size 220x60]

Spawns a target with ``--vmas`` VMAs (one anonymous region, every other
chunk made read-only so the kernel cannot merge them; some pages written),
collects it with per-page state, then drives the app with Textual's pilot
(``App.run_test``) on a replay source and reports:

- time to first screen after the collector returned (target < 2 s)
- key latency: down, pagedown, end, sort by RSS, sort back, filter typing,
  go to address (press -> handled and screen refreshed; target < 100 ms)
- per refresh tick: UI-thread time handling the new frame, and the longest
  stall of the UI event loop while frames arrive (target < 100 ms)

Side by side: the same measurements on a small (--small, 300 VMAs) target,
so what the 65k VMAs add shows apart from the machine's load and Textual's
own per-frame cost; and, for scale, ``pmap -X`` and our collector on each
target. Nothing here asserts; it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench_snapshot import wait_stopped

TARGET = r"""
import ctypes, ctypes.util, json, mmap, os, signal, sys
n = int(sys.argv[1])
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
with open("/proc/self/maps") as f:
    have = sum(1 for _ in f)
chunks = max(2, n - have - 2)
per = 2  # pages per chunk
base = libc.mmap(None, chunks * per * PAGE, 3, 0x22 | 0x4000, -1, 0)
for i in range(chunks):
    a = base + i * per * PAGE
    if i % 3 == 0:
        ctypes.memset(a, 1, PAGE)        # one page of every third chunk resident
    if i % 2:
        libc.mprotect(a, per * PAGE, 1)
sys.stdout.write(json.dumps({"base": base, "chunks": chunks}) + "\n")
sys.stdout.flush()
while True:
    os.kill(os.getpid(), signal.SIGSTOP)
    # resumed: touch a few more pages, then stop again (a live-looking change)
    for i in range(0, chunks, 97):
        if i % 2 == 0:
            ctypes.memset(base + i * per * PAGE + PAGE, 2, 1)
"""


def spawn(n: int) -> tuple[subprocess.Popen, dict]:
    p = subprocess.Popen([sys.executable, "-c", TARGET, str(n)], stdout=subprocess.PIPE, text=True)
    info = json.loads(p.stdout.readline())
    wait_stopped(p.pid)
    return p, info


def timed(fn, *a, **kw):
    t = time.perf_counter()
    r = fn(*a, **kw)
    return r, time.perf_counter() - t


async def drive(frames, size: tuple[int, int], ticks: int) -> dict:
    from textual import events

    from vmainspect.tui.app import VmaInspectApp
    from vmainspect.tui.sources import FramesSource

    handle_times: list[float] = []
    marks = {"key": 0.0, "display": 0.0}

    class Bench(VmaInspectApp):
        def on_frame_ready(self, msg):  # time the UI-thread part of a tick
            t = time.perf_counter()
            super().on_frame_ready(msg)
            handle_times.append(time.perf_counter() - t)

        async def on_event(self, event):
            if isinstance(event, events.Key):
                marks["key"] = time.perf_counter()
            await super().on_event(event)

        def _display(self, screen, renderable):  # the frame written to the (headless) terminal
            super()._display(screen, renderable)
            marks["display"] = time.perf_counter()

    # replay: first frame, then alternate the two collected frames forever
    seq = [frames[0]] + [frames[1 + (i % (len(frames) - 1))] for i in range(ticks + 2)]
    source = FramesSource(seq, title="bench")
    app = Bench(source, interval=3600, describe=None)
    out: dict = {}
    t0 = time.perf_counter()
    async with app.run_test(size=size) as pilot:
        while app.current_frame is None:
            await asyncio.sleep(0.001)
        await pilot.pause()
        out["first_screen_s"] = time.perf_counter() - t0
        out["first_frame_ui_s"] = handle_times[0]

        async def key(*keys: str) -> float:
            """Key received by the app -> the updated screen written out (per key)."""
            total = 0.0
            for k in keys:
                await pilot.press(k)
                await pilot.pause()
                total += max(0.0, marks["display"] - marks["key"])
            return total

        lat: dict[str, list[float]] = {}
        for name, keys, n in (
            ("down", ("down",), 5),
            ("pagedown", ("pagedown",), 5),
            ("up", ("up",), 5),
            ("end", ("end",), 1),
            ("home", ("home",), 1),
        ):
            lat[name] = [await key(*keys) for _ in range(n)]
        lat["sort by RSS (o x4)"] = []
        for _ in range(3):
            lat["sort by RSS (o x4)"].append(await key("o", "o", "o", "o") / 4)
            for _ in range(5):
                await pilot.press("o")  # back round to address order
        lat["filter: open + type 'rw' (per key)"] = [await key("slash", "r", "w") / 3]
        lat["filter: clear (escape)"] = [await key("escape")]
        vma = app.rows.vmas[len(app.rows.vmas) // 2]
        lat["go to address (g, type, enter) per key"] = [
            await key("g", *f"{vma.start + 4096:x}", "enter") / (len(f"{vma.start:x}") + 2)
        ]
        out["keys_ms"] = {k: (statistics.median(v) * 1000, max(v) * 1000) for k, v in lat.items()}

        # ticks: measure UI handling time and the longest event-loop stall
        stalls: list[float] = []
        stop = False

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not stop:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                stalls.append(now - last - 0.002)
                last = now

        hb = asyncio.create_task(heartbeat())
        handle_times.clear()
        for _ in range(ticks):
            n = len(handle_times)
            app.request_frame()
            while len(handle_times) == n:
                await asyncio.sleep(0.001)
            await pilot.pause()
        stop = True
        await hb
        out["tick_ui_ms"] = (statistics.median(handle_times) * 1000, max(handle_times) * 1000)
        out["tick_stall_ms"] = max(stalls) * 1000
        await pilot.press("q")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="TUI scale benchmark")
    ap.add_argument("--vmas", type=int, default=65000)
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--small", type=int, default=300, help="VMAs of the reference run beside it")
    ap.add_argument("--size", default="220x60")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))

    from vmainspect.model import Frame
    from vmainspect.snapshot.collect import collect

    results = {}
    for n in (a.vmas, a.small):
        proc, _info = spawn(n)
        try:
            pid = proc.pid
            nvmas = len(Path(f"/proc/{pid}/maps").read_text().splitlines())
            _, t_pmap = timed(subprocess.run, ["pmap", "-X", str(pid)], stdout=subprocess.DEVNULL)
            s1, t_c = timed(collect, pid, pages=True)
            os.kill(pid, signal.SIGCONT)
            wait_stopped(pid)
            s2, _ = timed(collect, pid, pages=True)
        finally:
            proc.kill()
            proc.wait()
        print(
            f"target with {nvmas:,} VMAs: pmap -X {t_pmap:.2f} s; vmainspect collect(pages=True) "
            f"{t_c:.2f} s (reference only: not part of the TUI figures)"
        )
        results[nvmas] = asyncio.run(drive([Frame(s1), Frame(s2), Frame(s1)], (w, h), a.ticks))
        del s1, s2
    big, small = list(results)
    rb, rs = results[big], results[small]
    print(f"\nterminal {w}x{h}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':46s} {big:>10,} VMAs {small:>8,} VMAs")
    print(
        f"{'first screen after the collector returned (s)':46s} {rb['first_screen_s']:15.2f} "
        f"{rs['first_screen_s']:13.2f}"
    )
    print("key latency, median / max ms (key received -> updated screen written):")
    for k in rb["keys_ms"]:
        (mb, xb), (ms, xs) = rb["keys_ms"][k], rs["keys_ms"][k]
        print(f"  {k:44s} {mb:6.0f} / {xb:6.0f} {ms:6.0f} / {xs:5.0f}")
    (mb, xb), (ms, xs) = rb["tick_ui_ms"], rs["tick_ui_ms"]
    print(f"{'refresh tick: UI-thread time per frame (ms)':46s} {mb:6.1f} / {xb:6.1f} {ms:6.1f} / {xs:5.1f}")
    print(
        f"{'longest UI event-loop stall during ticks (ms)':46s} {rb['tick_stall_ms']:15.0f} "
        f"{rs['tick_stall_ms']:13.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
