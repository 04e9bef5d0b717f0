"""What a TUI source hands the app each tick: ``Frame``, with the system's writeback
state (``Writeback``) and the process-level counters read on a tick that kept the map
(``ProcessVitals``). In memory only, except ``ProcessVitals``, which a recording's
frame carries (``model.recording.PatchFrame.vitals``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from .snapshot import UTC_TIME_PATTERN, Count, FaultTick, Snapshot


class Writeback(Struct, frozen=True, gc=False):
    """System-wide writeback state: /proc/meminfo and the vm tunables; null: could not be read."""

    dirty: Count | None  # bytes waiting to be written back (meminfo Dirty)
    writeback: Count | None  # bytes being written back right now (meminfo Writeback)
    dirty_expire_s: float | None  # vm.dirty_expire_centisecs: age at which dirty data must be written
    dirty_writeback_s: float | None  # vm.dirty_writeback_centisecs: how often the flusher wakes (0: never)


class ProcessVitals(Struct, frozen=True, gc=False):
    """The process-level numbers that can be read without the process's mmap lock:
    /proc/PID/stat (state, threads, fault counts) and /proc/PID/status (resident and
    swapped memory, from the kernel's per-process counters). A live session reads them
    at every tick, also those the lock budget keeps from reading the map, so they move on
    while the map shown is kept (docs/kernel-notes.md, "What /proc/PID/stat and status read")."""

    taken_at: Annotated[
        str, Meta(pattern=UTC_TIME_PATTERN, description="When they were read: ISO 8601, UTC.")
    ]
    state: Annotated[str, Meta(description="State letter from /proc/PID/stat (R, S, D, T, t, Z, ...).")]
    threads: Count
    minor_faults: Annotated[int, Meta(ge=0, description="minflt from /proc/PID/stat.")]
    major_faults: Annotated[int, Meta(ge=0, description="majflt from /proc/PID/stat.")]
    rss: Annotated[
        Count | None,
        Meta(
            description=(
                "Bytes resident (VmRSS of /proc/PID/status: anonymous, file and shmem pages); "
                "null when status has no VmRSS (no memory map)."
            )
        ),
    ]
    swap: Annotated[
        Count | None, Meta(description="Bytes swapped out (VmSwap of /proc/PID/status); null: absent.")
    ]


class Frame(Struct, frozen=True):
    """What a TUI source hands the app each tick."""

    snapshot: Snapshot
    faults: FaultTick | None = None
    gone: bool = False  # the process has exited; ``snapshot`` is the last one taken
    message: str | None = None  # e.g. why it is gone
    writeback: Writeback | None = None  # system-wide, read with the snapshot (live sources)
    # working-set view on: the snapshot's smaps "referenced" counts the bytes touched
    # in the last ``wss_interval`` seconds (referenced bits reset then); None: off
    wss_interval: float | None = None
    # live: the map was not read again this tick (the lock budget held the read back): one line
    # saying how old ``snapshot`` is and why; None: read this tick (or not a live source)
    held: str | None = None
    # the process-level counters read this tick (live sources and recordings that have them): the
    # header shows them instead of the snapshot's ``process`` fields and RSS/swap totals, which
    # they outdate while ``snapshot`` is kept (``held``)
    vitals: ProcessVitals | None = None
