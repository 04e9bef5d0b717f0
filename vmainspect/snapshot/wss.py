"""Working set: the memory a process actually touches, per VMA and interval.

The method is Brendan Gregg's wss: write ``1`` to /proc/PID/clear_refs (the
kernel clears the accessed bit of every page the process maps, and its
"referenced" page flags), let the process run for an interval, then read
``Referenced`` from smaps: the bytes of each VMA touched since the reset.
Repeat. No root is needed: clear_refs is writable by the process's owner.

This has a cost to the target, which is why it is opt-in everywhere: with its
accessed bits cleared, reclaim sees the process's pages as idle and may
evict or swap them sooner; the first touch of each page after a reset sets
the bit again (a hardware page-table write on x86, cheap but not free). See
docs/kernel-notes.md, "clear_refs and Referenced".

``measure`` runs the whole measurement for the ``wss`` command; the TUI's
working-set view uses ``reset`` after each snapshot and ``accessed_by_vma``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from ..model.wss import WSS_SCHEMA, WssInterval, WssReport, WssVma
from ..procfs.reader import ProcReader
from ..safetext import json_visible

if TYPE_CHECKING:
    from ..model import Snapshot

SCHEMA = WSS_SCHEMA

WARNING = (
    "working set: clears the referenced bits of every page of the process (/proc/PID/clear_refs) "
    "each interval, so reclaim sees its memory as idle and may evict it sooner"
)
NOTE_THP = "a transparent huge page counts whole (2 MiB) in Referenced when any of its pages was touched"
PAGE_IDLE = "kernel/mm/page_idle/bitmap"


def page_idle_note(sys_root: str = "/sys") -> str:
    """What idle page tracking can add here, in one line (it is a per-page view that needs root)."""
    if os.path.exists(f"{sys_root}/{PAGE_IDLE}"):
        return (
            f"idle page tracking ({sys_root}/{PAGE_IDLE}) is present; per-page idle state "
            "is not read by vmainspect (it needs root and PFNs)"
        )
    return (
        f"idle page tracking ({sys_root}/{PAGE_IDLE}) is absent on this kernel "
        "(CONFIG_IDLE_PAGE_TRACKING): no per-page working set, per-VMA counts only"
    )


def reset(pid: int, proc_root: str = "/proc") -> None:
    """Clear the process's referenced bits (AccessDenied / ProcessGone on failure)."""
    ProcReader(pid, proc_root).write("clear_refs", b"1")


def accessed_by_vma(snap: Snapshot) -> dict[int, int]:
    """VMA start -> bytes referenced since the last reset, from a snapshot's smaps."""
    return {v.start: int(v.smaps.get("referenced", 0)) for v in snap.vmas}


def interval_of(snap: Snapshot, t: float) -> WssInterval:
    vmas = [
        WssVma(
            start=v.start,
            end=v.end,
            perms=v.perms,
            path=v.path,
            accessed=int(v.smaps.get("referenced", 0)),
            resident=int(v.smaps.get("rss", 0)),
        )
        for v in snap.vmas
    ]
    return WssInterval(
        t=round(t, 6),
        total_accessed=sum(v.accessed for v in vmas),
        total_resident=sum(v.resident for v in vmas),
        vmas=tuple(vmas),
    )


def measure(
    pid: int,
    interval: float,
    duration: float,
    *,
    proc_root: str = "/proc",
    collect_fn: Callable[..., Snapshot] | None = None,
    on_start: Callable[[], None] | None = None,
    on_interval: Callable[[WssInterval], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WssReport:
    """Reset, wait ``interval``, read Referenced, reset again ... for ``duration`` seconds.

    ``on_start`` is called before the first reset. At least one interval is measured. Raises ProcessGone (the process
    exited or its PID was reused: nothing partial is returned) and
    AccessDenied (clear_refs or smaps not writable/readable).
    """
    if collect_fn is None:
        from .collect import collect

        collect_fn = collect
    first = collect_fn(pid, proc_root=proc_root)  # who the process is; AccessDenied early
    if on_start is not None:
        on_start()  # e.g. say what the reset costs, once the process is known to exist
    n = max(1, round(duration / interval))
    intervals: list[WssInterval] = []
    reset(pid, proc_root)
    t0 = clock()
    for i in range(1, n + 1):
        delay = t0 + i * interval - clock()
        if delay > 0:
            sleep(delay)
        snap = collect_fn(pid, proc_root=proc_root)
        t = clock() - t0
        reset(pid, proc_root)
        if snap.process.create_time != first.process.create_time:
            from ..errors import ProcessGone

            raise ProcessGone(pid, "its PID was reused by another process during the measurement")
        iv = interval_of(snap, t)
        intervals.append(iv)
        if on_interval is not None:
            on_interval(iv)
    return WssReport(
        pid=pid,
        page_size=first.host.page_size,
        interval=interval,
        method="clear_refs",
        intervals=tuple(intervals),
        notes=(WARNING, NOTE_THP, page_idle_note()),
    )


def encode(report: WssReport, indent: int = 2) -> bytes:
    # paths with C1 controls or bidi marks as \uXXXX (safetext.json_visible)
    return bytes(json_visible(msgspec.json.format(msgspec.json.encode(report), indent=indent)))


def decode(data: bytes | str) -> WssReport:
    return msgspec.json.decode(data, type=WssReport)
