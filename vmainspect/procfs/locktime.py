"""How long a collect spent in reads that walk the target's memory under its mmap lock.

Reading /proc/PID/smaps or smaps_rollup makes the kernel walk every VMA's
page tables with the target's mmap lock held for reading, and a PAGEMAP_SCAN
ioctl or a pagemap read holds it for the range it walks: while it is held, the
target's own mmap, munmap, mprotect and page faults that need the lock for
writing wait. /proc/PID/maps, kpageflags, kpagecount and cachestat take no
lock of the target. ``LockTime`` is a side channel that ``snapshot.collect``
and ``procfs.pages`` fill when given one (the Snapshot does not change): the
wall time of each such read, summed (smaps and smaps_rollup are read by two
threads at once, so the sum bounds the time the lock was taken from above).
``session.pacing`` spaces collects out so that this time stays a small
fraction of the target's wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class LockTime:
    """Wall seconds per kind of read (``"smaps"``, ``"smaps_rollup"``, ``"pagemap"``); thread-safe."""

    def __init__(self) -> None:
        self.by_read: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """All the reads together."""
        with self._lock:
            return sum(self.by_read.values())

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.by_read[name] = self.by_read.get(name, 0.0) + seconds

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Add the wall time of the ``with`` body to ``name`` (also when it raises)."""
        t = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - t)


@contextmanager
def measured(timer: LockTime | None, name: str) -> Iterator[None]:
    """``timer.measure(name)``, or nothing when there is no timer."""
    if timer is None:
        yield
    else:
        with timer.measure(name):
            yield
