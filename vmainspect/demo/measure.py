"""What the demo measures: questions answered from snapshots and /proc, never from the workload.

Every function here reads the kernel's accounting: VMAs and per-page runs
of a ``Snapshot`` (collect(pid, pages=True)), fault counters of its
``ProcessInfo``, and a few /proc files read through ProcReader. A page
range is given as (address, length) and pages are numbered from the
address. ``None`` means the kernel did not let us see it (no root).
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import VmaInspectError
from ..model import ABSENT, FILE_DIRTY, SWAPPED, Snapshot, Vma
from ..procfs.cachestat import CacheCounts, page_cache_of
from ..procfs.procstat import parse_stat
from ..procfs.reader import ProcReader

NOT_PRESENT = (ABSENT, SWAPPED)
UNMAPPED = "unmapped"  # a page with no VMA: before mmap, after munmap
PFN_MASK = (1 << 55) - 1


def page_size(snap: Snapshot) -> int:
    return snap.host.page_size


def overlapping(snap: Snapshot, addr: int, length: int) -> list[Vma]:
    """VMAs that overlap [addr, addr + length), in address order."""
    end = addr + length
    return [v for v in snap.vmas if v.start < end and v.end > addr]


def covered(snap: Snapshot, addr: int, length: int) -> bool:
    """True if VMAs cover every byte of [addr, addr + length) with no hole."""
    at = addr
    for v in overlapping(snap, addr, length):
        if v.start > at:
            return False
        at = max(at, v.end)
    return at >= addr + length


def pages_in(
    snap: Snapshot,
    addr: int,
    length: int,
    states: tuple[str, ...] | None = None,
    *,
    exclude: tuple[str, ...] = (),
) -> set[int]:
    """Page numbers (from ``addr``) of the range whose state is in ``states`` (or not in ``exclude``)."""
    ps = page_size(snap)
    first_page, last_page = addr // ps, (addr + length + ps - 1) // ps
    out: set[int] = set()
    for v in overlapping(snap, addr, length):
        if v.pages is None:
            raise ValueError("snapshot was taken without pages")
        v0 = v.start // ps
        for r in v.pages.runs:
            if (states is not None and r.state not in states) or r.state in exclude:
                continue
            lo, hi = max(v0 + r.first, first_page), min(v0 + r.first + r.count, last_page)
            out.update(range(lo - first_page, hi - first_page))
    return out


def present(snap: Snapshot, addr: int, length: int) -> set[int]:
    """Pages of the range that are in the page tables (incl. the zero page)."""
    return pages_in(snap, addr, length, exclude=NOT_PRESENT)


def dirty_file(snap: Snapshot, addr: int, length: int) -> set[int] | None:
    """File pages of the range with kpageflags DIRTY; None without kpageflags (root)."""
    if not snap.capabilities.kpageflags:
        return None
    return pages_in(snap, addr, length, (FILE_DIRTY,))


def shared(snap: Snapshot, addr: int, length: int) -> set[int] | None:
    """Present pages of the range mapped more than once (kpagecount > 1); None without root."""
    if not snap.capabilities.kpagecount:
        return None
    ps = page_size(snap)
    first_page, last_page = addr // ps, (addr + length + ps - 1) // ps
    out: set[int] = set()
    for v in overlapping(snap, addr, length):
        if v.pages is None or v.pages.shared_runs is None:
            return None
        v0 = v.start // ps
        for f, n in v.pages.shared_runs:
            lo, hi = max(v0 + f, first_page), min(v0 + f + n, last_page)
            out.update(range(lo - first_page, hi - first_page))
    return out


def faults(before: Snapshot, after: Snapshot) -> tuple[int, int]:
    """(minor, major) page faults the process took between the two snapshots."""
    return (
        after.process.minor_faults - before.process.minor_faults,
        after.process.major_faults - before.process.major_faults,
    )


def fd_target(pid: int, fd: int, proc_root: str = "/proc") -> str | None:
    """Where /proc/PID/fd/FD points, or None if that descriptor is not open."""
    return ProcReader(pid, proc_root).readlink(f"fd/{fd}")


def death(pid: int, proc_root: str = "/proc") -> dict[str, Any]:
    """How a dead, not yet reaped child ended, from its /proc/PID/stat.

    Field 52 (exit_code, Linux 3.5+) is the status waitpid() will return.
    Returns {"state", "signal", "exit_code"}; signal/exit_code are None when
    not applicable.
    """
    st = parse_stat(ProcReader(pid, proc_root).read("stat"))
    state, status = st.state, st.exit_code
    sig = code = None
    if status is not None and state in ("Z", "X"):
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        elif os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
    return {"state": state, "signal": sig, "exit_code": code}


def file_pages_equal(path: str, page: int, pages: list[int], expected: Callable[[int], bytes]) -> bool:
    """True if, for every page number in ``pages``, the file holds ``expected(p)`` there (read(2))."""
    with open(path, "rb") as f:
        for p in pages:
            want = expected(p)
            f.seek(p * page)
            if f.read(len(want)) != want:
                return False
    return True


def fault_around_bytes() -> int | None:
    """/sys/kernel/debug/fault_around_bytes, or None (needs root and debugfs mounted)."""
    try:
        with open("/sys/kernel/debug/fault_around_bytes") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_ahead_kb(path: str) -> int | None:
    """The read_ahead_kb of the block device holding ``path`` (sysfs), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    base = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for cand in (f"{base}/queue/read_ahead_kb", f"{base}/../queue/read_ahead_kb"):
        try:
            with open(cand) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    return None


def page_states(snap: Snapshot, addr: int, length: int) -> list[str]:
    """The state of every page of [addr, addr + length), ``unmapped`` where no VMA covers it."""
    ps = page_size(snap)
    first_page, npages = addr // ps, (length + ps - 1) // ps
    out = [UNMAPPED] * npages
    for v in overlapping(snap, addr, length):
        if v.pages is None:
            raise ValueError("snapshot was taken without pages")
        v0 = v.start // ps
        for r in v.pages.runs:
            lo, hi = max(v0 + r.first, first_page), min(v0 + r.first + r.count, first_page + npages)
            for p in range(lo - first_page, hi - first_page):
                out[p] = r.state
    return out


def transitions(before: Snapshot, after: Snapshot, addr: int, length: int) -> Counter[tuple[str, str]]:
    """(state before, state after) -> pages of the range that changed state between the snapshots."""
    pairs = zip(page_states(before, addr, length), page_states(after, addr, length))
    return Counter((a, b) for a, b in pairs if a != b)


def cache(path: str) -> CacheCounts | None:
    """The page-cache counts of ``path`` (cachestat(2), no root needed), or None if refused."""
    try:
        return page_cache_of(path)
    except OSError:
        return None


def cached_dirty(path: str) -> int | None:
    """Pages of ``path`` dirty in the page cache (cachestat), or None if it cannot be asked."""
    c = cache(path)
    return None if c is None else c.dirty


def pfns(pid: int, addr: int, length: int, page: int) -> list[int | None] | None:
    """The page frame number of each page of the range (None: not present); None without root.

    From /proc/PID/pagemap: bits 0-54 hold the PFN of a present page, and the
    kernel zeroes them for a reader without CAP_SYS_ADMIN (see
    docs/kernel-notes.md).
    """
    reader = ProcReader(pid)
    fd = reader.open("pagemap")
    try:
        raw = reader.pread(fd, 8 * (length // page), addr // page * 8)
    finally:
        os.close(fd)
    out: list[int | None] = []
    for (e,) in struct.iter_unpack("<Q", raw):
        out.append(e & PFN_MASK if e >> 63 & 1 else None)
    if any(p for p in out) or not any(p is not None for p in out):
        return out
    return None  # present pages with PFN 0: hidden from this user


def read_mem(pid: int, addr: int, n: int) -> bytes | None:
    """``n`` bytes of the process's memory at ``addr`` (/proc/PID/mem), or None if refused."""
    reader = ProcReader(pid)
    try:
        fd = reader.open("mem")
    except (OSError, VmaInspectError):
        return None
    try:
        return reader.pread(fd, n, addr, "mem")
    except (OSError, VmaInspectError):
        return None
    finally:
        os.close(fd)


def global_numbers(name: str) -> dict[str, int]:
    """``/proc/vmstat``-style "name value" lines, or /proc/meminfo in bytes; {} if unreadable."""
    try:
        raw = ProcReader(0).read_global(name)
    except (OSError, VmaInspectError):
        return {}
    out: dict[str, int] = {}
    for line in raw.decode("ascii", "replace").splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    return out


def thp_setting(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str | None:
    """The selected word of a THP ``enabled`` file ("always", "madvise", "never", "inherit")."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``cond`` (a state of another process) until true or ``timeout`` seconds passed."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc/PID/stat, or None if it is gone."""
    try:
        raw = ProcReader(pid).read("stat")
    except VmaInspectError:
        return None
    return parse_stat(raw).state
