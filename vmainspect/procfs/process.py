"""A process as an identity, and the one place that decides whether it is still there.

A PID alone does not name a process: once it exits and is reaped, the kernel
may give the number to another one. ``ProcessIdentity`` is (pid, start time),
as psutil keeps it: the start time (field 22 of /proc/PID/stat, clock ticks
after boot) differs between two processes that held the same PID.

``liveness()`` reads /proc/PID/stat once and says running, zombie, exited
(no such process) or reused. ``MmProbe`` proves that a memory map read from
/proc was not cut short by the kernel releasing it (see docs/kernel-notes.md,
"A read of smaps ends early, without an error, when the mm is released").
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from ..errors import ProcessGone
from .procstat import StatInfo, parse_stat
from .reader import ProcReader


@dataclass(frozen=True)
class ProcessIdentity:
    """(pid, start time): what names one process for its whole life."""

    pid: int
    starttime: int  # clock ticks after boot

    @classmethod
    def of(cls, stat: StatInfo) -> ProcessIdentity:
        return cls(stat.pid, stat.starttime)


class Liveness(enum.Enum):
    RUNNING = "running"  # the same process, not exiting
    EXITING = "exiting"  # the same process, its exit under way (PF_EXITING): its memory is going
    ZOMBIE = "zombie"  # exited, not yet reaped by its parent: no memory left
    EXITED = "exited"  # no process with this PID
    REUSED = "reused"  # the PID now names another process


def describe(pid: int, state: Liveness) -> str:
    """One line for the user."""
    return {
        Liveness.RUNNING: f"process {pid} is running",
        Liveness.EXITING: f"process {pid} is exiting",
        Liveness.ZOMBIE: f"process {pid} exited (a zombie until its parent reaps it)",
        Liveness.EXITED: f"process {pid} exited",
        Liveness.REUSED: f"process {pid} exited and its PID was reused by another process",
    }[state]


def classify(identity: ProcessIdentity, stat: StatInfo) -> Liveness:
    """What ``stat`` (read just now) says about the process ``identity`` names."""
    if stat.starttime != identity.starttime:
        return Liveness.REUSED
    if stat.dead:
        return Liveness.ZOMBIE
    if stat.exiting and not stat.kernel_thread:
        return Liveness.EXITING
    return Liveness.RUNNING


def liveness(reader: ProcReader, identity: ProcessIdentity) -> tuple[Liveness, StatInfo | None]:
    """Read /proc/PID/stat once: the state and, unless the PID is free, the stat line.

    AccessDenied propagates (stat is readable by everyone unless /proc is
    mounted with hidepid, and then nothing else would be readable either).
    """
    try:
        stat = parse_stat(reader.read("stat"))
    except ProcessGone:
        return Liveness.EXITED, None
    return classify(identity, stat), stat


class MmProbe:
    """An fd on /proc/PID/maps opened before a read, probed after it.

    The kernel binds a maps/smaps/pagemap file to the process's memory (its
    mm) when the file is opened, and a read after that mm has been released
    (exit, or exec replacing it) returns end-of-file rather than an error.
    So: open the probe before opening smaps; after the last read, one read of
    the probe that returns data proves the mm still had users then, hence
    when smaps (opened after the probe, on the same mm or on none) reached its
    end. An empty probe means no mm: a zombie, a kernel thread, or an exit or
    exec during the read.
    """

    def __init__(self, reader: ProcReader, *, for_file: str = "smaps") -> None:
        """``for_file``: the file the probe guards (errors name it: the same privilege opens both)."""
        self._reader = reader
        self._fd: int | None = reader.open("maps", what=for_file)

    def alive(self) -> bool:
        """True if the mm the probe was opened on still exists (one read, then closed)."""
        if self._fd is None:
            raise ValueError("probe already used")
        fd, self._fd = self._fd, None
        try:
            return bool(self._reader.read_some(fd, 256, "maps"))
        except ProcessGone:
            return False
        finally:
            os.close(fd)

    def still_alive(self) -> bool:
        """Like ``alive()``, but the probe stays open for another look later (one byte read
        at offset 0): a live session asks it at each tick it does not read the map."""
        if self._fd is None:
            raise ValueError("probe already used")
        try:
            return bool(self._reader.pread(self._fd, 1, 0, "maps"))
        except ProcessGone:
            return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
