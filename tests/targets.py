"""Spawn helper processes with known mappings, stopped for inspection.

A target runs a snippet of Python. The snippet builds mappings and puts what
the test needs to know (addresses, paths) into the dict ``report``; the
prelude gives it ``libc`` (ctypes), ``addr_of(mmap_obj)`` and ``PAGE``. The
child then prints ``report`` as one JSON line and stops itself with SIGSTOP,
so the kernel's view of it cannot change while the test reads /proc.

    with spawn_target(code) as t:
        t.pid, t.report["addr"]
        t.resume_and_wait_stop()    # optional: run the next stage of the snippet

A snippet may call ``checkpoint(report)`` several times: each call reports and
stops; ``t.resume_and_wait_stop()`` continues to the next one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field

PRELUDE = r'''
import ctypes, ctypes.util, json, mmap, os, signal, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
_keep = []
def addr_of(m):
    """Start address of a Python mmap object."""
    buf = (ctypes.c_char * 1).from_buffer(m)
    a = ctypes.addressof(buf)
    del buf
    return a
def checkpoint(report):
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
report = {}
'''

EPILOGUE = r"""
checkpoint(report)
"""


@dataclass
class Target:
    proc: subprocess.Popen
    report: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_report(self, timeout: float) -> None:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"target exited before reporting: {err}")
        self.report = json.loads(line)
        wait_stopped(self.pid, timeout)

    def resume_and_wait_stop(self, timeout: float = 30.0) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self._read_report(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if f:
                f.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


# the prefix that runs a command as user nobody (group nogroup: Debian has no group "nobody")
def many_vmas_code(vmas: int) -> str:
    """Python code that maps ``vmas`` pages and makes every other one read-only, so the kernel
    cannot merge neighbours: one VMA per page (the lock-budget tests' targets start with it)."""
    return f"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
page = mmap.PAGESIZE
base = libc.mmap(None, {vmas} * page, 3, 0x22, -1, 0)
for i in range(0, {vmas}, 2):
    if libc.mprotect(base + i * page, page, 1) != 0:
        sys.exit(1)
"""


AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def nobody_can_import(module: str) -> bool:
    """True when this Python, run as nobody, can import ``module`` (it may live in a private home)."""
    return (
        subprocess.run([*AS_NOBODY, sys.executable, "-c", f"import {module}"], capture_output=True).returncode
        == 0
    )


def kill_quietly(pid: int | None) -> None:
    """SIGKILL ``pid`` if it is set and still there."""
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def proc_state(pid: int) -> bytes:
    """The one-letter state of /proc/PID/stat (after the last ')': a name may hold one)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0]


def wait_state(pid: int, states: tuple[bytes, ...] = (b"T", b"t"), timeout: float = 30.0) -> None:
    """Poll until the process is in one of ``states`` (stopped, by default)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_state(pid) in states:
            return
        time.sleep(0.002)
    raise TimeoutError(f"{pid} never reached {states}")


def wait_stopped(pid: int, timeout: float = 30.0) -> None:
    wait_state(pid, (b"T", b"t"), timeout)


def spawn_target(
    code: str, *, timeout: float = 30.0, user: str | None = None, env: dict | None = None
) -> Target:
    """Run ``code`` in a fresh Python, wait for its first checkpoint (stopped)."""
    src = PRELUDE + textwrap.dedent(code) + EPILOGUE
    cmd = [sys.executable, "-c", src]
    if user is not None:
        import pwd

        # the user's own group: nobody's is "nogroup" on Debian
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        gid = entry.pw_gid
        cmd = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups"] + cmd
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    t = Target(proc)
    try:
        t._read_report(timeout)
    except BaseException:
        t.kill()
        raise
    return t


def after_reading(monkeypatch, name: str, action) -> None:
    """Make vmainspect's ProcReader call ``action()`` right after it reads
    /proc/PID/NAME: a process that exits (or vanishes) in the middle of a collect."""
    from vmainspect.procfs.reader import ProcReader

    real = ProcReader.read

    def read(reader, what):
        data = real(reader, what)
        if what == name:
            action()
        return data

    monkeypatch.setattr(ProcReader, "read", read)


def read_smaps_kb(pid: int) -> list[tuple[int, int, dict[str, int]]]:
    """The kernel's own smaps, parsed the simplest possible way, for comparisons.

    Deliberately naive and independent of vmainspect's parser. kB fields
    are returned in bytes; other numeric fields as they are.
    """
    out = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head, _, rest = line.partition(" ")
            if "-" in head and not head.endswith(":"):
                s, e = head.split("-")
                cur = {}
                out.append((int(s, 16), int(e, 16), cur))
            elif head.endswith(":") and head != "VmFlags:":
                parts = rest.split()
                if parts and parts[0].isdigit():
                    v = int(parts[0])
                    cur[head[:-1]] = v * 1024 if parts[-1] == "kB" else v
    return out
