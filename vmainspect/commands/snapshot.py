"""vmainspect snapshot PID: the process's memory map as vmainspect/snapshot@1 JSON."""

from __future__ import annotations

import argparse

HELP = "write a JSON snapshot of a process's VMAs (and with --pages its per-page state)"
DESCRIPTION = """\
Write one snapshot of process PID's memory as JSON (schema vmainspect/snapshot@1):
every VMA with its smaps fields in bytes, VmFlags, kind, smaps_rollup totals
and process facts. With --pages also the state of every page (absent, swapped,
file, anon, zero, dirty) as run-length runs; as root from kpageflags/kpagecount,
otherwise those fields are null (unknown), never 0.

The snapshot is all or nothing: if the process exits or its PID is reused
while being read, nothing is written and the exit code is 3.
-o FILE is written atomically (temporary file, fsync, rename); -o - or no -o
writes to stdout; a symlink is written through (its target is replaced, the
link stays); /dev/null or a FIFO is written directly."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .argtypes import output_arg, pid_arg

    p.add_argument("pid", type=pid_arg, metavar="PID", help="process id")
    p.add_argument(
        "--pages",
        action="store_true",
        help="also collect per-page state from pagemap (kpageflags/kpagecount as root)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=output_arg,
        metavar="FILE",
        default="-",
        help="write to FILE (atomically) instead of stdout; '-' is stdout",
    )
    p.add_argument(
        "--indent",
        type=int,
        metavar="N",
        default=None,
        help="indent the JSON by N spaces (default: compact, one line)",
    )


def run(args: argparse.Namespace) -> int:
    from .. import gcpause

    with gcpause.paused():  # short-lived, acyclic data: the cyclic GC would only cost time
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..errors import BadInput
    from ..snapshot.collect import collect  # light: collect starts reading /proc, then imports the model

    if args.indent is not None and not 0 <= args.indent <= 16:
        raise BadInput(f"--indent must be between 0 and 16, not {args.indent}")
    snap = collect(args.pid, pages=args.pages)

    from ..fileio import write_bytes
    from ..snapshot.io import dumps, encode_line

    if args.indent is None:  # compact: msgspec's bytes as they are, no str copy
        data: bytes | bytearray = encode_line(snap)
    else:
        text = dumps(snap, indent=args.indent)
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8", "backslashreplace")
        del text
    del snap
    write_bytes(args.output, data)
    return 0
