"""argparse types shared by the commands: one-line errors for bad PIDs, durations and counts;
the ``-o/--output`` option of the commands that print a report."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def pid_arg(text: str) -> int:
    """argparse type for a PID: a positive integer, with a one-line error."""
    try:
        pid = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}")
    return pid


def seconds_arg(low: float, high: float) -> Callable[[str], float]:
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


def int_arg(low: int, high: int | None = None, what: str = "a whole number") -> Callable[[str], int]:
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


def lock_budget_arg(text: str) -> float:
    """argparse type for ``--lock-budget PCT``: a percentage above 0 and at most 100, kept as
    the percentage (so that ``serve`` can pass a value that differs from the default on as
    text); ``lock_budget()`` turns it into what ``session.pacing`` takes."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 < v <= 100:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"wants a percentage above 0 and at most 100, got {text}")
    return v


def lock_budget(pct: float) -> float | None:
    """The parsed ``--lock-budget`` as ``LiveSession`` takes it: a fraction of wall time, or None
    for 100 (read the memory map every tick)."""
    return None if pct >= 100 else pct / 100


def add_lock_budget(p: argparse.ArgumentParser) -> None:
    """``--lock-budget PCT`` (attach, record): see docs/performance.md."""
    p.add_argument(
        "--lock-budget",
        type=lock_budget_arg,
        default=1.0,
        metavar="PCT",
        help="at most PCT%% of the time reading the process's memory map (smaps, pagemap), which holds "
        "its mmap lock; a tick that comes sooner shows the last map (default 1; 100: read every tick)",
    )


def max_fault_rate_arg(text: str) -> int:
    """argparse type for ``--max-fault-rate N``: fault samples a second, 0: every fault (kept
    as 0, not None, so that ``serve`` can pass a value that differs from the default on as text)."""
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of samples a second: {text!r}") from None
    if not 0 <= v <= 1 << 40:
        raise argparse.ArgumentTypeError(f"wants 0 (every fault) to {1 << 40} samples a second, got {text}")
    return v


def add_max_fault_rate(p: argparse.ArgumentParser, default: int | None) -> None:
    """``--max-fault-rate N`` (attach, record, faults): see docs/faults.md, "The sampling cap"."""
    shown = "default 0: every fault" if not default else f"default {default:,}; 0: every fault"
    p.add_argument(
        "--max-fault-rate",
        type=max_fault_rate_arg,
        default=default,
        metavar="N",
        help="at most about N page-fault samples a second: above it one fault in 2, 4, 8... is "
        "sampled and per-mapping counts become estimates; totals stay exact (" + shown + ")",
    )


def output_arg(text: str) -> str:
    """argparse type for ``-o FILE``: any path but the empty one (which was written as the
    current directory: 'cannot write : is a directory', exit 5 for what is a usage error)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name ('-' is standard output)")
    return text


def add_output(p: argparse.ArgumentParser) -> None:
    """``-o FILE``: where a report or JSON document goes (default stdout), written atomically."""
    p.add_argument(
        "-o",
        "--output",
        type=output_arg,
        metavar="FILE",
        default="-",
        help="write the report or JSON to FILE (atomically) instead of stdout",
    )
