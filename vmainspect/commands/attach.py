"""vmainspect attach: watch a running process's VMAs and pages live."""

from __future__ import annotations

import argparse

from ..errors import EXIT_NO_PROCESS, BadInput, VmaInspectError
from ..faults.cap import DEFAULT_MAX_RATE
from .argtypes import add_lock_budget, add_max_fault_rate, lock_budget, pid_arg, seconds_arg

HELP = "watch a process's VMAs, pages and faults live in a terminal UI"
DESCRIPTION = """Open the live TUI on a process.

  vmainspect attach PID            attach to PID
  vmainspect attach --name REGEX   the process whose name or command line matches
                                   (several matches: pick one from a list)
  vmainspect attach                pick a process from a list

Keys: arrows/PgUp/PgDn move, o sort, / filter, g go to address, space pause,
s save JSON, ? help, q quit, ctrl+p command palette."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pid", nargs="?", type=pid_arg, help="process id (omit to pick from a list)")
    p.add_argument(
        "--name",
        metavar="PATTERN",
        help="attach to the process whose name or command line matches PATTERN (regex)",
    )
    p.add_argument(
        "--interval",
        type=seconds_arg(0.05, 3600),
        default=1.0,
        metavar="SECONDS",
        help="refresh interval (default 1 s)",
    )
    p.add_argument(
        "--no-pages",
        action="store_true",
        help="do not read per-page state (faster on huge processes; no page map)",
    )
    p.add_argument("--no-faults", action="store_true", help="do not sample page faults")
    add_lock_budget(p)
    add_max_fault_rate(p, DEFAULT_MAX_RATE)
    p.add_argument("--save-dir", default=".", metavar="DIR", help="where `s` saves snapshots (default: .)")
    p.add_argument("--no-save", action="store_true", help="`s` saves nothing (serve's sessions use this)")


def run(args: argparse.Namespace) -> int:
    if args.pid is not None and args.name:
        raise BadInput("give a PID or --name, not both")
    options = {
        "interval": args.interval,
        "pages": not args.no_pages,
        "faults": not args.no_faults,
        "lock_budget": lock_budget(args.lock_budget),
        "max_fault_rate": args.max_fault_rate or None,  # 0: every fault
    }
    picker_filter, only = "", None
    source = None
    if args.name:
        from ..tui.proclist import list_processes, match

        found = match(list_processes(), args.name)
        if not found:
            raise NoMatch(f"no process matches {args.name!r}")
        if len(found) == 1:
            args.pid = found[0].pid
        else:
            only = {r.pid for r in found}
    if args.pid is not None:
        from ..tui.sources import LiveSource

        source = LiveSource(args.pid, **options)
        source.prime()  # ProcessGone / AccessDenied: one line, before the UI starts
    from ..tui.app import VmaInspectApp

    app = VmaInspectApp(
        source,
        interval=args.interval,
        save_dir=None if args.no_save else args.save_dir,
        picker_filter=picker_filter,
        picker_only=only,
        live_options=options,
    )
    try:
        app.run()
    finally:
        if app.source is not None:
            app.source.close()
    return app.return_code or 0


class NoMatch(VmaInspectError):
    """--name matched nothing: like a missing PID."""

    exit_code = EXIT_NO_PROCESS
