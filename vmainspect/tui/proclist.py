"""The process list behind the picker and ``attach --name`` (psutil; no textual)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

from ..errors import VmaInspectError
from ..procfs.procstat import parse_stat
from ..procfs.reader import ProcReader


@dataclass(frozen=True)
class ProcRow:
    pid: int
    user: str
    name: str
    cmdline: str
    rss: int | None  # None: not readable
    minor_faults: int | None
    major_faults: int | None


def _faults(pid: int) -> tuple[int | None, int | None]:
    try:
        st = parse_stat(ProcReader(pid).read("stat"))
    except (VmaInspectError, ValueError, OSError):
        return None, None
    return st.minflt, st.majflt


def launchers() -> set[int]:
    """The ancestors of this process whose command line runs vmainspect: sudo, timeout, a shell's
    ``-c``, ``serve``. Their command lines hold ours, ``--name PATTERN`` included, so they match
    any pattern given: ``sudo vmainspect attach --name postgres`` matched sudo, and a typo
    attached to it (or ``serve`` refused: two matches)."""
    out: set[int] = set()
    try:
        parents = psutil.Process().parents()
    except psutil.Error:
        return out
    for p in parents:
        try:
            if any("vmainspect" in arg for arg in p.cmdline()):
                out.add(p.pid)
        except psutil.Error:  # gone, or another user's: not ours to leave out
            continue
    return out


def list_processes(*, include_self: bool = False) -> list[ProcRow]:
    """Every process we can see (kernel threads, which have no memory map, left out); without
    ``include_self``, this process and the launchers() that run it are left out too."""
    skip = set() if include_self else {os.getpid(), *launchers()}
    out = []
    for p in psutil.process_iter(["pid", "username", "name", "cmdline", "memory_info"]):
        info = p.info
        pid = info["pid"]
        if pid in skip:
            continue
        cmd = info.get("cmdline")
        mem = info.get("memory_info")
        if not cmd and (mem is None or mem.vms == 0):
            continue  # kernel thread
        mi, ma = _faults(pid)
        out.append(
            ProcRow(
                pid,
                info.get("username") or "?",
                info.get("name") or "?",
                " ".join(cmd or ()),
                mem.rss if mem is not None else None,
                mi,
                ma,
            )
        )
    return out


def match(rows: list[ProcRow], pattern: str) -> list[ProcRow]:
    """Processes whose name or command line matches ``pattern`` (a regex; plain text works)."""
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error:
        rx = re.compile(re.escape(pattern), re.IGNORECASE)
    return [r for r in rows if rx.search(r.name) or rx.search(r.cmdline)]
