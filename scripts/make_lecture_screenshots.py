#!/usr/bin/env python3
"""Make the lecture screenshots for the README: screenshots/lecture-*.svg.

Runs the real lecture (a live demo workload, the real measurements) in
Textual's headless test driver, presses n until each chosen step has run,
and saves the screen as SVG. Numbers differ a little from run to run
(readahead is asynchronous), so this takes pictures, it does not test.

    python3 scripts/make_lecture_screenshots.py [--out screenshots] [--png]

--png also renders each SVG to PNG with a headless chromium, if installed.
Run it as root to show dirty pages and mapping counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vmainspect.demo.lesson import Lesson
from vmainspect.tui.lecture import LectureApp

# step id -> screenshot name
SHOTS = {
    "touch-pages": "lecture-02-touch-pages",
    "cold-file-read": "lecture-03-cold-file-read",
    "private-write": "lecture-04-copy-on-write",
    "shared-write": "lecture-06-shared-write-dirty",
    "mprotect": "lecture-09-mprotect-split",
    "fork-cow": "lecture-14-fork-cow",
    "crash": "lecture-16-crash",
}
SIZE = (130, 48)


async def settle(app, pilot, cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause(0.05)


async def shoot(out: str, big: bool) -> list[str]:
    written = []
    with Lesson(wait=False) as lesson:
        app = LectureApp(lesson, big=big, interval=0.3)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot, lambda: app.current_frame is not None)
            if big:
                # one projector-mode picture is enough: the cold read
                wanted = {"cold-file-read": "lecture-projector-cold-file-read"}
            else:
                path = os.path.join(out, "lecture-00-intro.svg")
                app.save_screenshot(path)
                written.append(path)
                wanted = SHOTS
            while not lesson.done and wanted:
                n = len(app.results)
                await pilot.press("n")
                await settle(app, pilot, lambda n=n: len(app.results) == n + 1 and not app.step_running)
                r = app.results[-1]
                if r.step.id in wanted:
                    if r.focus:
                        await settle(app, pilot, lambda: app._focus is None, 10)
                    await pilot.pause(0.2)
                    path = os.path.join(out, wanted.pop(r.step.id) + ".svg")
                    app.save_screenshot(path)
                    written.append(path)
            await pilot.press("q")
    return written


def to_png(svg: str) -> str | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        return None
    png = svg[:-4] + ".png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={png}",
            "--window-size=1560,1120",
            "file://" + os.path.abspath(svg),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return png if os.path.exists(png) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "screenshots"),
    )
    ap.add_argument("--png", action="store_true", help="also render PNGs with headless chromium")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    files = asyncio.run(shoot(args.out, big=False)) + asyncio.run(shoot(args.out, big=True))
    for f in files:
        print(f)
        if args.png:
            png = to_png(f)
            print(png or "  (no chromium: PNG skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
