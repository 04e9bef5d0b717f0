"""`vmainspect crash`: what happens to mmap'ed data when a process crashes, measured."""

from __future__ import annotations

import argparse

HELP = "measure what a crash does to data written through mmap (shared, private, anonymous)"
DESCRIPTION = """\
Runs the crash experiment: for each mapping (shared, shared+msync, private,
anonymous) and each ending (sigkill, sigsegv, abort, exit without munmap) a
throwaway child maps a temporary file, writes known bytes to 8 of its 16
pages and stops; vmainspect counts its dirty pages, lets it end, reads the
file back and counts the file's pages still dirty in the page cache.
Temporary files are removed afterwards. The process's dirty pages before
its end need root (/proc/kpageflags); without it they are shown as ? (null
in JSON). The file's pages still dirty in the page cache afterwards come
from cachestat(2) (Linux 6.5+), which needs no root."""

MAPPINGS = ("shared", "shared+msync", "private", "anonymous")
ENDINGS = ("sigkill", "sigsegv", "abort", "exit")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .argtypes import add_output

    p.add_argument("--json", action="store_true", help="print the vmainspect/crash@1 JSON document")
    add_output(p)
    p.add_argument(
        "--mapping",
        action="append",
        choices=MAPPINGS,
        metavar="KIND",
        help="only this mapping (repeatable): " + ", ".join(MAPPINGS),
    )
    p.add_argument(
        "--ending",
        action="append",
        choices=ENDINGS,
        metavar="HOW",
        help="only this ending (repeatable): " + ", ".join(ENDINGS),
    )


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from ..demo import crash
    from ..demo.control import exit_on_signals
    from ..fileio import write_text

    with exit_on_signals():
        results, seconds = crash.timed_matrix(
            mappings=args.mapping or MAPPINGS, endings=args.ending or ENDINGS
        )
    # dirty counts were visible (kpageflags): root, or at least what root may read
    root = results[0].dirty_before is not None if results else os.geteuid() == 0
    if args.json:
        text = json.dumps(crash.to_json(results, root=root, seconds=seconds), indent=2) + "\n"
    else:
        text = crash.render_table(results, root=root) + f"\n{len(results)} cases in {seconds:.1f} s\n"
    write_text(args.output, text)
    return 0
