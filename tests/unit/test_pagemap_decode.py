"""Pure pagemap/kpageflags decoding and run building, on hand-made bytes.

The last tests run the whole read_pages() pipeline on a fake /proc tree
(regular files laid out like pagemap, kpageflags and kpagecount): the
PAGEMAP_SCAN ioctl fails there (ENOTTY), so it also checks the fallback.
"""

from __future__ import annotations

import itertools
import os
import struct

import pytest

from vmainspect.errors import Unsupported
from vmainspect.model import PageRun, Vma
from vmainspect.procfs import pagemap as pm
from vmainspect.procfs import scan
from vmainspect.procfs.pagemap import PfnLookup
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader

P = 1 << 63  # present
S = 1 << 62  # swapped
F = 1 << 61  # file / shared anon
G = 1 << 58  # guard region marker (comes with S)
X = 1 << 56  # exclusively mapped


def entries(*vals: int) -> bytes:
    return struct.pack(f"<{len(vals)}Q", *vals)


def test_bit_positions_match_the_kernel_docs():
    assert (pm.PM_PRESENT, pm.PM_SWAP, pm.PM_FILE, pm.PM_GUARD_REGION, pm.PM_MMAP_EXCLUSIVE) == (
        P,
        S,
        F,
        G,
        X,
    )
    assert pm.PM_PFN_MASK == (1 << 55) - 1
    assert (pm.KPF_DIRTY, pm.KPF_ANON, pm.KPF_KSM, pm.KPF_THP, pm.KPF_ZERO_PAGE) == (4, 12, 21, 22, 24)


def test_pagemap_scan_ioctl_number_and_struct():
    assert scan.PAGEMAP_SCAN == 0xC0606610  # _IOWR('f', 16, struct pm_scan_arg)
    assert scan._ARG.size == 96
    assert scan.PAGE_IS_PRESENT == 8 and scan.PAGE_IS_PFNZERO == 32 and scan.PAGE_IS_GUARD == 256


def test_classify_each_state():
    raw = entries(0, P | 0x1234, P | F | 0x99, S | 0x5, S | G, P | X | 7, P | F | X | 8, X)
    codes, excl = pm.classify_masks(raw)
    assert list(codes) == [
        pm.C_ABSENT,
        pm.C_ANON,
        pm.C_FILE,
        pm.C_SWAPPED,
        pm.C_ABSENT,  # guard marker: nothing is swapped
        pm.C_ANON,
        pm.C_FILE,
        pm.C_ABSENT,
    ]
    assert list(excl) == [0, 0, 0, 0, 0, 1, 1, 0]  # bit 56 counts only on present pages


def test_soft_dirty_and_pfn_bits_do_not_change_the_state():
    raw = entries(P | (1 << 55) | pm.PM_PFN_MASK, (1 << 55))
    codes, _ = pm.classify_masks(raw)
    assert list(codes) == [pm.C_ANON, pm.C_ABSENT]


def _runs(codes: bytes, cuts=()) -> list[tuple[int, int, int]]:
    """(first, count, code) from run_lengths(), checked against its mask of run starts."""
    lens, rcodes, starts = pm.run_lengths(codes, cuts)
    firsts = list(itertools.accumulate(lens, initial=0))[:-1]
    assert [i for i, m in enumerate(starts) if m] == firsts
    return list(zip(firsts, lens, rcodes))


def test_run_lengths_and_ones():
    codes = bytes([0, 0, 4, 4, 4, 2, 0, 5, 5, 3])
    assert _runs(codes) == [(0, 2, 0), (2, 3, 4), (5, 1, 2), (6, 1, 0), (7, 2, 5), (9, 1, 3)]
    # cut where pieces (VMAs) meet: equal codes on both sides stay apart
    assert _runs(codes, [1, 3, 9]) == [(0, 1, 0), (1, 1, 0), (2, 1, 4), (3, 2, 4), (5, 1, 2), (6, 1, 0)] + [
        (7, 2, 5),
        (9, 1, 3),
    ]
    assert _runs(b"") == []
    assert _runs(bytes([4])) == [(0, 1, 4)]
    assert list(pm.iter_ones(bytes([1, 1, 0, 1, 0, 0, 1]), 5)) == [(5, 2), (8, 1), (11, 1)]


def test_run_lengths_on_a_million_pages():
    assert _runs(bytes([4]) * 1_000_000) == [(0, 1_000_000, 4)]
    every4th = bytes([4, 0, 0, 0]) * 250_000
    runs = _runs(every4th)
    assert len(runs) == 500_000 and runs[-2:] == [(999_996, 1, 4), (999_997, 3, 0)]


def test_refine_dirty_zero_thp_ksm():
    dirty, zero, thp, ksm = 1 << 4, 1 << 24, 1 << 22, 1 << 21
    facts = pm.kpageflags_facts(entries(0, dirty, zero | thp, ksm | dirty, thp, (1 << 12) | (1 << 5)))
    assert list(facts) == [0, pm.F_DIRTY, pm.F_ZERO | pm.F_THP, pm.F_KSM | pm.F_DIRTY, pm.F_THP, 0]
    f5 = facts[:5]
    file = bytes([pm.C_FILE]) * 5
    assert list(pm.refine(file, f5)) == [pm.C_FILE, pm.C_FILE_DIRTY, pm.C_ZERO, pm.C_FILE_DIRTY, pm.C_FILE]
    # anonymous pages: DIRTY is ignored (never set for them), the zero page wins
    anon = bytes([pm.C_ANON]) * 5
    assert list(pm.refine(anon, f5)) == [pm.C_ANON, pm.C_ANON, pm.C_ZERO, pm.C_ANON, pm.C_ANON]
    # not present: facts (of nothing) change nothing
    other = bytes([pm.C_ABSENT, pm.C_SWAPPED, pm.C_ABSENT, pm.C_SWAPPED, pm.C_ABSENT])
    assert pm.refine(other, f5) == other
    assert f5.translate(pm.T_THP).count(1) == 2 and f5.translate(pm.T_KSM).count(1) == 1


def test_scatter_and_masks():
    mask = bytes([0, 1, 1, 0, 0, 1, 0])
    assert list(pm.scatter(bytes([7, 8, 9]), mask)) == [0, 7, 8, 0, 0, 9, 0]
    assert pm.scatter(b"", bytes(4)) == bytes(4)
    assert list(pm.and_masks(mask, bytes([1, 1, 0, 0, 1, 1, 1]))) == [0, 1, 0, 0, 0, 1, 0]


def test_kpagecount_facts_handle_big_counts():
    assert list(pm.kpagecount_facts(entries(0, 1, 2, 300, 1 << 40, 256, 257))) == [0, 0, 1, 1, 1, 1, 1]


def _fake_read(calls):
    def read(lo, hi):  # fake kpagecount: the count of PFN p is p % 3; memory ends at 6000
        calls.append((lo, hi))
        return entries(*[p % 3 for p in range(lo, min(hi, 6000))])

    return read


@pytest.mark.parametrize(
    "pfns",
    [
        [500, 501, 10, 11, 12, 40, 10, 5000],
        [8],
        [10, 11, 12, 50, 49, 50, 51, 7, 7],
        list(range(100, 0, -1)),
        [5999, 6000, 6001, 5998],  # past the end of memory: nothing (0)
    ],
)
@pytest.mark.parametrize("bitmap", [True, False])
def test_pfn_lookup_returns_each_pfns_fact_in_order(pfns, bitmap, monkeypatch):
    if not bitmap:  # the sort taken for a PFN range too wide for a bitmap
        monkeypatch.setattr(PfnLookup, "MAX_BITMAP", 0)
    calls = []
    got = PfnLookup(entries(*(P | X | p for p in pfns))).read_facts(_fake_read(calls), pm.kpagecount_facts)
    assert list(got) == [1 if p < 6000 and p % 3 == 2 else 0 for p in pfns]
    # every PFN is read once at most: spans never overlap
    spans = sorted(calls)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize("bitmap", [True, False])
def test_pfn_lookup_few_facts_among_many(bitmap, monkeypatch):
    if not bitmap:
        monkeypatch.setattr(PfnLookup, "MAX_BITMAP", 0)
    shared = {1234, 1700, 1701, 2999}

    def read(lo, hi):  # kpagecount: 2 for a few PFNs, 1 elsewhere
        return entries(*[2 if p in shared else 1 for p in range(lo, hi)])

    pfns = list(range(1000, 3000, 3)) + list(range(1701, 1690, -1)) + [2999, 1234]
    got = PfnLookup(entries(*(P | p for p in pfns))).read_facts(read, pm.kpagecount_facts)
    assert list(got) == [1 if p in shared else 0 for p in pfns]


def test_pfn_lookup_far_above_zero():
    # PFNs of memory high in the physical address space: the bitmap starts at the lowest one
    base = 50_000_000
    shared = {base + 5, base + 700}

    def read(lo, hi):
        return entries(*[2 if p in shared else 1 for p in range(lo, hi)])

    pfns = [base + i for i in (700, 5, 3, 1000, 5)]
    look = PfnLookup(entries(*(P | p for p in pfns)))
    assert look.spans[0][0] >= base
    assert list(look.read_facts(read, pm.kpagecount_facts)) == [1, 1, 0, 0, 1]


def test_pfn_lookup_all_zero_facts_is_none():
    assert PfnLookup(entries(30, 60, 90, 31)).read_facts(_fake_read([]), pm.kpagecount_facts) is None
    assert PfnLookup(b"").read_facts(_fake_read([]), pm.kpagecount_facts) is None


def test_pfn_lookup_without_pfns():
    assert not PfnLookup(entries(P, P | X, P)).any_pfn  # PFNs hidden: all 0
    assert PfnLookup(entries(P, P | 5)).any_pfn


@pytest.mark.parametrize("bitmap", [True, False])
def test_pfn_lookup_groups_close_pfns_into_spans(bitmap, monkeypatch):
    if not bitmap:
        monkeypatch.setattr(PfnLookup, "MAX_BITMAP", 0)
    calls = []
    PfnLookup(entries(500, 501, 10, 11, 12, 40, 10, 5000), gap=64).read_facts(
        _fake_read(calls), pm.kpagecount_facts
    )
    assert sorted(calls) == [(10, 41), (500, 502), (5000, 5001)]
    calls = []
    PfnLookup(entries(10, 11, 30), gap=8).read_facts(_fake_read(calls), pm.kpagecount_facts)
    assert sorted(calls) == [(10, 12), (30, 31)]


# -- the whole pipeline on a fake /proc --------------------------------------

PAGE = 4096


def _vma(start_page: int, npages: int, path: str | None = None) -> Vma:
    return Vma(
        start_page * PAGE, (start_page + npages) * PAGE, "rw-p", 0, "00:00", 0, path, "anon-private", (), {}
    )


def _fake_proc(
    tmp_path,
    pagemap: dict[int, int],
    kflags: dict[int, int] | None,
    kcount: dict[int, int] | None,
    pid: int = 4242,
) -> ProcReader:
    d = tmp_path / str(pid)
    d.mkdir()

    def write(path, table):
        with open(path, "wb") as f:
            for idx, val in table.items():
                f.seek(idx * 8)
                f.write(struct.pack("<Q", val))

    write(d / "pagemap", pagemap)
    if kflags is not None:
        write(tmp_path / "kpageflags", kflags)
    if kcount is not None:
        write(tmp_path / "kpagecount", kcount)
    return ProcReader(pid, proc_root=str(tmp_path))


def test_read_pages_root_view_on_fake_proc(tmp_path):
    # VMA A: pages 16..24; VMA B: pages 30..34 (a 5-page hole between them)
    pmap = {
        16: P | X | 100,
        17: P | X | 101,
        18: P | 7,  # anon, anon, zero page
        20: P | F | 200,
        21: P | F | X | 201,
        22: S | 3,
        23: S | G,  # file, file-dirty, swapped, guard
        30: P | F | 300,
        31: P | F | 301,  # shared file pages
        34: 0,  # (the file's end)
    }
    flags = {100: 1 << 12, 101: (1 << 12) | (1 << 22), 7: 1 << 24, 200: 0, 201: 1 << 4, 300: 1 << 21, 301: 0}
    counts = {100: 1, 101: 1, 7: 0, 200: 1, 201: 1, 300: 2, 301: 3}
    r = _fake_proc(tmp_path, pmap, flags, counts)
    res = read_pages(r, [_vma(16, 9), _vma(30, 5)], PAGE)
    assert not res.pagemap_scan  # a regular file has no PAGEMAP_SCAN: fallback
    assert res.pfn_visible and res.kpageflags and res.kpagecount
    a, b = res.infos
    assert a.runs == (
        PageRun(0, 2, "anon"),
        PageRun(2, 1, "zero"),
        PageRun(3, 1, "absent"),
        PageRun(4, 1, "file"),
        PageRun(5, 1, "file-dirty"),
        PageRun(6, 1, "swapped"),
        PageRun(7, 2, "absent"),
    )
    c = a.counts
    assert (c.present, c.swapped, c.file, c.anon, c.exclusive) == (5, 1, 2, 3, 3)
    assert (c.dirty, c.zero, c.thp, c.ksm, c.shared) == (3, 1, 1, 0, 0)  # dirty: 2 anon + 1 file
    assert a.shared_runs == ()
    assert b.runs == (PageRun(0, 2, "file"), PageRun(2, 3, "absent"))
    assert (b.counts.ksm, b.counts.shared, b.counts.dirty) == (1, 2, 0)
    assert b.shared_runs == ((0, 2),)


def test_read_pages_without_kpageflags_marks_unknown(tmp_path):
    pmap = {16: P | X, 17: P | F, 18: S, 19: 0}  # PFNs hidden (0), as without root
    r = _fake_proc(tmp_path, pmap, None, None)
    res = read_pages(r, [_vma(16, 4)], PAGE, use_scan=False)
    assert (res.pfn_visible, res.kpageflags, res.kpagecount, res.pagemap_scan) == (False, False, False, False)
    (info,) = res.infos
    assert info.runs == (
        PageRun(0, 1, "anon"),
        PageRun(1, 1, "file"),
        PageRun(2, 1, "swapped"),
        PageRun(3, 1, "absent"),
    )
    c = info.counts
    assert (c.present, c.swapped, c.file, c.anon, c.exclusive) == (2, 1, 1, 1, 1)
    assert (c.dirty, c.zero, c.thp, c.ksm, c.shared) == (None, None, None, None, None)
    assert info.shared_runs is None
    assert any("PFNs hidden" in n for n in res.notes)


def test_read_pages_vsyscall_reads_empty_and_is_absent(tmp_path):
    # pagemap ends at the end of the user address space: [vsyscall] reads empty
    r = _fake_proc(tmp_path, {16: P | X, 18: 0}, None, None)
    vsyscall = 0xFFFFFFFFFF600000 // PAGE
    res = read_pages(r, [_vma(16, 3), _vma(vsyscall, 1, "[vsyscall]")], PAGE)
    assert res.infos[0].runs == (PageRun(0, 1, "anon"), PageRun(1, 2, "absent"))
    assert res.infos[1].runs == (PageRun(0, 1, "absent"),)


def test_read_pages_short_read_below_the_top_is_process_gone(tmp_path):
    # an exited process's open pagemap reads empty: never report "absent" for it
    from vmainspect.errors import ProcessGone

    r = _fake_proc(tmp_path, {16: P | X}, None, None)
    with pytest.raises(ProcessGone):
        read_pages(r, [_vma(16, 3)], PAGE)


def test_read_pages_huge_vma_is_read_in_chunks(tmp_path, monkeypatch):
    from vmainspect.procfs import pages

    monkeypatch.setattr(pages, "CHUNK_PAGES", 4)
    pmap = {16 + i: P | X | (1000 + i) for i in range(3, 11)}
    pmap[28] = 0
    r = _fake_proc(tmp_path, pmap, {1000 + i: 0 for i in range(3, 11)}, {1000 + i: 1 for i in range(3, 11)})
    res = read_pages(r, [_vma(16, 13)], PAGE)
    assert res.infos[0].runs == (PageRun(0, 3, "absent"), PageRun(3, 8, "anon"), PageRun(11, 2, "absent"))


def test_require_scan_on_a_file_without_it_is_unsupported(tmp_path):
    r = _fake_proc(tmp_path, {16: P}, None, None)
    with pytest.raises(Unsupported):
        read_pages(r, [_vma(16, 1)], PAGE, use_scan=True)


def test_probe_a_file_without_pagemap_scan(tmp_path):
    r = _fake_proc(tmp_path, {16: P}, None, None)
    fd = r.open("pagemap")
    try:
        assert scan.probe(r, fd) is False  # a regular file: ENOTTY
    finally:
        os.close(fd)


def test_process_gone_is_a_domain_error(tmp_path):
    from vmainspect.errors import ProcessGone

    r = ProcReader(999_999_999, proc_root=str(tmp_path))
    with pytest.raises(ProcessGone):
        read_pages(r, [_vma(16, 1)], PAGE)
    assert os.path.isdir(tmp_path)


# -- properties: random page states through the whole pipeline -------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# a page as (pagemap entry without PFN, kpageflags, kpagecount, expected state)
_KINDS = [
    (0, None, None, "absent"),
    (S | 7, None, None, "swapped"),
    (S | G, None, None, "absent"),
    (P | X, 1 << 12, 1, "anon"),
    (P, 1 << 24, 0, "zero"),
    (P | F, 1 << 24, 0, "zero"),  # the huge zero page: pagemap says file
    (P | F, 0, 2, "file"),
    (P | F | X, 1 << 4, 1, "file-dirty"),
    (P | F, (1 << 4) | (1 << 22), 3, "file-dirty"),
]


def _rle(states):
    out = []
    for i, s in enumerate(states):
        if out and out[-1][2] == s:
            out[-1][1] += 1
        else:
            out.append([i, 1, s])
    return tuple(PageRun(f, n, s) for f, n, s in out)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, len(_KINDS) - 1), min_size=1, max_size=40), min_size=1, max_size=4),
    st.integers(1, 6),
    st.randoms(use_true_random=False),
)
def test_random_pages_decode_to_their_states(tmp_path_factory, vma_pages, chunk, rnd):
    from vmainspect.procfs import pages

    tmp = tmp_path_factory.mktemp("proc")
    pmap, flags, counts = {}, {}, {}
    vmas, expect = [], []
    page = 16
    for kinds in vma_pages:
        vmas.append(_vma(page, len(kinds)))
        expect.append([_KINDS[k] for k in kinds])
        for i, k in enumerate(kinds):
            entry, kf, kc, _ = _KINDS[k]
            if entry & P:
                pfn = rnd.choice([1000 + page + i, 5000 - page - i, rnd.randrange(100, 9000)])
                while pfn in flags:  # one state per PFN
                    pfn = rnd.randrange(10000, 20000)
                pmap[page + i] = entry | pfn
                flags[pfn], counts[pfn] = kf, kc
            else:
                pmap[page + i] = entry
        page += len(kinds) + rnd.choice([0, 0, 1, 100])  # adjacent VMAs, or a hole
    old = pages.CHUNK_PAGES
    pages.CHUNK_PAGES = chunk  # also exercise chunked reads
    try:
        res = read_pages(_fake_proc(tmp, pmap, flags, counts), vmas, PAGE, use_scan=False)
    finally:
        pages.CHUNK_PAGES = old
    for info, want in zip(res.infos, expect):
        states = [w[3] for w in want]
        assert info.runs == _rle(states)
        c = info.counts
        assert c.present == sum(1 for w in want if w[0] & P)
        assert c.swapped == states.count("swapped")
        assert c.file == states.count("file") + states.count("file-dirty")
        assert c.anon == states.count("anon") + states.count("zero")
        assert c.zero == states.count("zero")
        assert c.dirty == states.count("anon") + states.count("file-dirty")
        assert c.exclusive == sum(1 for w in want if w[0] & P and w[0] & X)
        assert c.thp == sum(1 for w in want if w[1] and w[1] & (1 << 22))
        # a page is shared when kpagecount > 1 (exclusive anon pages are not looked up: 1)
        shared = [i for i, w in enumerate(want) if w[2] is not None and w[2] > 1]
        assert c.shared == len(shared)
        assert [i for f, n in info.shared_runs for i in range(f, f + n)] == shared
