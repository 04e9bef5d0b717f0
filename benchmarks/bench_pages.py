"""Benchmark: per-page state (read_pages) via PAGEMAP_SCAN and via plain pagemap, root and not.

    python3 benchmarks/bench_pages.py [--vmas 20000] [--size 4G] [--written 0.25] [--runs 5]
                                      [--pattern fragmented|contiguous] [--sparse 64G]

Spawns benchmarks/target_many_vmas.py (default: 20,000 VMAs, 4 GiB mapped,
25% of the pages written, by default every 4th page: about 1M pages, 262k of
them present, 520k page runs) as user
nobody when run as root, so the same stopped target can be read both as root
and as nobody. Then, in one run, best of --runs after one warm-up:

- `pmap -X PID` (the reference: whole-process wall time);
- read_pages() in this process as root, with PAGEMAP_SCAN and with plain
  pagemap reads (wall and CPU time of the call alone: the VMA list is parsed
  beforehand, not timed);
- the same in a subprocess running as nobody (PFNs hidden, no kpageflags).

Then the decoding steps alone, stdlib against numpy on the same pagemap
bytes, and what `import numpy` costs a fresh process (numpy is not a
dependency: this is the measurement behind that choice; it is skipped when
numpy is not installed). Then a sparse target (``--sparse``, default one 64 GiB VMA with one page
written every 16 MiB), where PAGEMAP_SCAN skips what plain pagemap reads
must wade through. Prints tables with each figure's ratio to `pmap -X`
(wall and CPU time: on a loaded machine CPU time is the steadier figure).
Writes nothing, kills the targets. Not a test: no assertions on time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from bench_snapshot import best_of, wait_stopped  # noqa: E402  (same folder)

MEASURE = r"""
import gc, json, os, sys, time
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.parse import parse_smaps
from vmainspect.procfs.reader import ProcReader

def vmas_of(pid):  # as `snapshot --pages` has them: with smaps (the dense/sparse choice reads Rss)
    return parse_smaps(ProcReader(pid).read("smaps"))

def measure(pid, runs):
    vmas = vmas_of(pid)
    out = {}
    for name, use_scan in (("scan", True), ("pagemap", False)):
        best_wall = best_cpu = float("inf")
        for i in range(runs + 1):
            w, c = time.perf_counter(), time.process_time()
            res = read_pages(ProcReader(pid), vmas, os.sysconf("SC_PAGESIZE"), use_scan=use_scan)
            w, c = time.perf_counter() - w, time.process_time() - c
            if i:
                best_wall, best_cpu = min(best_wall, w), min(best_cpu, c)
        present = sum(i.counts.present for i in res.infos)
        runs_n = sum(len(i.runs) for i in res.infos)
        out[name] = {"wall": best_wall, "cpu": best_cpu, "present": present, "runs": runs_n,
                     "pagemap_scan": res.pagemap_scan, "kpageflags": res.kpageflags,
                     "vmas": len(vmas)}
    return out

if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
"""


# The decoding steps that numpy could do instead of the stdlib, on the same
# pagemap bytes (the target's 20k VMAs, read once): page codes, runs cut at
# VMA boundaries, per-VMA counts, and the PFN spans to read from kpageflags.
NUMPY = r"""
import json, os, sys, time
from itertools import compress, repeat
from vmainspect.procfs import pagemap as pm
from vmainspect.procfs.parse import parse_smaps
from vmainspect.procfs.reader import ProcReader

pid, runs, start, size = map(int, sys.argv[1:5])
r = ProcReader(pid)
page = os.sysconf("SC_PAGE_SIZE")
vmas = [v for v in parse_smaps(r.read("smaps")) if start <= v.start and v.end <= start + size]
lo, hi = vmas[0].start, vmas[-1].end
fd = r.open("pagemap")
raw = os.pread(fd, (hi - lo) // page * 8, lo // page * 8)
os.close(fd)
A = [(v.start - lo) // page for v in vmas]
B = [(v.end - lo) // page for v in vmas]
cuts = sorted(set(A[1:]) | set(B[:-1]))

def stdlib():
    top = raw[7::8]
    codes = top.translate(pm.T_STATE)
    excl = top.translate(pm.T_EXCL)
    lens, rcodes, marks = pm.run_lengths(codes, cuts)
    counts = [list(map(codes.count, repeat(c), A, B)) for c in (pm.C_ANON, pm.C_FILE, pm.C_SWAPPED)]
    counts.append(list(map(excl.count, repeat(1), A, B)))
    pfns = pm.PfnLookup(compress(memoryview(raw).cast("Q"), codes.translate(pm.T_PRESENT))).spans
    return lens.tobytes(), bytes(rcodes), counts, pfns

def with_numpy():
    import numpy as np
    ent = np.frombuffer(raw, dtype="<u8")
    top = (ent >> np.uint64(56)).astype(np.uint8)
    codes = np.frombuffer(pm.T_STATE, dtype=np.uint8)[top]
    starts = np.empty(len(codes), dtype=bool)
    starts[0] = True
    np.not_equal(codes[1:], codes[:-1], out=starts[1:])
    starts[cuts] = True
    first = np.flatnonzero(starts)
    lens = np.diff(np.append(first, len(codes))).astype("<u8")
    a, b = np.array(A), np.array(B)
    counts = []
    for mask in (codes == pm.C_ANON, codes == pm.C_FILE, codes == pm.C_SWAPPED,
                 (top & 0x81) == 0x81):
        cs = np.concatenate(([0], np.cumsum(mask)))
        counts.append((cs[b] - cs[a]).tolist())
    pfn = ent[(top & 0x80) != 0] & np.uint64(pm.PM_PFN_MASK)
    u = np.unique(pfn)
    brk = np.flatnonzero(np.diff(u) > 17)  # as PfnLookup(gap=16): up to 16 PFNs between two share a span
    spans = list(zip(u[np.r_[0, brk + 1]].tolist(), (u[np.r_[brk, len(u) - 1]] + 1).tolist())) if len(u) else []
    return lens.tobytes(), codes[first].tobytes(), counts, spans

def best(fn):
    out, t = None, float("inf")
    for i in range(runs + 1):
        c = time.process_time()
        out = fn()
        c = time.process_time() - c
        if i:
            t = min(t, c)
    return out, t

res = {"pages": len(raw) // 8, "vmas": len(vmas)}
s_out, res["stdlib"] = best(stdlib)
res["runs"] = len(s_out[1])
try:
    import numpy  # noqa: F401
except ImportError:
    res["numpy"] = None
else:
    n_out, res["numpy"] = best(with_numpy)
    res["same"] = s_out == n_out
print(json.dumps(res))
"""


def numpy_import_cpu(runs: int) -> float | None:
    """CPU time of `import numpy` in a fresh Python (best of ``runs``, start-up subtracted)."""
    base = best_of([sys.executable, "-c", "pass"], runs)[1]
    _, cpu, rc = best_of([sys.executable, "-c", "import numpy"], runs)
    return None if rc else cpu - base


def compare_numpy(pid: int, runs: int, start: int, size: int) -> None:
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.run(
        [sys.executable, "-c", NUMPY, str(pid), str(runs), str(start), str(size)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    if p.returncode:
        print(f"numpy comparison failed: {p.stderr.strip().splitlines()[-1:]}")
        return
    r = json.loads(p.stdout)
    print()
    print(
        f"decoding steps, stdlib vs numpy (same pagemap bytes: {r['pages']} pages of {r['vmas']} VMAs, "
        f"{r['runs']} runs; codes, runs cut at VMAs, per-VMA counts, PFN spans; CPU, best of {runs})"
    )
    print(f"  stdlib (bytes.translate, int XOR, split, map): {r['stdlib'] * 1e3:7.1f} ms")
    if r["numpy"] is None:
        print("  numpy: not installed here (pip install numpy to compare)")
        return
    imp = numpy_import_cpu(runs)
    same = "same output" if r["same"] else "OUTPUT DIFFERS"
    print(f"  numpy (vectorised, then to bytes/lists):      {r['numpy'] * 1e3:7.1f} ms ({same})")
    if imp is not None:
        print(f"  import numpy (fresh process, CPU):            {imp * 1e3:7.1f} ms")


SPARSE = r"""
import ctypes, ctypes.util, json, os, signal, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
size, step = int(sys.argv[1]), int(sys.argv[2])
base = libc.mmap(None, size, 3, 0x22 | 0x4000, -1, 0)      # private anonymous, MAP_NORESERVE
for off in range(0, size, step):
    ctypes.memset(base + off, 0x5A, 4096)                   # one page every ``step`` bytes
print(json.dumps({"pid": os.getpid(), "size": size, "written_pages": size // step}), flush=True)
while True:
    os.kill(os.getpid(), signal.SIGSTOP)
"""


def time_cmd(cmd: list[str], runs: int) -> tuple[float, float]:
    """Best wall and CPU time of ``cmd`` (bench_snapshot.best_of); it must succeed."""
    wall, cpu, rc = best_of(cmd, runs)
    if rc:
        raise SystemExit(f"{cmd[0]} exited {rc}")
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--written", type=float, default=0.25)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--sparse", default="64G", help="also: one VMA this big with one page written every 16 MiB (0: skip)"
    )
    ap.add_argument("--pattern", choices=("contiguous", "fragmented"), default="fragmented")
    a = ap.parse_args()
    rc = dense(a)
    if a.sparse not in ("0", ""):
        sparse(a)
    return rc


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def _measure(pid: int, runs: int, prefix: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.run(
        prefix + [sys.executable, "-c", MEASURE, str(pid), str(runs)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=True,
    )
    return json.loads(p.stdout)


def sparse(a) -> None:
    """A mostly empty address space: where PAGEMAP_SCAN pays off."""
    size = _size(a.sparse)
    target = subprocess.Popen(
        [sys.executable, "-c", SPARSE, str(size), str(16 << 20)], stdout=subprocess.PIPE, text=True, cwd="/"
    )
    try:
        info = json.loads(target.stdout.readline())
        wait_stopped(info["pid"])
        pm_wall, pm_cpu = time_cmd(["pmap", "-X", str(info["pid"])], a.runs)
        res = _measure(info["pid"], a.runs, [])
        print()
        print(
            f"sparse target: one {size / (1 << 30):.0f} GiB VMA, {info['written_pages']} pages "
            f"written (one per 16 MiB); best of {a.runs} runs"
        )
        print(f"{'what':<34} {'wall s':>7} {'cpu s':>7} {'wall/pmap':>9}")
        print(f"{'pmap -X PID (whole process)':<34} {pm_wall:7.3f} {pm_cpu:7.3f} {1:8.2f}x")
        for name in ("scan", "pagemap"):
            r = res[name]
            print(f"{'read_pages ' + name:<34} {r['wall']:7.3f} {r['cpu']:7.3f} {r['wall'] / pm_wall:8.2f}x")
    finally:
        _kill(target)


def _kill(target) -> None:
    """SIGKILL a target that stopped itself (SIGTERM would wait for a SIGCONT) and reap it."""
    try:
        os.kill(target.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    target.wait()


def dense(a) -> int:
    """The issue's target: 20,000 VMAs, 4 GiB, 25% written."""

    root = os.geteuid() == 0
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []
    target = subprocess.Popen(
        drop
        + [
            sys.executable,
            os.path.join(HERE, "target_many_vmas.py"),
            "--vmas",
            str(a.vmas),
            "--size",
            a.size,
            "--written",
            str(a.written),
            "--pattern",
            a.pattern,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        info = json.loads(target.stdout.readline())
        pid = info["pid"]
        wait_stopped(pid)
        rows = []
        pm_wall, pm_cpu = time_cmd(["pmap", "-X", str(pid)], a.runs)
        rows.append(("pmap -X PID (whole process)", pm_wall, pm_cpu, ""))
        who = [("root" if root else "this user", [])]
        if root:
            who.append(("nobody", drop))
        for label, prefix in who:
            res = _measure(pid, a.runs, prefix)
            for name in ("scan", "pagemap"):
                r = res[name]
                what = (
                    f"{r['present']} present pages, {r['runs']} runs, "
                    f"kpageflags={'yes' if r['kpageflags'] else 'no'}, "
                    f"PAGEMAP_SCAN={'yes' if r['pagemap_scan'] else 'no'}"
                )
                rows.append((f"read_pages {name}, {label}", r["wall"], r["cpu"], what))
        print(
            f"target: {res['scan']['vmas']} VMAs, {info['size'] / (1 << 30):.2f} GiB mapped, "
            f"{info['written_pages']} pages written ({a.written:.0%}); best of {a.runs} runs; "
            f"kernel {os.uname().release}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        )
        print(f"{'what':<34} {'wall s':>7} {'cpu s':>7} {'wall/pmap':>9}  details")
        for name, wall, cpu, what in rows:
            print(f"{name:<34} {wall:7.3f} {cpu:7.3f} {wall / pm_wall:8.2f}x  {what}")
        compare_numpy(pid, a.runs, info["start"], info["size"])
    finally:
        _kill(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
