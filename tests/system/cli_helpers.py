"""Helpers for the CLI tests: run vmainspect in a subprocess (optionally as another user)."""

from __future__ import annotations

import os
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
