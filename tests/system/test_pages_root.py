"""read_pages() as root against the kernel: PFNs, kpageflags, kpagecount.

The target and its helpers are in pages_target.py, its fixtures in conftest.py;
test_pages_kernel.py's docstring describes the kernel behaviour these tests pin down.
"""

from __future__ import annotations

import os
import struct

import msgspec
import pytest
from pages_target import (
    FORK,
    PAGE,
    _cleanup,
    assert_same_pages,
    info_at,
    read_both,
    states,
    vmas_of,
    wait_stopped,
)
from targets import kill_quietly, spawn_target

from vmainspect.model import Vma
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader


@pytest.mark.root
def test_root_capabilities(main_view):
    _, scan, plain, _ = main_view
    for res in (scan, plain):
        assert res.pfn_visible and res.kpageflags and res.kpagecount


@pytest.mark.root
def test_zero_pages_as_root(main_view, main_target):
    _, info = info_at(main_view, main_target.report["anon"])
    assert [i for i, s in enumerate(states(info)) if s == "zero"] == [10, 11]
    c = info.counts
    assert (c.zero, c.dirty, c.shared) == (2, 6, 0)  # the 6 written anon pages are dirty by nature


@pytest.mark.root
def test_huge_zero_page_as_root(main_view, main_target):
    v, info = info_at(main_view, main_target.report["hz"])
    st = states(info)
    assert st[0] == "zero"
    if main_target.report["hz_thp"] and info.counts.present == 512:
        assert st == ["zero"] * 512 and info.counts.thp == 512  # KPF_THP is set on the huge zero page
    assert info.counts.file == 0  # pagemap's bit 61 on it is not believed
    assert info.counts.present - info.counts.zero == main_view[3][v.start]["Rss"] // PAGE == 0


def naive_pages(pid: int, vmas: list[Vma]) -> list[tuple]:
    """Per VMA (runs, counts, shared_runs) read the slow, obvious way: one
    pagemap entry, one kpageflags and one kpagecount read per page."""
    out = []
    pm = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    kf = os.open("/proc/kpageflags", os.O_RDONLY)
    kc = os.open("/proc/kpagecount", os.O_RDONLY)
    try:
        for v in vmas:
            n = v.npages(PAGE)
            raw = os.pread(pm, n * 8, v.start // PAGE * 8).ljust(n * 8, b"\0")  # [vsyscall]: empty
            states, shared = [], []
            c = dict.fromkeys(
                ("present", "swapped", "file", "anon", "exclusive", "dirty", "zero", "thp", "ksm", "shared"),
                0,
            )
            for i, (e,) in enumerate(struct.iter_unpack("<Q", raw)):
                if not e >> 63:
                    states.append("swapped" if e >> 62 & 1 and not e >> 58 & 1 else "absent")
                    c["swapped"] += states[-1] == "swapped"
                    continue
                pfn = e & ((1 << 55) - 1)
                flags = struct.unpack("<Q", os.pread(kf, 8, pfn * 8).ljust(8, b"\0"))[0]
                count = struct.unpack("<Q", os.pread(kc, 8, pfn * 8).ljust(8, b"\0"))[0]
                if flags >> 24 & 1:
                    st = "zero"
                elif e >> 61 & 1:
                    st = "file-dirty" if flags >> 4 & 1 else "file"
                else:
                    st = "anon"
                states.append(st)
                c["present"] += 1
                c["file" if st.startswith("file") else "anon"] += 1
                c["exclusive"] += e >> 56 & 1
                c["dirty"] += st in ("anon", "file-dirty")
                c["zero"] += st == "zero"
                c["thp"] += flags >> 22 & 1
                c["ksm"] += flags >> 21 & 1
                if count > 1:
                    c["shared"] += 1
                    shared.append(i)
            runs = []
            for i, st in enumerate(states):
                if runs and runs[-1][2] == st:
                    runs[-1][1] += 1
                else:
                    runs.append([i, 1, st])
            sruns = []
            for i in shared:
                if sruns and sruns[-1][0] + sruns[-1][1] == i:
                    sruns[-1][1] += 1
                else:
                    sruns.append([i, 1])
            out.append(([tuple(r) for r in runs], c, [tuple(r) for r in sruns]))
    finally:
        for fd in (pm, kf, kc):
            os.close(fd)
    return out


@pytest.mark.root
@pytest.mark.parametrize("use_scan", [True, False])
def test_equals_one_read_per_page_as_root(main_target, use_scan):
    """The bulk machinery (PAGEMAP_SCAN ranges, PFN spans, skipped kpagecount
    reads of exclusive anonymous pages) equals reading every page's three
    entries one by one. Retried: other processes change shared pages."""
    pid = main_target.pid
    vmas = vmas_of(pid)
    for _ in range(5):
        res = read_pages(ProcReader(pid), vmas, PAGE, use_scan=use_scan)
        got = [
            (
                [(r.first, r.count, r.state) for r in i.runs],
                dict(msgspec.structs.asdict(i.counts)),
                list(i.shared_runs),
            )
            for i in res.infos
        ]
        want = naive_pages(pid, vmas)
        if got == want:
            break
    for v, g, w in zip(vmas, got, want):
        assert g == w, f"{v.path} {v.start:#x}"


@pytest.mark.root
def test_transparent_huge_page_as_root(main_view, main_target):
    v, info = info_at(main_view, main_target.report["thp"])
    huge = main_view[3][v.start]["AnonHugePages"] // PAGE  # the kernel's own count
    assert states(info) == ["anon"] * 512  # written: every page present
    assert info.counts.thp >= huge
    if huge == 512:
        assert info.counts.thp == 512 and info.counts.exclusive == 512
    elif not main_target.report["thp_madv"]:
        pytest.skip("no transparent huge pages here (MADV_HUGEPAGE refused)")


@pytest.mark.root
def test_shared_file_write_is_dirty_as_root(main_view, main_target):
    _, info = info_at(main_view, main_target.report["fshared"])
    st = states(info)
    assert st[2] == "file-dirty"
    # per-folio dirtiness: other mapped pages of the written folio may be dirty too
    assert info.counts.dirty >= 1
    assert info.counts.dirty == st.count("file-dirty")


@pytest.mark.root
def test_private_file_dirty_counts_only_the_copy(main_view, main_target):
    _, info = info_at(main_view, main_target.report["fpriv"])
    assert info.counts.dirty == 1  # the CoW copy; the fsync'ed page cache is clean
    assert "file-dirty" not in states(info)


@pytest.mark.root
def test_fork_shared_pages_as_root():
    t = spawn_target(FORK)
    try:
        pid = t.pid
        wait_stopped(t.report["child"])  # its copy-on-write faults are over
        vmas = vmas_of(pid)
        res, plain = read_both(pid, vmas)
        assert_same_pages(vmas, res.infos, plain.infos)
        info = next(i for v, i in zip(vmas, res.infos) if v.start == t.report["fork"])
        assert states(info) == ["anon"] * 4 + ["absent"] * 4
        assert info.shared_runs == ((1, 3),)  # pages 1-3: parent and child (kpagecount 2)
        assert info.counts.shared == 3
        assert info.counts.exclusive == 1  # page 0 was copied on write after fork
    finally:
        kill_quietly(t.report.get("child"))
        _cleanup(t)
