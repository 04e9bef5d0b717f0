"""`vmainspect cache PATH...`: page-cache state of files and directory trees."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..safetext import printable

if TYPE_CHECKING:
    from ..snapshot.cachetree import CacheReport

HELP = "page-cache state of files and directory trees (cached, dirty, writeback, evicted pages)"
DESCRIPTION = """\
For every regular file at or below each PATH (directories are walked
recursively; symbolic links are followed only when given as a PATH), print
how many of the file's pages are in the page cache, how many of those are
dirty (written, not yet on disk) or under writeback, and how many were
evicted from the cache since the file was opened by anyone (and how many of
those recently), from cachestat(2) (Linux 6.5+). Nothing is read from or
faulted into the files; asking costs the target nothing.

Without root the kernel answers only for files you own or may write; other
files are listed with ? (null in JSON). On kernels without cachestat,
residency comes from mincore(2) and the other counts are unknown.
A path that cannot be read is one error line on stderr; the rest is still
reported, and the exit code is 4 (a permission error) or 2 (other)."""

_COLS = ("cached", "dirty", "writeback", "evicted", "recently_evicted", "pages")
_HEAD = ("CACHED", "DIRTY", "WBACK", "EVICTED", "RECENT", "PAGES", "SIZE", "FILE")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .argtypes import add_output

    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--json", action="store_true", help="print the vmainspect/cache@1 JSON document")
    p.add_argument("-s", "--summary", action="store_true", help="print only the total line")
    add_output(p)


def _cell(v: int | None) -> str:
    return "?" if v is None else str(v)


def render(report: CacheReport, *, summary: bool = False) -> str:
    from ..units import human_bytes

    rows = []
    if not summary:
        rows = [
            (*(_cell(getattr(f, c)) for c in _COLS), human_bytes(f.size), printable(f.path))
            for f in report.files
        ]
    t = report.total
    rows.append(
        (
            *(_cell(getattr(t, c)) for c in _COLS),
            human_bytes(t.size),
            f"total: {t.files} file{'s' if t.files != 1 else ''}"
            + (f" ({t.unknown} unknown, not in the sums)" if t.unknown else ""),
        )
    )
    widths = [max(len(r[i]) for r in [_HEAD, *rows]) for i in range(len(_HEAD) - 1)]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(r, widths)) + "  " + str(r[-1])

    out = [line(_HEAD), *map(line, rows)]
    page = report.page_size
    if t.cached is not None and t.pages and not t.unknown:
        out.append(
            f"{human_bytes(t.cached * page)} of {human_bytes(t.pages * page)} in the page cache "
            f"({100 * t.cached / t.pages:.1f}%)"
            + (f", {human_bytes(t.dirty * page)} dirty" if t.dirty else "")
        )
    out.extend(f"note: {n}" for n in report.notes)
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import EXIT_ACCESS, EXIT_USAGE
    from ..fileio import write_text
    from ..snapshot import cachetree

    report, denied = cachetree.measure(args.paths)
    for err in report.errors:
        print(f"vmainspect: {printable(err)}", file=sys.stderr)
    if args.json:
        text = cachetree.encode(report).decode() + "\n"
    else:
        text = render(report, summary=args.summary)
    write_text(args.output, text)
    if report.errors:
        return EXIT_ACCESS if denied else EXIT_USAGE
    return 0
