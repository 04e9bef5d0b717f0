"""Running `vmainspect record` as a subprocess and watching its file grow."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def recorder(pid, out, *extra) -> Iterator[subprocess.Popen]:
    """`vmainspect record PID -o OUT EXTRA...`, killed on leaving if it still runs."""
    rec = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "record", str(pid), "-o", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield rec
    finally:
        if rec.poll() is None:
            rec.kill()
        rec.wait()
        rec.stdout.close()
        rec.stderr.close()


def frames_written(path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.startswith(b'{"t":') and b'"note"' not in line[:40])
    except FileNotFoundError:
        return 0


def wait_frames(path, n, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while frames_written(path) < n:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "recorder wrote no frames"
        time.sleep(0.02)
