"""Render the TUI's main screens from fixture snapshots into screenshots/.

    python3 scripts/make_screenshots.py [--out screenshots]

Writes SVGs (Textual's own export) and, if ``rsvg-convert`` is installed
(Debian: ``apt-get install librsvg2-bin``), PNGs beside them. Deterministic:
fixture snapshots replayed, no live data, no clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vmainspect.model import Frame, Snapshot, replace  # noqa: E402
from vmainspect.snapshot import io as snapshot_io  # noqa: E402
from vmainspect.tui.app import VmaInspectApp  # noqa: E402
from vmainspect.tui.sources import FramesSource  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def _describe(vma):
    """Fixed ELF lines (the fixture's files need not exist on this machine)."""
    return None


def _grown(snap: Snapshot) -> Snapshot:
    """A next tick for the change-highlighting shot: one VMA gone, the heap grown."""
    vmas = list(snap.vmas)
    del vmas[5]
    i = next(k for k, v in enumerate(vmas) if v.kind == "heap")
    h = vmas[i]
    vmas[i] = replace(
        h, smaps=dict(h.smaps, rss=h.smaps["rss"] + 65536, private_dirty=h.smaps["private_dirty"] + 65536)
    )
    return replace(snap, vmas=tuple(vmas), taken_at=snap.taken_at[:17] + "18.000000Z")


async def shoot(
    name: str, frames, size, out: str, select: str | None = None, keys: tuple[str, ...] = (), ticks: int = 0
) -> str:
    app = VmaInspectApp(FramesSource(frames, title=name), interval=3600, describe=_describe)
    async with app.run_test(size=size) as pilot:
        while app.frames_seen < 1:
            await asyncio.sleep(0.01)
        await pilot.pause()
        if select:
            v = next(
                v
                for v in app.current_frame.snapshot.vmas
                if v.kind == select or (v.path or "").endswith(select)
            )
            app.select_address(v.start)
        for _ in range(ticks):
            n = app.frames_seen
            app.request_frame()
            while app.frames_seen == n:
                await asyncio.sleep(0.01)
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
        app.clear_notifications()
        await pilot.pause()
        path = os.path.join(out, f"{name}.svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(app.export_screenshot(title=f"vmainspect: {name}"))
    return path


async def main_async(out: str) -> list[str]:
    small = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    nonroot = snapshot_io.load(os.path.join(FIXTURES, "small-nonroot.json"))
    shots = [
        await shoot("main-100x30", [small], (100, 30), out, select="heap"),
        await shoot("main-220x60", [small], (220, 60), out, select="libc.so.6"),
        await shoot("details-100x30", [small], (100, 30), out, select="libc.so.6", keys=("2",)),
        await shoot("changes-220x60", [small, _grown(small)], (220, 60), out, select="heap", ticks=1),
        await shoot("nonroot-100x30", [nonroot], (100, 30), out, select="data.bin"),
        await shoot("help-100x30", [small], (100, 30), out, keys=("question_mark",)),
        await shoot(
            "exited-100x30",
            [
                small,
                Frame(small, gone=True, message=f"process {small.process.pid} does not exist or has exited"),
            ],
            (100, 30),
            out,
            select="heap",
            ticks=1,
        ),
    ]
    return shots


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "screenshots"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    shots = asyncio.run(main_async(a.out))
    conv = shutil.which("rsvg-convert")
    for svg in shots:
        print(svg)
        if conv:
            png = svg[:-4] + ".png"
            subprocess.run([conv, "-o", png, svg], check=True)
            print(png)
    if not conv:
        print("rsvg-convert not found: SVG only (apt-get install librsvg2-bin for PNGs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
