#!/usr/bin/env python3
"""Make the lecture screenshots for the docs: screenshots/lecture-*.svg and .png.

Runs the real lecture (a live demo workload, the real measurements) in
Textual's headless driver at 160x45, presses n until each chosen step has
run, waits until the step's VMA is selected and its evidence is on screen,
and saves the screen as SVG; one projector-mode picture at 100x30 too.
PNGs are rendered from the SVGs with ``rsvg-convert`` (Debian:
``apt-get install librsvg2-bin``), as scripts/make_screenshots.py does.
Numbers differ a little from run to run (readahead is asynchronous), so
this takes pictures; it does not test.

    python3 scripts/make_lecture_screenshots.py [--out screenshots]

Run it as root to show dirty pages, mapping counts and page frame numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vmainspect.demo.lesson import STEPS, Lesson  # noqa: E402
from vmainspect.tui.lecture import LectureApp  # noqa: E402

# step id -> screenshot name (its number in the lesson is added)
SHOTS = (
    "touch-pages",
    "huge-first-touch",
    "cold-file-read",
    "private-write",
    "shared-write",
    "folio-dirty",
    "msync",
    "zero-copy",
    "ipc",
    "reclaim",
    "mprotect",
    "fork-cow",
    "length-not-page-multiple",
    "article-munmap-offset",
    "article-munmap-wrong-range",
    "article-unchecked-ftruncate",
    "article-fixed",
    "crash",
    "torn-record",
)
PROJECTOR = "touch-pages"
SIZE = (160, 45)
SMALL = (100, 30)


def name_of(step_id: str) -> str:
    n = next(i for i, s in enumerate(STEPS, 1) if s.id == step_id)
    return f"lecture-{n:02d}-{step_id}"


async def settle(pilot: Any, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause(0.05)


def save(app: LectureApp, path: str, title: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(app.export_screenshot(title=title))
    return path


async def shoot(out: str, *, big: bool, size: tuple[int, int], wanted: dict[str, str]) -> list[str]:
    written = []
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, big=big, interval=0.3)
        async with app.run_test(size=size) as pilot:
            await settle(pilot, lambda: app.current_frame is not None)
            if not big:
                written.append(save(app, os.path.join(out, "lecture-00-intro.svg"), "vmainspect demo"))
            while not lesson.done and wanted:
                n = len(app.results)
                await pilot.press("n")
                await settle(pilot, lambda n=n: len(app.results) == n + 1 and not app.step_running)
                r = app.results[-1]
                if r.step.id not in wanted:
                    continue
                if r.focus:
                    await settle(pilot, lambda: app._focus is None, 10)
                seen = app.frames_seen
                await settle(pilot, lambda seen=seen: app.frames_seen >= seen + 2, 10)
                await pilot.pause(0.2)
                app.clear_notifications()
                name = wanted.pop(r.step.id)
                written.append(
                    save(app, os.path.join(out, name + ".svg"), f"vmainspect demo: {r.step.title}")
                )
            await pilot.press("q")
    return written


def to_png(svg: str) -> str | None:
    conv = shutil.which("rsvg-convert")
    if not conv:
        return None
    png = svg[:-4] + ".png"
    subprocess.run([conv, "-o", png, svg], check=True)
    return png


def print_with_pngs(svgs: list[str]) -> None:
    """Print each SVG's path and that of the PNG made from it; say once if none could be made."""
    missing_png = False
    for f in svgs:
        print(f)
        png = to_png(f)
        if png:
            print(png)
        else:
            missing_png = True
    if missing_png:
        print("rsvg-convert not found: SVG only (apt-get install librsvg2-bin for PNGs)", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "screenshots"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for old in glob.glob(os.path.join(args.out, "lecture-*")):
        os.unlink(old)  # step numbers move when lessons are added
    files = asyncio.run(shoot(args.out, big=False, size=SIZE, wanted={s: name_of(s) for s in SHOTS}))
    files += asyncio.run(
        shoot(args.out, big=True, size=SMALL, wanted={PROJECTOR: f"lecture-projector-100x30-{PROJECTOR}"})
    )
    print_with_pngs(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
