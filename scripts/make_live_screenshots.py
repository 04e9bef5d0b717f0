#!/usr/bin/env python3
"""Make the live view's screenshots that need a real process: screenshots/live-*.svg and .png.

    python3 scripts/make_live_screenshots.py [--out screenshots] [NAME ...]

The same pipeline as scripts/make_screenshots.py and
scripts/make_lecture_screenshots.py: the live view (``LiveSource`` +
``VmaInspectApp``, as ``vmainspect attach`` builds it) in Textual's headless
driver, the screen saved as SVG with Textual's own export, PNGs rendered from
the SVGs with ``rsvg-convert``. The processes are real, so the figures differ
from run to run; this takes pictures, it does not test. Run it as root (the
fault sampler needs perf events; dirty page counts need cachestat, Linux 6.5+).

- ``live-files-100x30``: the Files panel (key 4) of a process that maps three
  files: one written through MAP_SHARED and not yet written back, one mapped
  read-only, one mapped private and read.
- ``live-held-160x45``: the status line when the lock budget holds the map
  back (benchmarks/target_many_vmas.py, 20,000 VMAs, default 1% budget).
- ``live-faults-cap-100x30``: the faults panel (key 3) while the sampling cap
  is on (``--max-fault-rate 2000``) on the C loop of
  benchmarks/bench_target_cost.py, which maps, touches and unmaps pages.

Only the named shots are written (all three by default); nothing else in
``--out`` is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from make_lecture_screenshots import print_with_pngs, settle  # noqa: E402  (same folder: one PNG renderer)

from vmainspect.tui.app import VmaInspectApp  # noqa: E402
from vmainspect.tui.sources import LiveSource  # noqa: E402

# The files target: writes one file through MAP_SHARED (dirty until the kernel's
# flusher writes it back, ~30 s later), reads one mapped read-only and one mapped
# private, then stops itself so the picture cannot change under the reader.
FILES_TARGET = r"""
import mmap, os, signal, sys
folder = sys.argv[1]
PAGE = mmap.PAGESIZE
keep = []
def make(name, pages):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (pages * PAGE // 256))
        f.flush()
        os.fsync(f.fileno())  # clean on disk: only what the process writes later is dirty
    return path
journal = make("journal.dat", 64)
table = make("table.ro", 256)
config = make("config.bin", 16)
fd = os.open(journal, os.O_RDWR)
m = mmap.mmap(fd, 64 * PAGE, flags=mmap.MAP_SHARED)
os.close(fd)
for p in range(0, 24):
    m[p * PAGE] = 0x41  # 24 pages written through the shared mapping, not written back
keep.append(m)
fd = os.open(table, os.O_RDONLY)
r = mmap.mmap(fd, 256 * PAGE, prot=mmap.PROT_READ)
os.close(fd)
sum(r[p * PAGE] for p in range(0, 256, 2))  # read-only: half its pages read
keep.append(r)
fd = os.open(config, os.O_RDONLY)
c = mmap.mmap(fd, 16 * PAGE, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
os.close(fd)
sum(c[p * PAGE] for p in range(16))
keep.append(c)
print(os.getpid(), flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
"""


async def shoot(
    source: LiveSource,
    path: str,
    size: tuple[int, int],
    *,
    keys: tuple[str, ...] = (),
    ready: Callable[[VmaInspectApp], bool],
    select: Callable[[VmaInspectApp], int | None] = lambda app: None,
    timeout: float = 60.0,
) -> str:
    """Run the live view on ``source`` until ``ready(app)``, then save the screen as SVG."""
    source.prime()
    app = VmaInspectApp(source, interval=source.interval, describe=None)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, lambda: app.frames_seen >= 1)
        addr = select(app)
        if addr is not None:
            app.select_address(addr)
        if keys:
            await pilot.press(*keys)
        await settle(pilot, lambda: ready(app), timeout)
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause()
        with open(path, "w", encoding="utf-8") as f:
            f.write(app.export_screenshot(title=f"vmainspect: {os.path.basename(path)[:-4]}"))
    return path


def stop(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


@contextmanager
def files_target() -> Iterator[tuple[int, str]]:
    # a disk-backed folder (/tmp may be tmpfs, whose pages are never dirty for writeback)
    # (short paths: the panel's FILE column is the last one and is cut at 100 columns)
    folder = tempfile.mkdtemp(prefix="shot-", dir="/var/tmp")
    script = os.path.join(folder, "filemaps.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(FILES_TARGET)
    proc = subprocess.Popen([sys.executable, script, folder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        yield pid, folder
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


async def shot_files(out: str) -> str:
    with files_target() as (pid, folder):
        journal = os.path.join(folder, "journal.dat")
        source = LiveSource(pid, interval=1.0)  # as `vmainspect attach` does
        try:

            def ready(app: VmaInspectApp) -> bool:
                # a few ticks: the dirty pages' age has grown past zero
                return app.frames_seen >= 5

            def select(app: VmaInspectApp) -> int | None:
                snap = app.current_frame.snapshot
                return next((v.start for v in snap.vmas if v.path == journal), None)

            return await shoot(
                source,
                os.path.join(out, "live-files-100x30.svg"),
                (100, 30),
                keys=("4",),
                ready=ready,
                select=select,
            )
        finally:
            source.close()


async def shot_held(out: str) -> str:
    script = os.path.join(ROOT, "benchmarks", "target_many_vmas.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, script, "--vmas", "20000", "--size", "1G"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        pid = info["pid"]
        # it stays stopped (a SIGCONT only takes it back to its SIGSTOP loop): the map cannot change
        source = LiveSource(pid, interval=1.0)  # as `vmainspect attach` does: the default 1% lock budget
        try:

            def ready(app: VmaInspectApp) -> bool:
                f = app.current_frame
                return f is not None and f.held is not None and source.held_steps >= 2

            def select(app: VmaInspectApp) -> int | None:
                return int(info["start"])

            return await shoot(
                source, os.path.join(out, "live-held-160x45.svg"), (160, 45), ready=ready, select=select
            )
        finally:
            source.close()
    finally:
        stop(proc)


async def shot_faults_cap(out: str) -> str:
    from bench_target_cost import build_target

    tmp = tempfile.mkdtemp(prefix="vmainspect-shot-")
    try:
        cmd, _what = build_target(tmp)
        # one small VMA of its own (1 chunk, 1 MiB, every page written), then the map/touch/unmap loop
        proc = subprocess.Popen([*cmd, "1", str(1 << 20), "1"], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            pid = int(proc.stdout.readline().split()[1])
            source = LiveSource(pid, interval=1.0, max_fault_rate=2000)
            try:

                def ready(app: VmaInspectApp) -> bool:
                    f = app.current_frame
                    return (
                        app.frames_seen >= 5
                        and f is not None
                        and f.faults is not None
                        and f.faults.period > 1  # the cap is on: "sampling 1 fault in N"
                    )

                return await shoot(
                    source,
                    os.path.join(out, "live-faults-cap-100x30.svg"),
                    (100, 30),
                    keys=("3",),
                    ready=ready,
                )
            finally:
                source.close()
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SHOTS = {"files": shot_files, "held": shot_held, "faults-cap": shot_faults_cap}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "screenshots"))
    ap.add_argument(
        "names", nargs="*", metavar="NAME", help=f"which shots: {', '.join(SHOTS)} (default: all)"
    )
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in SHOTS]
    if unknown:
        ap.error(f"unknown shot {unknown[0]!r} (choose from {', '.join(SHOTS)})")
    os.makedirs(args.out, exist_ok=True)
    print_with_pngs([asyncio.run(SHOTS[name](args.out)) for name in args.names or list(SHOTS)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
