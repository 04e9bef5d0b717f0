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

import msgspec
import pytest
from pages_target import (  # noqa: F401  (test_pages_dense imports some of these from here)
    FORK,
    IS_ROOT,
    MAIN,
    PAGE,
    REPO,
    _cleanup,
    assert_same_pages,
    info_at,
    only_the_target_maps,
    read_both,
    states,
    vmas_of,
    wait_stopped,
)
from targets import spawn_target

from vmainspect.model import PageInfo
from vmainspect.procfs import pages as pages_mod
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader
from vmainspect.procfs.scan import PageScanner

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


def assert_same_but_zero(scan_infos, plain_infos, vmas, own_dir: str) -> int:
    """Scan path == pagemap path, except what only PAGE_IS_PFNZERO can know without root.

    Without PFNs, plain pagemap sees the shared zero page as ``anon`` and the
    huge zero page as ``file`` (pagemap sets bit 61 on it); the scan path calls
    both ``zero``. Everything else must be equal, but the exclusive count of
    pages other processes map too (a library's, see pages_target.comparable):
    the two reads are not atomic. Returns the zero pages seen.
    """
    zero_seen = 0
    assert len(scan_infos) == len(plain_infos) == len(vmas)
    for v, s, p in zip(vmas, scan_infos, plain_infos):
        (sc, sr), (pc, pr) = _plain(s), _plain(p)
        mine = only_the_target_maps(v) or (v.path or "").startswith(own_dir + "/")
        for k in ("present", "swapped", "exclusive", "dirty", "thp", "ksm", "shared"):
            assert sc[k] == pc[k] or (k == "exclusive" and not mine), (k, v.path, hex(v.start))
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


def test_scan_path_equals_pagemap_path(main_view, main_target):
    vmas, scan, plain, _ = main_view
    assert scan.pagemap_scan and not plain.pagemap_scan
    assert (scan.pfn_visible, scan.kpageflags, scan.kpagecount) == (
        plain.pfn_visible,
        plain.kpageflags,
        plain.kpagecount,
    )
    if scan.kpageflags:  # as root: identical, page for page (but what others change)
        assert_same_pages(vmas, scan.infos, plain.infos, main_target.report["dir"])
    else:
        assert_same_but_zero(scan.infos, plain.infos, vmas, main_target.report["dir"])


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
    vmas, own = main_view[0], main_target.report["dir"]
    scan, plain = read_both(main_target.pid, vmas)
    if scan.kpageflags:
        assert_same_pages(vmas, scan.infos, plain.infos, own)
    else:
        assert_same_but_zero(scan.infos, plain.infos, vmas, own)


@pytest.mark.parametrize("use_scan", [True, False])
def test_small_chunks_and_gaps_give_the_same_answer(main_target, monkeypatch, use_scan):
    """Reads split and merged differently (chunks of 7 pages, gaps of 3) change nothing."""
    pid = main_target.pid
    vmas = vmas_of(pid)
    want = read_pages(ProcReader(pid), vmas, PAGE, use_scan=use_scan)
    with monkeypatch.context() as m:
        m.setattr(pages_mod, "CHUNK_PAGES", 7)
        m.setattr(pages_mod, "GAP_PAGES", 3)
        got = read_pages(ProcReader(pid), vmas, PAGE, use_scan=use_scan)
    # see read_both: writeback and other processes change some pages between two reads
    assert_same_pages(vmas, want.infos, got.infos, main_target.report["dir"])


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
