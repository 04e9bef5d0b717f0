"""Pure parsers of a process's small /proc files: stat, status, cmdline, and /proc/stat's btime.

Bytes in, values out; nothing here opens a file (``procfs.reader`` reads).
``ParseError`` is what every procfs parser raises on input in the wrong format.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput


class ParseError(BadInput):
    """A /proc file (or a fixture standing in for one) is not in the expected format."""


@dataclass(frozen=True)
class StatInfo:
    """The fields of /proc/PID/stat (or /proc/PID/task/TID/stat) that vmainspect uses.

    This is the one parser of that line: field numbers below are those of
    proc(5), counted from 1.
    """

    pid: int
    comm: str
    state: str  # field 3: R, S, D, T, t, Z, X, ...
    ppid: int
    minflt: int  # field 10
    majflt: int  # field 12
    num_threads: int  # field 20
    starttime: int  # field 22: clock ticks after boot; with the pid it names a process
    flags: int = 0  # field 9: PF_* bits
    exit_code: int | None = None  # field 52 (Linux 3.5+): the status waitpid() will return, once dead

    @property
    def kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def exiting(self) -> bool:
        """The task has begun to exit (PF_EXITING: set before its memory is released)."""
        return bool(self.flags & PF_EXITING)

    @property
    def dead(self) -> bool:
        """A zombie (exited, not yet reaped) or being reaped."""
        return self.state in DEAD_STATES


PF_EXITING = 0x00000004
PF_KTHREAD = 0x00200000
DEAD_STATES = ("Z", "X", "x")


def parse_stat(data: bytes) -> StatInfo:
    """/proc/PID/stat. The command name may contain spaces and ')': split at the LAST ')'."""
    open_ = data.find(b"(")
    close = data.rfind(b")")
    if open_ < 0 or close < open_:
        raise ParseError(f"stat: no (comm) in {data[:80]!r}")
    f = data[close + 1 :].split()  # f[0] is field 3
    try:
        return StatInfo(
            pid=int(data[:open_]),
            comm=data[open_ + 1 : close].decode("utf-8", "backslashreplace"),
            state=f[0].decode("ascii", "replace"),
            ppid=int(f[1]),
            minflt=int(f[7]),
            majflt=int(f[9]),
            num_threads=int(f[17]),
            starttime=int(f[19]),
            flags=int(f[6]),
            exit_code=int(f[49]) if len(f) > 49 else None,
        )
    except (IndexError, ValueError):
        raise ParseError(f"stat: truncated or malformed: {data[:120]!r}") from None


def parse_status_uid(data: bytes) -> int | None:
    """Real uid from /proc/PID/status (``Uid:\treal\teffective\tsaved\tfs``), None if absent."""
    for line in data.split(b"\n"):
        if line.startswith(b"Uid:"):
            parts = line.split()
            if len(parts) > 1 and parts[1].isdigit():
                return int(parts[1])
    return None


@dataclass(frozen=True)
class StatusMemory:
    """The memory lines of /proc/PID/status, in bytes; None where the line is absent (a
    process without a memory map, a zombie or a kernel thread, has none of them)."""

    rss: int | None  # VmRSS: RssAnon + RssFile + RssShmem
    swap: int | None  # VmSwap


def parse_status_memory(data: bytes) -> StatusMemory:
    """VmRSS and VmSwap of /proc/PID/status (``VmRSS:\t  1234 kB``)."""
    found: dict[bytes, int] = {}
    for line in data.split(b"\n"):
        key, sep, rest = line.partition(b":")
        if sep and key in (b"VmRSS", b"VmSwap"):
            parts = rest.split()
            if len(parts) != 2 or parts[1] != b"kB" or not parts[0].isdigit():
                raise ParseError(f"status: malformed {key.decode()} line: {line[:80]!r}")
            found[key] = int(parts[0]) * 1024
    return StatusMemory(found.get(b"VmRSS"), found.get(b"VmSwap"))


def parse_cmdline(data: bytes) -> tuple[str, ...]:
    """NUL-separated /proc/PID/cmdline -> arguments (empty for kernel threads and zombies)."""
    if not data:
        return ()
    if data.endswith(b"\0"):
        data = data[:-1]
    return tuple(a.decode("utf-8", "backslashreplace") for a in data.split(b"\0"))


def parse_btime(data: bytes) -> int | None:
    """Boot time (seconds since the epoch) from the ``btime`` line of /proc/stat."""
    for line in data.split(b"\n"):
        if line.startswith(b"btime "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None
