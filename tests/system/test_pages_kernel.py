"""read_pages() against the kernel: spawned, stopped targets with known page state.

Expectations come from what the target did (touched page N, wrote page M)
and from the kernel's own accounting (smaps per VMA), never from vmainspect.

Kernel behaviour these tests pin down (Linux 6.18, measured):
- a read fault on a file mapping maps its neighbours too ("fault-around",
  fault_around_bytes = 64 KiB: 16 pages) when they are in the page cache and
  not locked (right after fsync() it sometimes maps the one page only), and a
  write fault on a MAP_SHARED file maps either one page or the whole large
  folio (seen: all 64 pages of a 256 KiB file). So for file pages we assert
  "the touched page is present" and "present == smaps Rss", not an exact list.
  MADV_RANDOM does not turn fault-around off (it only affects readahead).
- dirtiness is per folio: ext4 caches files in large folios here, so writing
  one page of a MAP_SHARED file marks every mapped page of that folio
  file-dirty (kpageflags DIRTY); we assert the written page is dirty and the
  dirty count is >= 1, not == 1.
- the shared zero page (a read of untouched private anonymous memory) is
  present in pagemap but not counted in smaps Rss; the huge zero page (a read
  of a MADV_HUGEPAGE area) is 512 such pages, and pagemap sets bit 61
  ("file") on it, which is why it is classified from kpageflags/PAGEMAP_SCAN.
- MADV_GUARD_INSTALL markers look like swap entries in pagemap (bits 62+58)
  and PAGEMAP_SCAN (SWAPPED|GUARD): nothing is swapped, they are absent.
"""

from __future__ import annotations

import os
import shutil
import time

import msgspec
import pytest
from targets import read_smaps_kb, spawn_target

from vmainspect.model import PageInfo, Vma
from vmainspect.procfs import pages as pages_mod
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader
from vmainspect.procfs.scan import PageScanner

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


def _wait_stopped(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t"):
                return
        time.sleep(0.002)
    raise TimeoutError(f"{pid} did not stop")


def _cleanup(t) -> None:
    t.kill()
    d = t.report.get("dir")
    if d:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def main_target():
    t = spawn_target(MAIN)
    try:
        yield t
    finally:
        _cleanup(t)


def read_both(pid: int, vmas: list[Vma]):
    """The scan and the pagemap path's results, read back to back.

    A stopped process still changes in two ways: the kernel writes dirty file
    pages back (dirty_expire_centisecs, 30 s), so a page can turn from
    file-dirty to file between two reads; and the exclusive bit (and
    kpagecount) of a shared library's page cache pages changes while other
    processes map and unmap it. If the two reads differ, read again.
    """
    for _ in range(5):
        scan = read_pages(ProcReader(pid), vmas, PAGE, use_scan=True)
        plain = read_pages(ProcReader(pid), vmas, PAGE, use_scan=False)
        if scan.infos == plain.infos or not scan.kpageflags:
            break
    return scan, plain


@pytest.fixture(scope="module")
def main_view(main_target):
    """(vmas, scan result, pagemap result, smaps by start) of the stopped main target."""
    pid = main_target.pid
    vmas = vmas_of(pid)
    scan, plain = read_both(pid, vmas)
    smaps = {s: d for s, _, d in read_smaps_kb(pid)}
    return vmas, scan, plain, smaps


def info_at(view, addr: int) -> tuple[Vma, PageInfo]:
    vmas, res = view[0], view[1]
    for v, i in zip(vmas, res.infos):
        if v.start == addr:
            return v, i
    raise AssertionError(f"no VMA starts at {addr:#x}")


# -- always (root or not) ----------------------------------------------------


def test_runs_cover_every_vma_exactly_and_are_merged(main_view):
    vmas, scan, plain, _ = main_view
    for res in (scan, plain):
        assert len(res.infos) == len(vmas)
        for v, info in zip(vmas, res.infos):
            pos = 0
            for a, b in zip(info.runs, info.runs[1:]):
                assert a.state != b.state, f"unmerged runs in {v.path} {v.start:#x}"
            for r in info.runs:
                assert r.first == pos and r.count > 0
                pos += r.count
            assert pos == v.npages(PAGE)


def _plain(info) -> tuple[dict, list[list]]:
    """(counts, runs) of a PageInfo or of its JSON form from the nobody reader."""
    if isinstance(info, PageInfo):
        return msgspec.structs.asdict(info.counts), [[r.first, r.count, r.state] for r in info.runs]
    return info["counts"], info["runs"]


def assert_same_but_zero(scan_infos, plain_infos) -> int:
    """Scan path == pagemap path, except what only PAGE_IS_PFNZERO can know without root.

    Without PFNs, plain pagemap sees the shared zero page as ``anon`` and the
    huge zero page as ``file`` (pagemap sets bit 61 on it); the scan path calls
    both ``zero``. Everything else must be equal. Returns the zero pages seen.
    """
    zero_seen = 0
    assert len(scan_infos) == len(plain_infos)
    for s, p in zip(scan_infos, plain_infos):
        (sc, sr), (pc, pr) = _plain(s), _plain(p)
        for k in ("present", "swapped", "exclusive", "dirty", "thp", "ksm", "shared"):
            assert sc[k] == pc[k], k
        assert sc["file"] + sc["anon"] == pc["file"] + pc["anon"]
        if not sc["zero"]:
            assert (sr, sc["file"], sc["anon"]) == (pr, pc["file"], pc["anon"])
        else:
            zero_seen += sc["zero"]
            ss = [r[2] for r in sr for _ in range(r[1])]
            ps = [r[2] for r in pr for _ in range(r[1])]
            assert len(ss) == len(ps)
            for a, b in zip(ss, ps):
                assert a == b or (a == "zero" and b in ("anon", "file"))
    return zero_seen


def test_scan_path_equals_pagemap_path(main_view):
    _, scan, plain, _ = main_view
    assert scan.pagemap_scan and not plain.pagemap_scan
    assert (scan.pfn_visible, scan.kpageflags, scan.kpagecount) == (
        plain.pfn_visible,
        plain.kpageflags,
        plain.kpagecount,
    )
    if scan.kpageflags:
        assert scan.infos == plain.infos  # as root: identical, page for page
    else:
        assert_same_but_zero(scan.infos, plain.infos)


def test_anon_private_pages_exactly(main_view, main_target):
    _, info = info_at(main_view, main_target.report["anon"])
    st = states(info)
    written = {0, 1, 5, 17, 40, 63}  # 30 was written, then MADV_DONTNEED
    for i, s in enumerate(st):
        if i in written:
            assert s == "anon", i
        elif i in (10, 11):  # read only: the shared zero page
            assert s == "zero", i  # kpageflags or PAGE_IS_PFNZERO say so
        else:
            assert s == "absent", i
    c = info.counts
    assert (c.present, c.anon, c.file, c.swapped, c.exclusive) == (
        8,
        8,
        0,
        0,
        6,
    )  # the zero page is not exclusive


def test_private_file_read_and_copy_on_write(main_view, main_target):
    v, info = info_at(main_view, main_target.report["fpriv"])
    st = states(info)
    assert st[3] == "file"  # read: the page cache page, clean
    assert st[20] == "anon"  # written: a private anonymous copy
    assert info.counts.anon == 1
    # fault-around mapped neighbours of page 3 (same 16-page window), never page 20's
    assert {i for i, s in enumerate(st) if s == "file"} <= set(range(0, 20)) | set(range(21, 64))
    assert info.counts.present == main_view[3][v.start]["Rss"] // PAGE


def test_shared_file_written_and_read_pages_are_file(main_view, main_target):
    v, info = info_at(main_view, main_target.report["fshared"])
    st = states(info)
    assert st[2] in ("file", "file-dirty") and st[40] in ("file", "file-dirty")
    assert info.counts.anon == 0 and info.counts.file == info.counts.present
    assert info.counts.present == main_view[3][v.start]["Rss"] // PAGE


def test_prot_none_keeps_pages(main_view, main_target):
    _, info = info_at(main_view, main_target.report["protnone"])
    assert states(info) == ["anon"] * 4 + ["absent"] * 4


def test_guard_region_is_absent_not_swapped(main_view, main_target):
    if not main_target.report["guard_ok"]:
        pytest.skip("MADV_GUARD_INSTALL needs Linux 6.13+")
    _, info = info_at(main_view, main_target.report["guard"])
    assert states(info) == ["anon"] * 2 + ["absent"] * 2 + ["anon"] * 4
    assert info.counts.swapped == 0


def test_shared_anonymous_is_file_backed(main_view, main_target):
    _, info = info_at(main_view, main_target.report["shmem"])
    st = states(info)
    assert st[0] in ("file", "file-dirty") and st[5] in ("file", "file-dirty")  # bit 61: shmem
    assert info.counts.file == 2 and info.counts.anon == 0


def test_every_vma_agrees_with_smaps(main_view):
    vmas, scan, _, smaps = main_view
    for v, info in zip(vmas, scan.infos):
        sm = smaps[v.start]
        c = info.counts
        where = f"{v.path} {v.start:#x}"
        # the zero page is present in pagemap but not in Rss (without root we
        # cannot tell it apart, unless PAGEMAP_SCAN flagged it: then zero is set)
        zero = c.zero or 0
        assert c.present - zero == sm["Rss"] // PAGE, where
        assert c.swapped * PAGE == sm["Swap"], where
        # smaps Anonymous counts PageAnon pages: our anon minus the zero page
        assert c.anon - zero == sm["Anonymous"] // PAGE, where
        assert c.exclusive <= c.present


def test_probe_finds_pagemap_scan(main_target):
    from vmainspect.procfs.scan import probe

    r = ProcReader(main_target.pid)
    fd = r.open("pagemap")
    try:
        assert probe(r, fd) is (tuple(map(int, os.uname().release.split(".")[:2])) >= (6, 7))
    finally:
        os.close(fd)


def test_scan_regions_with_small_buffers_match_pagemap(main_target):
    """The walk_end bug: continue only after a full buffer; never duplicate pages."""
    pid = main_target.pid
    a = main_target.report["alt"]
    r = ProcReader(pid)
    fd = r.open("pagemap")
    try:
        for vec_len in (1, 7, 512, 513, 1024, 4096):
            regs = list(PageScanner(r, fd, vec_len=vec_len).regions(a, a + 2048 * PAGE))
            present = [False] * 2048
            pos = a
            for s, e, cat in regs:
                assert s >= pos, "overlapping or repeated region"
                pos = e
                for p in range((s - a) // PAGE, (e - a) // PAGE):
                    present[p] = bool(cat & 8)
            assert present == [i % 2 == 0 for i in range(2048)], vec_len
    finally:
        os.close(fd)


def test_read_pages_with_tiny_scan_buffer_equals_pagemap(main_target, main_view, monkeypatch):
    monkeypatch.setattr(pages_mod, "SCAN_VEC_LEN", 5)
    scan, plain = read_both(main_target.pid, main_view[0])
    if scan.kpageflags:
        assert scan.infos == plain.infos
    else:
        assert_same_but_zero(scan.infos, plain.infos)


@pytest.mark.parametrize("use_scan", [True, False])
def test_small_chunks_and_gaps_give_the_same_answer(main_target, monkeypatch, use_scan):
    """Reads split and merged differently (chunks of 7 pages, gaps of 3) change nothing."""
    pid = main_target.pid
    vmas = vmas_of(pid)
    for _ in range(3):  # see read_both: writeback may clean a page in between
        want = read_pages(ProcReader(pid), vmas, PAGE, use_scan=use_scan)
        with monkeypatch.context() as m:
            m.setattr(pages_mod, "CHUNK_PAGES", 7)
            m.setattr(pages_mod, "GAP_PAGES", 3)
            got = read_pages(ProcReader(pid), vmas, PAGE, use_scan=use_scan)
        if got.infos == want.infos:
            break
    assert got.infos == want.infos


def test_swapped_pages(main_target, main_view):
    if not main_target.report["swap"]:
        pytest.skip("no swap configured (/proc/swaps is empty): cannot produce swapped pages")
    v, info = info_at(main_view, main_target.report["swapped"])
    assert info.counts.swapped * PAGE == main_view[3][v.start]["Swap"]
    assert info.counts.swapped >= 1


@pytest.mark.parametrize("use_scan", [True, False])
def test_process_exiting_mid_read_is_process_gone(use_scan):
    from vmainspect.errors import ProcessGone

    class KillingReader(ProcReader):
        """Kills the target right after the pagemap is opened."""

        def open(self, name):
            fd = super().open(name)
            if name == "pagemap":
                t.kill()
            return fd

    t = spawn_target("")
    try:
        vmas = vmas_of(t.pid)
        with pytest.raises(ProcessGone):
            read_pages(KillingReader(t.pid), vmas, PAGE, use_scan=use_scan)
    finally:
        _cleanup(t)


def test_vanished_process_is_process_gone():
    from vmainspect.errors import ProcessGone

    t = spawn_target("")
    vmas = vmas_of(t.pid)
    _cleanup(t)
    with pytest.raises(ProcessGone):
        read_pages(ProcReader(t.pid), vmas, PAGE)
