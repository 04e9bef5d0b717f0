"""Command line entry point.

Each subcommand lives in ``vmainspect/commands/NAME.py`` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
heavy things (textual, the collector) inside ``run``, so building the parser
stays cheap and ``snapshot``/``maps`` never import textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import EXIT_INTERRUPTED, EXIT_USAGE, VmaInspectError

# Order is the order shown in --help.
COMMANDS = (
    "demo",
    "attach",
    "open",
    "snapshot",
    "maps",
    "faults",
    "crash",
    "cache",
    "wss",
    "record",
    "diff",
    "serve",
)

EPILOG = """exit codes:
  0  success              3  no such process / it exited while being read
  1  diff: differences    4  permission denied (the message names the privilege)
  2  bad arguments/input  5  output file could not be written
  6  kernel feature missing   7  optional dependency missing (names the extra)
  130  interrupted"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmainspect",
        description="Linux VMA and page-fault inspector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmainspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"vmainspect.commands.{name}")
        except ModuleNotFoundError as e:  # a command not built yet in this checkout
            if e.name == f"vmainspect.commands.{name}":
                continue
            raise
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except VmaInspectError as e:
        print(f"vmainspect: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vmainspect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 0


def pid_arg(text: str) -> int:
    """argparse type for a PID: a positive integer, with a one-line error."""
    try:
        pid = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return pid


def seconds_arg(low: float, high: float):
    """argparse type for a duration in seconds between ``low`` and ``high``."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not low <= v <= high:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"wants {low:g} to {high:g} seconds, got {text}")
        return v

    return parse


def int_arg(low: int, high: int | None = None, what: str = "a whole number"):
    """argparse type for an integer of at least ``low`` (and at most ``high``)."""

    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if v < low or (high is not None and v > high):
            bound = f"{low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"wants {bound}, got {text}")
        return v

    return parse


if __name__ == "__main__":
    sys.exit(main())
