"""Helpers for the CLI tests: run vmainspect in a subprocess (optionally as another user)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args, user: str | None = None, timeout: float = 120, pythonpath: str = REPO):
    """``vmainspect ARGS`` in a subprocess (as ``user`` if given); the package comes from ``pythonpath``."""
    cmd = [sys.executable, "-m", "vmainspect", *map(str, args)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] + cmd
    env = dict(os.environ, PYTHONPATH=pythonpath)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def one_line_error(r) -> str:
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def free_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


# clock_nanosleep's number, as /proc/PID/syscall shows it (time.sleep's system call)
_CLOCK_NANOSLEEP = {"x86_64": "230", "aarch64": "115"}


def faults_cli_sampling(pid: int) -> bool:
    """The ``faults`` CLI in process ``pid`` samples: its drain thread (named vmi-faults) runs
    and its main thread sleeps between ticks (in clock_nanosleep, per /proc/PID/syscall, which
    only root or the process's owner may read)."""
    try:
        comms = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comms.append(f.read().strip())
        with open(f"/proc/{pid}/syscall") as f:
            nr = f.read().split(" ", 1)[0]
    except OSError:
        return False
    return "vmi-faults" in comms and nr == _CLOCK_NANOSLEEP.get(platform.machine(), "230")
