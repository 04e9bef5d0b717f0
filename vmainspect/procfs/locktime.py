"""How long a collect spent in reads that walk the target's memory under its mmap lock.

Reading /proc/PID/smaps or smaps_rollup makes the kernel walk every VMA's
page tables with the target's mmap lock held for reading, and a PAGEMAP_SCAN
ioctl or a pagemap read holds it for the range it walks: while it is held, the
target's own mmap, munmap, mprotect and page faults that need the lock for
writing wait. /proc/PID/maps, kpageflags, kpagecount and cachestat take no
lock of the target. ``LockTime`` is a side channel that ``snapshot.collect``
and ``procfs.pages`` fill when given one (the Snapshot does not change): the
CPU time of the reading thread during each such read, summed. CPU time, not
wall time: the kernel generates the text in the reading thread's system call,
so that is when the lock can be held, while the wall time of a read that runs
beside Python code also counts the waits for the GIL between system calls (2-3
times the CPU time for smaps read during a collect, measured on Linux 6.18),
when no lock is held. It is an upper bound: the kernel drops the lock between
the calls of a read (smaps, a seq_file, takes it once per call, about a page
of text) and between 2 MiB chunks of pagemap, and smaps_rollup yields it to a
waiting writer.
``session.pacing`` spaces collects out so that this time stays a small
fraction of the target's wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def now() -> float:
    """The calling thread's CPU time (user and system), in seconds: what ``LockTime`` adds up."""
    return time.thread_time()


class LockTime:
    """CPU seconds per kind of read (``"smaps"``, ``"smaps_rollup"``, ``"pagemap"``); thread-safe."""

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
        """Add the CPU time this thread spends in the ``with`` body to ``name`` (also when it raises)."""
        t = now()
        try:
            yield
        finally:
            self.add(name, now() - t)


@contextmanager
def measured(timer: LockTime | None, name: str) -> Iterator[None]:
    """``timer.measure(name)``, or nothing when there is no timer."""
    if timer is None:
        yield
    else:
        with timer.measure(name):
            yield
