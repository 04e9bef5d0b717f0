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
from typing import NoReturn

from . import __version__
from .commands.argtypes import int_arg, pid_arg, seconds_arg  # noqa: F401  (where they used to be)
from .errors import EXIT_INTERRUPTED, EXIT_USAGE, VmaInspectError
from .safetext import printable

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


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the problem and where the help is (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vmainspect",
        description="Linux VMA and page-fault inspector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmainspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = importlib.import_module(f"vmainspect.commands.{name}")
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
    from .outstream import StdoutFailed, guard, silence

    guard()  # stdout full or closed: one line and exit 5, not a traceback
    parser = build_parser()
    try:
        try:
            args, extra = parser.parse_known_args(argv)  # --help and --version print here
        except SystemExit:
            # --help, --version and usage errors exit from argparse; their output may still
            # sit in stdout's buffer (it is block-buffered unless PYTHONUNBUFFERED is set), and
            # the interpreter's flush at exit would fail as "Exception ignored", exit code 120
            sys.stdout.flush()
            raise
    except StdoutFailed as e:
        silence()
        print(f"vmainspect: {printable(str(e))}", file=sys.stderr)
        return e.exit_code
    if extra:  # named by the subcommand they were given to, like its other usage errors
        sub = _subparsers(parser).get(getattr(args, "command", None) or "", parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        names = ", ".join(sub for sub in COMMANDS if sub in _subcommands(parser))
        print(f"vmainspect: no command given; commands: {names} (see 'vmainspect --help')", file=sys.stderr)
        return EXIT_USAGE
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()  # here, where a failure is still reported
        return rc
    except VmaInspectError as e:
        if isinstance(e, StdoutFailed):
            silence()
        print(f"vmainspect: {printable(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vmainspect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (e.g. piped into head): the end of the output, not an error
        silence()
        return 0


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return set(_subparsers(parser))


if __name__ == "__main__":
    sys.exit(main())
