#!/usr/bin/env python3
"""Capture the snapshot fixtures in tests/fixtures/ from real, stopped processes.

    python3 scripts/capture_fixtures.py            # as root: writes all three

- small.json          the "small" workload below, `vmainspect snapshot --pages` as root
- small-nonroot.json  the same workload, target and collector both run as `nobody`
                      (setpriv): PFNs and kpageflags are hidden, so those fields are null
- python.json         a python3 process that imported a few modules and built some
                      data, `--pages` as root

The "small" workload is this script run with ``--workload small DIR``: a Python
(-S, no site) that maps, in this order,
  guard     16 PROT_NONE pages (a guard/reservation region)
  anon      64 private anonymous pages (their own VMA: the guard is above them);
            pages 0-7, 20 and 40-43 written, page 60 read (the shared zero page),
            page 62 written then MADV_DONTNEED (absent again)
  file      a 32-page file mapped MAP_PRIVATE read-only; pages 0 and 24 read
            (fault-around maps their neighbours: the kernel's doing, kept as is)
  cow       the same file MAP_PRIVATE read-write; page 3 written (copy-on-write:
            an anon page inside a file VMA)
  shared    the same file MAP_SHARED; page 5 written (file-dirty as root)
  deleted   a 4-page file mapped then unlinked ("(deleted)")
  shmem     8 shared anonymous pages (mmap(-1)), pages 0-1 written
  sysv      a SysV shm segment (4 pages), page 0 written, removed after attach
and then stops itself (SIGSTOP). The process is run with ASLR off (setarch -R),
so addresses repeat between captures. The collector is the real CLI:
`python3 -m vmainspect snapshot PID --pages --indent 1`; its output is checked
with snapshot_io.loads and written with snapshot_io.save.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

# The workload child imports only what it maps on purpose; the parent's
# modules (subprocess, shutil, ...) are imported in the functions below.

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
SCRIPT = os.path.abspath(__file__)
MAX_BYTES = 300_000
FOLDER = "/tmp/vmainspect-fixture"  # a fixed path: it shows in the fixtures' file paths
# The distribution's python3 runs the workloads (short, stable library paths);
# the collector runs under the current interpreter.
WORKLOAD_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


# ---------------------------------------------------------------- workloads (children)


def _small(folder: str) -> dict:
    import ctypes
    import ctypes.util
    import mmap

    from vmainspect.demo.libc import MADV_DONTNEED, MAP_ANONYMOUS, madvise, mmap_

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)  # SysV shm: not in demo.libc
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    page = mmap.PAGESIZE
    prot_rw, map_private = 3, 0x02
    keep = []
    report = {"page_size": page}

    def buf(addr: int, n: int):
        return (ctypes.c_char * (n * page)).from_address(addr)

    def anon_map(n: int, prot: int, flags: int) -> int:
        return mmap_(n * page, prot, flags | MAP_ANONYMOUS)

    # guard first: mmap places each new mapping below the previous one, so the
    # guard region keeps the anon region from merging with older anon memory
    report["guard"] = anon_map(16, 0, map_private)
    # anon: private anonymous, partly written
    a = anon_map(64, prot_rw, map_private)
    b = buf(a, 64)
    for i in list(range(8)) + [20, 40, 41, 42, 43, 62]:
        b[i * page] = b"x"
    _ = b[60 * page]  # read: the shared zero page
    madvise(a + 62 * page, page, MADV_DONTNEED)  # absent again
    report["anon"] = a

    # a 32-page file
    path = os.path.join(folder, "data.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (32 * page // 256))
    fd = os.open(path, os.O_RDWR)
    ro = mmap.mmap(fd, 32 * page, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    _ = ro[0], ro[24 * page]
    cow = mmap.mmap(fd, 32 * page, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    cow[3 * page] = 0x41
    sh = mmap.mmap(fd, 32 * page, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    sh[5 * page] = 0x42
    os.close(fd)
    keep += [ro, cow, sh]

    # a deleted file
    dpath = os.path.join(folder, "scratch.tmp")
    with open(dpath, "wb") as f:
        f.write(b"\0" * 4 * page)
    with open(dpath, "r+b") as f:
        dm = mmap.mmap(f.fileno(), 4 * page, flags=mmap.MAP_SHARED)
    os.unlink(dpath)
    dm[0] = 1
    keep.append(dm)

    # shared anonymous (shmem)
    shm = mmap.mmap(-1, 8 * page)
    shm[0] = 1
    shm[page] = 1
    keep.append(shm)

    # SysV shm, marked for removal once attached (nothing leaks if we are killed)
    sid = libc.shmget(0, 4 * page, 0o600 | 0o1000)  # IPC_PRIVATE, IPC_CREAT
    if sid >= 0:
        addr = libc.shmat(sid, None, 0)
        libc.shmctl(sid, 0, None)  # IPC_RMID
        if addr not in (None, ctypes.c_void_p(-1).value):
            buf(addr, 4)[0] = b"s"
            report["sysv"] = addr
    report["keep"] = len(keep)
    globals()["_keep"] = keep
    return report


def _python(folder: str) -> dict:
    import collections
    import decimal
    import re

    data = {f"key{i}": [i, str(i), decimal.Decimal(i) / 7] for i in range(20_000)}
    words = collections.Counter(re.findall(r"\w+", json.dumps(list(data)[:5000])))
    big = bytearray(8 << 20)  # 8 MiB: its own mmap'd VMA
    for i in range(0, len(big), 4 * 4096):  # every 4th page written
        big[i] = 1
    globals()["_keep"] = (data, words, big)
    return {"entries": len(data)}


def workload(name: str, folder: str) -> None:
    report = {"small": _small, "python": _python}[name](folder)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(3600)  # resumed only to be killed


# ---------------------------------------------------------------- capture (parent)


def wait_stopped(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t"):
                return
        time.sleep(0.005)
    raise TimeoutError(f"workload {pid} did not stop")


def _as(user: str | None) -> list[str]:
    if user is None:
        return []
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={'nogroup' if user == 'nobody' else user}",
        "--clear-groups",
    ]


def capture(name: str, user: str | None, out: str, folder: str) -> None:
    import platform
    import shutil
    import subprocess

    from vmainspect.snapshot import io as snapshot_io

    # ASLR off, so addresses repeat between captures (setarch first: it may not
    # be allowed to exec a root-only path once privileges are dropped).
    arch = ["setarch", platform.machine(), "-R"] if shutil.which("setarch") else []
    flags = ["-S"] if name == "small" else []
    cmd = arch + _as(user) + [WORKLOAD_PYTHON, *flags, SCRIPT, "--workload", name, folder]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": REPO}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder
    )
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"workload {name} failed: {proc.stderr.read().strip()}")
        report = json.loads(line)
        wait_stopped(proc.pid)
        snap_cmd = _as(user) + [
            sys.executable,
            "-m",
            "vmainspect",
            "snapshot",
            str(proc.pid),
            "--pages",
            "--indent",
            "1",
        ]
        r = subprocess.run(snap_cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if r.returncode != 0:
            raise RuntimeError(f"snapshot failed ({r.returncode}): {r.stderr.strip()}")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    snap = snapshot_io.loads(r.stdout)
    snapshot_io.save(snap, out)
    size = os.path.getsize(out)
    print(
        f"{os.path.relpath(out, REPO)}: {len(snap.vmas)} VMAs, {size} bytes, "
        f"root={snap.capabilities.root} pfn_visible={snap.capabilities.pfn_visible}, "
        f"report={report}"
    )
    if size > MAX_BYTES:
        print(f"warning: {out} is over {MAX_BYTES} bytes", file=sys.stderr)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--workload":
        workload(sys.argv[2], sys.argv[3])
        return 0
    if os.geteuid() != 0:
        print(
            "capture_fixtures: run as root (small.json needs kpageflags, and small-nonroot.json "
            "is taken by dropping to nobody)",
            file=sys.stderr,
        )
        return 4
    import shutil

    sys.path.insert(0, REPO)
    os.makedirs(FIXTURES, exist_ok=True)
    folder = FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    os.mkdir(folder)
    os.chmod(folder, 0o1777)
    try:
        for name, user, out in (
            ("small", None, "small.json"),
            ("small", "nobody", "small-nonroot.json"),
            ("python", None, "python.json"),
        ):
            sub = os.path.join(folder, name)  # the same path for both "small" captures
            shutil.rmtree(sub, ignore_errors=True)
            os.mkdir(sub)
            os.chmod(sub, 0o1777)
            capture(name, user, os.path.join(FIXTURES, out), sub)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
