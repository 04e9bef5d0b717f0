"""The process-level numbers a live session reads on every tick, without the mmap lock.

/proc/PID/stat and /proc/PID/status are generated from the task, its signal
struct and its memory map's counters: neither takes the process's mmap lock
(docs/kernel-notes.md, "What /proc/PID/stat and status read"), so reading them
each tick costs the watched process nothing that the lock budget has to bound.
``read_vitals`` turns the two into a ``model.ProcessVitals``.
"""

from __future__ import annotations

from ..model import ProcessVitals
from ..units import now_iso
from .procstat import StatInfo, parse_stat, parse_status_memory
from .reader import ProcReader


def read_vitals(reader: ProcReader, stat: StatInfo | None = None) -> ProcessVitals:
    """State, threads and fault counts from ``stat`` (read now if not given: the caller
    may have just read it to check the process), resident and swapped bytes from
    /proc/PID/status read now. Raises ProcessGone or AccessDenied as ``reader`` does."""
    taken_at = now_iso()
    if stat is None:
        stat = parse_stat(reader.read("stat"))
    mem = parse_status_memory(reader.read("status"))
    return ProcessVitals(
        taken_at=taken_at,
        state=stat.state,
        threads=stat.num_threads,
        minor_faults=stat.minflt,
        major_faults=stat.majflt,
        rss=mem.rss,
        swap=mem.swap,
    )
