"""Small C programs as test targets: compiled per test module, stopped at known points.

Each program prints one line (the addresses the test needs) and stops itself
with SIGSTOP; ``run_to_stop()`` lets it do its work until it prints "done"
and stops again, so a test's window around that work is exact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest
from targets import wait_stopped


def compile_c(
    source: str, d: str | os.PathLike, name: str, *, flags: tuple[str, ...] = ("-O1",), cxx: bool = False
) -> str:
    """``source`` compiled as ``d/name`` (C, or C++ with ``cxx``); skips the test without a compiler."""
    compiler = shutil.which("g++") if cxx else shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip(f"needs {'g++' if cxx else 'a C compiler (gcc)'} to build the target")
    src = os.path.join(d, name + (".cc" if cxx else ".c"))
    with open(src, "w") as f:
        f.write(source)
    exe = os.path.join(d, name)
    subprocess.run([compiler, *flags, "-o", exe, src], check=True, capture_output=True)
    return exe


class StoppedProgram:
    """A program started with ``argv``, stopped after printing its first line (``line``)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.line = self.proc.stdout.readline()
        if not self.line:
            self.proc.wait()
            raise RuntimeError(f"{argv[0]} exited with {self.proc.returncode}")
        self.pid = self.proc.pid  # unshare, sh and setpriv exec the target: the same process
        wait_stopped(self.pid)

    def run_to_stop(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        assert self.proc.stdout.readline().strip() == "done"
        wait_stopped(self.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
