"""The cap on page-fault samples per second: which sample period the next window uses.

Every sampled fault writes a 48-byte record in the faulting thread's context, so
a process that faults 850,000 times a second pays for 850,000 records a second
(about a fifth of its throughput on the benchmark target, docs/performance.md),
and the sampler spends about half a CPU decoding them. With a cap of
``max_rate`` samples a second, the sampler raises the sample period after a
window whose faults would have written more than that, to the smallest power of
two (times the base period) that brings the rate under the cap, and lowers it
again when the rate falls under a quarter of the cap (to the smallest period that
keeps it under half the cap: the gap between the two keeps a steady rate near
the cap from switching every window).

What stays exact: the window's minor and major totals (the kernel's counters in
/proc/PID/stat, else the events' own counts: both count every fault whatever
the period; see ``RateCap.window`` for why the kernel's first). What becomes an estimate: every
figure built from samples (per mapping, VMA, symbol, thread), scaled by the
period in force during the window (``FaultTick.period``).

The kernel side (kernel/events/core.c, ``_perf_event_period``): the ioctl sets
the event's ``attr.sample_period`` and ``hw.sample_period`` and zeroes
``period_left``, so the next fault is sampled and every ``period``-th after it;
counting is not affected. It changes only the event the fd names: the copies
that threads created since the opening inherited (per-CPU mode) keep the period
in force when the thread was created (``inherit_event`` copies the parent
event's attr then), so their samples carry the current weight though their
period may differ; the totals stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

MAX_PERIOD = 1 << 40  # far above any fault rate a machine reaches in a second
MIN_WINDOW_S = 0.05  # shorter windows say too little about the rate to change the period
DEFAULT_MAX_RATE = 20_000  # samples a second for the live view and record (docs/faults.md)

K = TypeVar("K")


def next_period(current: int, base: int, faults_per_s: float, max_rate: int) -> int:
    """The sample period for the next window.

    ``current``: the period of the window just ended (``base`` times a power of two);
    ``faults_per_s``: the faults it counted per second (exact, not samples x period);
    ``max_rate``: samples a second allowed (>= 1). Returns ``base`` times a power of two.
    """
    if max_rate < 1 or base < 1 or current < base:
        raise ValueError("max_rate and base must be >= 1, current >= base")
    if faults_per_s / current > max_rate:
        p = current
        while faults_per_s / p > max_rate and p < MAX_PERIOD:
            p *= 2
        return p
    if current > base and faults_per_s / current < max_rate / 4:
        p = base
        while faults_per_s / p > max_rate / 2 and p < current:
            p *= 2
        return p
    return current


def scaled_pairs(counts: Mapping[K, tuple[int, int]], w: int) -> dict[K, tuple[int, int]]:
    """(minor, major) counts of samples as estimated faults: each sample stands for ``w``."""
    if w == 1:
        return dict(counts)
    return {k: (a * w, b * w) for k, (a, b) in counts.items()}


class RateCap:
    """The sampler's cap state: the period in force, the counters at the last tick."""

    def __init__(self, base: int, max_rate: int, expected_rate: float | None = None) -> None:
        """``expected_rate``: the faults a second the process was seen taking just before the
        events open (None: unknown); the first window's period is chosen from it, so that a
        busy process does not pay for a first window of every fault."""
        if max_rate < 1:
            raise ValueError("max_rate must be >= 1 (None: no cap)")
        self.base = base
        self.max_rate = max_rate
        self.period = base if expected_rate is None else next_period(base, base, expected_rate, max_rate)
        # (/proc minflt/majflt or None, the events' counts) at the last tick
        self.last: tuple[tuple[int, int] | None, tuple[int, int]] | None = None

    def window(
        self, proc: tuple[int, int] | None, events: tuple[int, int], window_s: float
    ) -> tuple[tuple[int, int], int]:
        """The window's exact (minor, major), and the period for the next window, kept in
        ``period`` (unchanged after a window too short to tell).

        ``proc``: the kernel's counters now (/proc/PID/stat), the totals where both ends
        were read; else ``events``, the events' own counts. The kernel's first, because the
        events' counts were seen to fall short of them by 400-2,800 faults in some runs
        around a switch from period 1 (Linux 6.18, ~1M faults/s). The likely cause: the first
        overflow after the ioctl is counted twice (``perf_swevent_set_period`` divides by
        the old period), the second is throttled when the period-1 rate was above
        kernel.perf_event_max_sample_rate, and a throttled software event is stopped, so it
        neither samples nor counts until the next scheduler tick unthrottles it."""
        last_proc, last_events = self.last or (proc, events)
        self.last = (proc, events)
        now, then = (proc, last_proc) if proc is not None and last_proc is not None else (events, last_events)
        exact = (max(0, now[0] - then[0]), max(0, now[1] - then[1]))
        if window_s >= MIN_WINDOW_S:
            self.period = next_period(self.period, self.base, sum(exact) / window_s, self.max_rate)
        return exact, self.period
