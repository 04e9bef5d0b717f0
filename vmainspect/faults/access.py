"""What perf_event_open needs from the system, and why it was refused: limits and settings.

- ``task_ids``: the threads in /proc/PID/task;
- ``raise_nofile``: the soft open-file limit raised toward the hard one when the
  events (two per thread and CPU) may not fit, as perf does;
- ``paranoid``: ``kernel.perf_event_paranoid`` as text;
- ``refusal_reason``: one line saying why sampling is off, for counters mode;
- ``thread_counters``, ``deltas``: what counters mode shows instead, the kernel's
  per-thread minflt/majflt (/proc/PID/task/TID/stat) and their growth.
"""

from __future__ import annotations

import errno
import os

from ..errors import AccessDenied, ProcessGone, VmaInspectError
from ..procfs.procstat import ParseError, StatInfo, parse_stat
from ..procfs.reader import ProcReader


def task_ids(proc_root: str, pid: int) -> list[int]:
    """The thread ids in /proc/PID/task; ProcessGone, AccessDenied as the listing fails."""
    path = f"{proc_root}/{pid}/task"
    try:
        return [int(t) for t in os.listdir(path) if t.isdigit()]
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            raise ProcessGone(pid) from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise AccessDenied(pid, "task list", "needs to be the process's user or root") from None
        raise


def raise_nofile(need: int) -> None:
    """Raise the soft open-file limit toward the hard one when ``need`` fds may not fit (as perf does)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(
                resource.RLIMIT_NOFILE,
                (hard if hard == resource.RLIM_INFINITY else min(hard, max(need, soft)), hard),
            )
    except (ImportError, ValueError, OSError):
        pass


def paranoid(proc_root: str) -> str:
    """kernel.perf_event_paranoid as text (\"?\" when it cannot be read)."""
    try:
        return ProcReader(0, proc_root).read_global("sys/kernel/perf_event_paranoid").decode().strip()
    except (VmaInspectError, OSError, UnicodeDecodeError):
        return "?"


def refusal_reason(pid: int, proc_root: str, e: OSError) -> str:
    """Why perf_event_open was refused, in one line, ending with what is shown instead."""
    par = paranoid(proc_root)
    who = "root" if os.geteuid() == 0 else "not root"
    try:
        owner = os.stat(f"{proc_root}/{pid}").st_uid
    except OSError:
        owner = None
    if e.errno in (errno.EACCES, errno.EPERM):
        if owner is not None and owner != os.geteuid() and os.geteuid() != 0:
            why = (
                f"perf_event_open refused: process {pid} belongs to another user "
                f"(needs root or CAP_PERFMON; kernel.perf_event_paranoid={par})"
            )
        else:
            why = (
                f"perf_event_open refused (kernel.perf_event_paranoid={par}, {who}"
                f"{'; seccomp or a container profile may block it' if e.errno == errno.EPERM else ''})"
            )
    elif e.errno == errno.ENOSYS:
        why = "perf_event_open is not available on this kernel"
    elif e.errno == errno.ENOENT:
        why = "the kernel has no software page-fault events (CONFIG_PERF_EVENTS)"
    else:
        why = f"perf_event_open failed: {os.strerror(e.errno or 0)}"
    return why + ": showing /proc fault counters instead"


def faults_of(stat: StatInfo) -> tuple[int, int]:
    return stat.minflt, stat.majflt


def thread_counters(reader: ProcReader, tids: list[int]) -> dict[int, tuple[int, int]]:
    """tid -> (minflt, majflt) of each thread still there."""
    out: dict[int, tuple[int, int]] = {}
    for tid in tids:
        try:
            out[tid] = faults_of(parse_stat(reader.read(f"task/{tid}/stat")))
        except (ProcessGone, AccessDenied, ParseError):
            continue
    return out


def deltas(now: dict[int, tuple[int, int]], before: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Per-thread growth of the counters (a thread new since ``before`` from zero)."""
    out = {}
    for tid, (mi, ma) in now.items():
        b = before.get(tid, (0, 0))
        out[tid] = (max(0, mi - b[0]), max(0, ma - b[1]))
    return out
