"""`vmainspect demo`: the narrated lecture (TUI) or its scripted, checked run."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .argtypes import output_arg, seconds_arg

if TYPE_CHECKING:
    from ..demo.lesson import StepResult

HELP = "narrated lecture: watch mmap and page faults happen step by step (start here)"
DESCRIPTION = """\
Starts a demo workload and attaches the live TUI to it, with a narration
panel and an evidence panel. Each step makes the workload do one thing
(mmap, touch pages, read a cold file, copy-on-write, msync, large folios,
zero-copy, reclaim, mprotect, fork, SIGBUS, the sample code of an article
on mmap, a crash, ...), then checks the step's claim against what the kernel
reports: snapshots of the workload before and after, its fault counters,
the page cache (cachestat), the file read back.

keys: n / space next step, b / left back to a recorded step, 1-9 or g N
jump to a step, p pause the refresh, a all mappings / the workload's own,
r restart (asks first), ? help, q quit (the workload and its temporary
files are removed on every way out).

--script runs every step without the UI and prints the verdicts; exit
status 1 if a claim did not hold. Claims that need root (dirty pages,
mapping counts) are "unknown" (null in JSON) without it, never false."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--script", action="store_true", help="run every step without the UI and report")
    p.add_argument("--json", action="store_true", help="with --script: print vmainspect/demo@1 JSON")
    p.add_argument(
        "-o",
        "--output",
        type=output_arg,
        metavar="FILE",
        default="-",
        help="with --script: write the report to FILE (atomically)",
    )
    p.add_argument(
        "--auto",
        type=seconds_arg(0.5, 3600),
        metavar="SECONDS",
        help="lecture: advance to the next step every SECONDS by itself (restarts at the end)",
    )
    p.add_argument(
        "--lecture",
        action="store_true",
        help="projector mode: high contrast, bold, the workload's own mappings only ('a' shows all)",
    )
    p.add_argument(
        "--interval",
        type=seconds_arg(0.05, 60),
        default=0.5,
        metavar="SECONDS",
        help="lecture: refresh interval of the live view (default 0.5 s)",
    )
    p.add_argument("--no-faults", action="store_true", help="lecture: do not sample page faults")
    p.add_argument(
        "--no-save", action="store_true", help="lecture: `s` saves nothing (serve's sessions use this)"
    )
    p.add_argument("--list", action="store_true", help="list the steps and exit")


def run(args: argparse.Namespace) -> int:
    from ..errors import BadInput

    if not args.script and (args.json or args.output != "-"):
        raise BadInput("--json and --output need --script (the lecture is interactive)")
    if args.script and (args.auto or args.lecture):
        raise BadInput("--auto and --lecture are for the lecture, not --script")
    if args.list:
        from ..demo.lesson import STEPS

        for i, st in enumerate(STEPS, 1):
            print(f"{i:2}. {st.id:17} {st.title}")
        return 0
    if args.script:
        return _script(args)
    from ..tui.lecture import run_lecture

    return run_lecture(
        auto=args.auto,
        lecture=args.lecture,
        interval=args.interval,
        faults=not args.no_faults,
        save=not args.no_save,
    )


def _script(args: argparse.Namespace) -> int:
    import json
    import os
    import sys
    import time

    from ..demo.control import exit_on_signals
    from ..demo.lesson import STEPS, Lesson, to_json
    from ..fileio import write_text

    def show_progress(r: StepResult) -> None:
        print(f"\r{r.index + 1:2}/{len(STEPS)} {r.step.id:20}", end="", file=sys.stderr, flush=True)

    progress = show_progress if sys.stderr.isatty() else None

    t = time.perf_counter()
    with exit_on_signals(), Lesson() as lesson:
        pid = lesson.pid
        results = lesson.run_all(progress)
    seconds = time.perf_counter() - t
    if progress is not None:
        print("\r" + " " * 30 + "\r", end="", file=sys.stderr)
    root = os.geteuid() == 0
    if args.json:
        text = json.dumps(to_json(results, root=root, seconds=seconds), indent=2) + "\n"
    else:
        text = render(results, pid=pid, root=root, seconds=seconds)
    write_text(args.output, text)
    return 1 if any(r.holds is False for r in results) else 0


def render(results: list[StepResult], *, pid: int, root: bool, seconds: float) -> str:
    import textwrap

    word = {True: "HOLDS", False: "FAILED", None: "UNKNOWN"}
    lines = [
        f"vmainspect demo: {len(results)} steps on workload {pid} "
        f"({'as root' if root else 'not root: page flags and mapping counts are hidden'})",
        "",
    ]
    for r in results:
        lines.append(f"{r.index + 1:2}. {r.step.title}  [{word[r.holds]}]")
        for label, text in (("claim", r.step.claim), ("measured", r.summary), ("note", r.reason)):
            if text:
                wrapped = textwrap.wrap(text, 74 - 12) or [""]
                lines.append(f"    {label + ':':10}{wrapped[0]}")
                lines.extend(f"    {'':10}{w}" for w in wrapped[1:])
        lines.append("")
    n = {k: sum(1 for r in results if r.holds is k) for k in (True, False, None)}
    lines.append(
        f"{n[True]} of {len(results)} claims hold, {n[False]} failed, "
        f"{n[None]} unknown (need root); {seconds:.1f} s"
    )
    return "\n".join(lines) + "\n"
