"""Watching `vmainspect demo` (and `crash`) processes from tests: their workloads, their
temporary folders, and whether a process is gone."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from vmainspect.demo.control import PREFIX, temp_root


def gone(pid: int, timeout: float = 30.0) -> bool:
    """True once ``pid`` no longer exists (or is a zombie nobody has reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


def workloads(proc: psutil.Process) -> list[psutil.Process]:
    """The demo workload processes among ``proc``'s children."""
    found = []
    for c in proc.children():
        try:
            if "demo.workload" in " ".join(c.cmdline()):
                found.append(c)
        except psutil.Error:  # a short-lived helper that already went
            pass
    return found


def temp_folders(pid: int) -> list[str]:
    """The temporary folders of the demo (or crash) process ``pid``."""
    return [n for n in os.listdir(temp_root()) if n.startswith(f"{PREFIX}{pid}-")]


def end(p: subprocess.Popen) -> None:
    """Kill ``p`` if it still runs, reap it and close its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            f.close()
