"""`vmainspect wss PID`: the working set, bytes touched per interval and VMA."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..safetext import printable

if TYPE_CHECKING:
    from ..snapshot.wss import WssInterval, WssReport

HELP = "working set: bytes a process touches per interval, per VMA (resets its referenced bits)"
DESCRIPTION = """\
Measures what a process actually uses, not just what is resident: every
interval vmainspect clears the referenced bits of all the process's pages
(writes 1 to /proc/PID/clear_refs), lets it run, and reads each VMA's
Referenced bytes from smaps, like Brendan Gregg's wss.

COST TO THE TARGET: clearing the referenced bits changes what reclaim sees:
the process's memory looks idle, so under memory pressure the kernel may
evict or swap it sooner; each page's next touch sets the bit again. This is
why the measurement only happens when asked for (here, or the working-set
key in the TUI). Needs to be the process's user or root. A transparent huge
page counts whole (2 MiB) when any of its pages was touched."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .argtypes import add_output, int_arg, pid_arg, seconds_arg

    p.add_argument("pid", type=pid_arg, metavar="PID", help="process to measure")
    p.add_argument(
        "--interval",
        type=seconds_arg(0.05, 3600),
        default=1.0,
        metavar="S",
        help="seconds per interval (default 1)",
    )
    p.add_argument(
        "--duration",
        type=seconds_arg(0.05, 86400),
        default=None,
        metavar="S",
        help="seconds in all (default: one interval)",
    )
    p.add_argument("--json", action="store_true", help="print the vmainspect/wss@1 JSON document")
    p.add_argument("--top", type=int_arg(1), default=20, metavar="N", help="VMAs in the table (default 20)")
    add_output(p)


def progress_line(iv: WssInterval) -> str:
    from ..units import human_bytes

    return (
        f"t={iv.t:6.2f}s  accessed {human_bytes(iv.total_accessed):>6} "
        f"of {human_bytes(iv.total_resident)} resident"
    )


def render(report: WssReport, top: int = 20) -> str:
    """Per interval one line, then the VMAs that were touched most (mean per interval)."""
    from ..units import human_bytes

    lines = [progress_line(iv) for iv in report.intervals]
    n = len(report.intervals)
    sums: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], tuple[str, str | None, int]] = {}
    for iv in report.intervals:
        for v in iv.vmas:
            key = (v.start, v.end)
            sums[key] = sums.get(key, 0) + v.accessed
            last[key] = (v.perms, v.path, v.resident)
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])
    head = ("START", "END", "PERMS", "ACCESSED/INTERVAL", "RESIDENT", "%", "PATH")
    rows = []
    for (start, end), total in ranked[:top]:
        if not total:
            break
        perms, path, resident = last[(start, end)]
        mean = total // n
        pct = f"{100 * mean / resident:.0f}" if resident else "-"
        rows.append(
            (
                f"{start:x}",
                f"{end:x}",
                perms,
                human_bytes(mean),
                human_bytes(resident),
                pct,
                printable(path or ""),
            )
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines.append("")
    for r in [head, *rows]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if len(ranked) > len(rows):
        lines.append(f"({len(ranked) - len(rows)} more VMAs, less or not touched)")
    lines.extend(f"note: {note}" for note in report.notes[1:])
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import sys

    from ..fileio import write_text
    from ..snapshot import wss

    def warn() -> None:
        print(f"vmainspect: {wss.WARNING}", file=sys.stderr)

    duration = args.duration if args.duration is not None else args.interval
    live = None
    if not args.json and args.output == "-" and sys.stderr.isatty():

        def live(iv: WssInterval) -> None:
            print(progress_line(iv), file=sys.stderr)

    report = wss.measure(args.pid, args.interval, duration, on_start=warn, on_interval=live)
    text = wss.encode(report).decode() + "\n" if args.json else render(report, args.top)
    write_text(args.output, text)
    return 0
