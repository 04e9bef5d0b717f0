"""vmainspect open: show a saved snapshot or a recording in the TUI (read-only)."""

from __future__ import annotations

import argparse

HELP = "show a saved snapshot, or replay a recording, in the terminal UI (read-only)"
DESCRIPTION = """\
Show FILE in the terminal UI, read-only: a snapshot (written by `snapshot` or
the TUI's `s`) or a recording (written by `record`), which opens with a
timeline to step, play and seek through it.

A recording can start at a moment: REC#N is frame N (from 1; #-1 is the last),
REC@T the last frame taken at or before T seconds, for example
`vmainspect open run.jsonl#-1` or `vmainspect open run.jsonl@12.5`."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "snapshot",
        metavar="FILE",
        help="a snapshot (from `snapshot` or the TUI's `s`) or a recording (from `record`: REC, REC#N, REC@T)",
    )
    p.add_argument("--save-dir", default=".", metavar="DIR", help="where `s` saves a copy (default: .)")
    p.add_argument("--no-save", action="store_true", help="`s` saves nothing (serve's sessions use this)")


def run(args: argparse.Namespace) -> int:
    from ..tui import replay  # a recording (REC, REC@T, REC#N) opens with a timeline

    save_dir = None if args.no_save else args.save_dir
    if replay.is_recording(args.snapshot):
        return replay.run(args.snapshot, save_dir=save_dir)
    from ..tui.sources import FileSource

    source = FileSource(args.snapshot)  # BadInput: one line, exit 2, before the UI starts
    from ..tui.app import VmaInspectApp

    app = VmaInspectApp(source, save_dir=save_dir)
    app.run()
    return app.return_code or 0
