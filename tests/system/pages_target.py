"""The page-state target shared by the test_pages_* modules, and helpers to read it.

MAIN builds mappings with known page state (see test_pages_kernel.py's
docstring for the kernel behaviour the tests pin down); FORK a parent and a
stopped child sharing pages. The fixtures that spawn MAIN are in conftest.py.
"""

from __future__ import annotations

import os
import shutil

from targets import wait_stopped

from vmainspect.model import PageInfo, Vma
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader

__all__ = [
    "FORK",
    "IS_ROOT",
    "MAIN",
    "PAGE",
    "REPO",
    "_cleanup",
    "assert_same_pages",
    "info_at",
    "only_the_target_maps",
    "read_both",
    "states",
    "vmas_of",
    "wait_stopped",
]

PAGE = os.sysconf("SC_PAGESIZE")
IS_ROOT = os.geteuid() == 0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MAIN = r'''
import tempfile
def reserve(n, prot=3):
    """n pages between two PROT_NONE pages: a VMA of its own, never merged."""
    base = libc.mmap(None, (n + 2) * PAGE, 0, 0x22, -1, 0)
    a = base + PAGE
    assert libc.mprotect(a, n * PAGE, prot) == 0
    return a
def buf(a, n):
    return (ctypes.c_char * (n * PAGE)).from_address(a)
def ro(b, i):
    return b[i * PAGE]

A = reserve(64); b = buf(A, 64)                       # private anonymous
for i in (0, 1, 5, 17, 40, 63, 30): b[i * PAGE] = b"x"
for i in (10, 11): ro(b, i)                           # read only: the zero page
assert libc.madvise(A + 30 * PAGE, PAGE, 4) == 0      # MADV_DONTNEED: gone again
report["anon"] = A

d = tempfile.mkdtemp(prefix="vmainspect-pages-")
report["dir"] = d
def datafile(name, n):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(b"\x5a" * (n * PAGE))
        f.flush(); os.fsync(f.fileno())               # clean page cache
    return os.open(p, os.O_RDWR)
FP = libc.mmap(None, 64 * PAGE, 3, 0x02, datafile("private", 64), 0)   # MAP_PRIVATE file
bp = buf(FP, 64); ro(bp, 3); bp[20 * PAGE] = b"y"
report["fpriv"] = FP
FS = libc.mmap(None, 64 * PAGE, 3, 0x01, datafile("shared", 64), 0)    # MAP_SHARED file
bs = buf(FS, 64); bs[2 * PAGE] = b"z"; ro(bs, 40)
report["fshared"] = FS
sh = mmap.mmap(-1, 16 * PAGE); _keep.append(sh)        # shared anonymous (shmem)
sh[0] = 1; sh[5 * PAGE]
report["shmem"] = addr_of(sh)
H = libc.mmap(None, 6 << 20, 3, 0x22, -1, 0)
HA = (H + (2 << 20) - 1) & ~((2 << 20) - 1)
report["hz_thp"] = libc.madvise(HA, 2 << 20, 14) == 0  # MADV_HUGEPAGE: its own VMA
ro(buf(HA, 512), 0)                                    # read: the huge zero page
report["hz"] = HA
T = libc.mmap(None, 6 << 20, 3, 0x22, -1, 0)
TA = (T + (2 << 20) - 1) & ~((2 << 20) - 1)
report["thp_madv"] = libc.madvise(TA, 2 << 20, 14) == 0 # MADV_HUGEPAGE
ctypes.memset(TA, 0x33, 2 << 20)                       # written: a transparent huge page, if one is free
report["thp"] = TA
N = reserve(8); bn = buf(N, 8)
for i in range(4): bn[i * PAGE] = b"n"
assert libc.mprotect(N, 8 * PAGE, 0) == 0             # PROT_NONE keeps its pages
report["protnone"] = N
G = reserve(8); bg = buf(G, 8)
for i in range(8): bg[i * PAGE] = b"g"
report["guard_ok"] = libc.madvise(G + 2 * PAGE, 2 * PAGE, 102) == 0    # MADV_GUARD_INSTALL
report["guard"] = G
ALT = reserve(2048); ba = buf(ALT, 2048)               # 1024 one-page regions
for i in range(0, 2048, 2): ba[i * PAGE] = b"a"
report["alt"] = ALT
swaps = open("/proc/swaps").read().splitlines()[1:]
report["swap"] = bool(swaps)
if swaps:
    SW = reserve(8); bw = buf(SW, 8)
    for i in range(8): bw[i * PAGE] = b"w"
    libc.madvise(SW + 4 * PAGE, 4 * PAGE, 21)          # MADV_PAGEOUT
    report["swapped"] = SW
'''

FORK = r"""
def reserve(n, prot=3):
    base = libc.mmap(None, (n + 2) * PAGE, 0, 0x22, -1, 0)
    assert libc.mprotect(base + PAGE, n * PAGE, prot) == 0
    return base + PAGE
F = reserve(8); bf = (ctypes.c_char * (8 * PAGE)).from_address(F)
for i in range(4): bf[i * PAGE] = b"f"
child = os.fork()
if child == 0:
    libc.prctl(1, 9)                                   # PR_SET_PDEATHSIG: SIGKILL
    while True:                                        # stopped too, so nothing changes
        os.kill(os.getpid(), signal.SIGSTOP)
bf[0] = b"c"                                           # copy-on-write: page 0 is ours again
report["fork"] = F
report["child"] = child
"""


def vmas_of(pid: int) -> list[Vma]:
    """VMAs from /proc/PID/maps, parsed independently of vmainspect's parser."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            s, e = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else None
            out.append(
                Vma(s, e, parts[1], int(parts[2], 16), parts[3], int(parts[4]), path, "anon-private", (), {})
            )
    return out


def states(info: PageInfo) -> list[str]:
    return [r.state for r in info.runs for _ in range(r.count)]


def _cleanup(t) -> None:
    t.kill()
    d = t.report.get("dir")
    if d:
        shutil.rmtree(d, ignore_errors=True)


def read_both(pid: int, vmas: list[Vma]):
    """The scan and the pagemap path's results, read back to back.

    A stopped process still changes in two ways: the kernel writes dirty file
    pages back (dirty_expire_centisecs, 30 s), so a page can turn from
    file-dirty to file between two reads; and the exclusive bit (and
    kpagecount) of a shared library's page cache pages changes while other
    processes map and unmap it. If the two reads differ, read again; on a busy
    machine they may never agree: compare them with ``assert_same_pages``.
    """
    for _ in range(5):
        scan = read_pages(ProcReader(pid), vmas, PAGE, use_scan=True)
        plain = read_pages(ProcReader(pid), vmas, PAGE, use_scan=False)
        if scan.infos == plain.infos or not scan.kpageflags:
            break
    return scan, plain


def only_the_target_maps(v: Vma) -> bool:
    """A private anonymous VMA (heap and stack included): no other process maps its pages
    (but a stopped child the target forked), so in a stopped target nothing changes them."""
    return v.perms.endswith("p") and v.inode == 0 and v.path in (None, "[heap]", "[stack]")


def comparable(v: Vma, info: PageInfo, own_dir: str | None = None):
    """What nothing but vmainspect could change between two reads of VMA ``v`` of a stopped
    target: everything where only the target maps the pages; elsewhere, its page runs with
    file-dirty read as file and its counts but dirty (writeback cleans file pages), and, but
    in the target's own files (under ``own_dir``), without exclusive and shared (they follow
    who else maps a page: a shared library's pages are mapped and unmapped by every process
    that starts and ends)."""
    if only_the_target_maps(v):
        return info
    flat = ["file" if r.state == "file-dirty" else r.state for r in info.runs for _ in range(r.count)]
    runs, first = [], 0
    for i in range(1, len(flat) + 1):
        if i == len(flat) or flat[i] != flat[first]:
            runs.append((first, i - first, flat[first]))
            first = i
    c = info.counts
    out = (runs, c.present, c.swapped, c.file, c.anon, c.zero, c.thp, c.ksm)
    if own_dir is not None and (v.path or "").startswith(own_dir + "/"):
        out += (c.exclusive, c.shared, info.shared_runs)
    return out


def assert_same_pages(
    vmas: list[Vma], a: list[PageInfo], b: list[PageInfo], own_dir: str | None = None
) -> None:
    """Two reads of a stopped target agree, page for page, in what only vmainspect could change
    (``comparable``): on a busy machine they may disagree elsewhere however often repeated."""
    assert len(vmas) == len(a) == len(b)
    for v, x, y in zip(vmas, a, b):
        assert comparable(v, x, own_dir) == comparable(v, y, own_dir), f"{v.path} {v.start:#x}"


def info_at(view, addr: int) -> tuple[Vma, PageInfo]:
    vmas, res = view[0], view[1]
    for v, i in zip(vmas, res.infos):
        if v.start == addr:
            return v, i
    raise AssertionError(f"no VMA starts at {addr:#x}")
