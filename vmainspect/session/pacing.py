"""The lock budget: how often a live session may read the process's memory map.

Reading smaps, smaps_rollup and pagemap holds the watched process's mmap
lock (see ``procfs.locktime``); while it is held the process's own mmap,
munmap and page faults that need the lock wait. On a process with tens of
thousands of VMAs one smaps read holds it for tens of milliseconds, and a
1 Hz live view costs such a process several percent of its throughput
(docs/performance.md). The budget bounds that share: after a collect that
held the lock for T seconds, the next collect does not start before
T / budget seconds after that collect started. With the default 1%, a
collect that holds the lock for 5 ms allows one every 0.5 s (never held back
at 1 Hz); one that holds it for 41 ms allows one every 4.1 s.

``Pacer`` does only the arithmetic, on a clock it is given (tests pass a fake
one); ``LiveSession`` asks it before each collect and tells it what each
collect cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..procfs.locktime import LockTime

DEFAULT_LOCK_BUDGET = 0.01  # 1% of wall time


@dataclass(frozen=True)
class HeldBack:
    """Why a step kept the last snapshot instead of reading the map again."""

    until: float  # clock time from which the next collect may start
    since: float  # clock time the kept snapshot's collect started
    lock_s: float  # how long that collect's reads held the process's mmap lock
    reads: tuple[str, ...]  # which reads those were ("smaps", "smaps_rollup", "pagemap")
    budget: float  # the fraction of wall time the reads may hold the lock

    def wait(self, now: float) -> float:
        """Seconds until the next collect may start."""
        return max(0.0, self.until - now)

    def age(self, now: float) -> float:
        """Seconds since the kept snapshot's collect started."""
        return max(0.0, now - self.since)


class Pacer:
    """Decides whether a collect may start now, from what the last one cost.

    ``budget``: the fraction of wall time (0 < budget <= 1) the reads may hold
    the lock; None = no budget (every collect may start). ``clock``: monotonic
    seconds. The first collect may always start.
    """

    def __init__(self, budget: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if budget is not None and not 0.0 < budget <= 1.0:  # also refuses nan
            raise ValueError(f"lock budget must be in (0, 1], got {budget!r}")
        self.budget = budget
        self.clock = clock
        self.next_at: float | None = None  # no collect before this clock time
        self.last_start: float | None = None  # when the last collect started
        self.last_lock: LockTime | None = None  # what it cost
        self.collects = 0

    def held(self) -> HeldBack | None:
        """None if a collect may start now; otherwise until when it may not, and why."""
        if self.budget is None or self.next_at is None or self.last_start is None or self.last_lock is None:
            return None
        if self.clock() >= self.next_at:
            return None
        by_read = self.last_lock.by_read
        reads = tuple(name for name in ("smaps", "smaps_rollup", "pagemap") if name in by_read)
        return HeldBack(self.next_at, self.last_start, self.last_lock.seconds, reads, self.budget)

    @contextmanager
    def collecting(self) -> Iterator[LockTime]:
        """Around one collect: yields the ``LockTime`` to fill; afterwards (also when
        the collect raised: the reads it made held the lock all the same) the next
        collect is due ``lock seconds / budget`` after this one started."""
        start = self.clock()
        spent = LockTime()
        try:
            yield spent
        finally:
            self.collects += 1
            self.last_start, self.last_lock = start, spent
            if self.budget is not None:
                self.next_at = start + spent.seconds / self.budget
