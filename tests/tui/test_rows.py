"""The table model and the page grid (pure code), checked against hand-expanded expectations."""

from __future__ import annotations

from vmainspect.model import FaultSample, FaultTick, PageCounts, PageInfo, PageRun, replace
from vmainspect.tui import rows as R
from vmainspect.tui.pagegrid import cells, scale_for


def test_order_sorts_and_filters(small):
    rows = R.build_rows(None, small)
    by_size = [rows.vmas[i].size for i in R.order(rows, "size", True)]
    assert by_size == sorted((v.size for v in small.vmas), reverse=True)
    libs = [rows.vmas[i] for i in R.order(rows, "address", False, "LIBM r-xp")]
    assert libs == [v for v in small.vmas if "libm" in (v.path or "") and v.perms == "r-xp"]
    assert R.order(rows, "address", True) == list(reversed(range(len(small.vmas))))


def test_find_address(small):
    rows = R.build_rows(None, small)
    v = small.vmas[10]
    assert R.find_address(rows, v.start + 1) == (10, True)
    assert R.find_address(rows, v.end - 1) == (10, True)
    gap = next(i for i in range(1, len(small.vmas)) if small.vmas[i].start > small.vmas[i - 1].end)
    assert R.find_address(rows, small.vmas[gap].start - 1) == (gap, False)
    assert R.find_address(rows, 0) == (0, False)


def test_fault_rates_per_vma(small):
    v = small.vmas[3]
    tick = FaultTick(mode="perf", window_s=0.5, minor=10, major=1, lost=0, by_vma={v.start: (10, 1)})
    rows = R.build_rows(None, small, tick)
    assert rows.faults == {3: (20.0, 2.0)}
    keys = R.order(rows, "flt", True)
    assert keys[0] == 3


def _vma_with_runs(small, runs, shared=None):
    base = next(v for v in small.vmas if v.kind == "anon-private")
    n = sum(c for _, c, _ in runs)
    pi = PageInfo(
        PageCounts(0, 0, 0, 0, 0, None, None, None, None, None),
        tuple(PageRun(f, c, s) for f, c, s in runs),
        shared,
    )
    return replace(base, end=base.start + n * 4096, pages=pi)


def test_grid_most_significant_state_scale_and_marks(small):
    v = _vma_with_runs(small, [(0, 3, "anon"), (3, 5, "absent"), (8, 8, "file")], shared=((9, 2),))
    assert scale_for(16, 100) == 1 and scale_for(16, 5) == 4 and scale_for(17, 4) == 8
    g = cells(v, 4096, 4)
    # cells: pages 0-3 (3 anon, 1 absent), 4-7 absent, 8-11 file (9, 10 shared), 12-15 file
    assert [c.state for c in g] == ["anon", "absent", "file", "file"]
    assert [c.mixed for c in g] == [True, False, False, False]
    assert [c.shared for c in g] == [False, False, True, False]
    prev = _vma_with_runs(small, [(0, 3, "anon"), (3, 5, "absent"), (8, 4, "absent"), (12, 4, "file")])
    tick = FaultTick(
        mode="perf",
        window_s=1,
        minor=1,
        major=0,
        lost=0,
        recent=(FaultSample(0, 1, 1, 0, v.start + 13 * 4096, False),),
    )
    g = cells(v, 4096, 4, prev=prev, faults=tick)
    assert [c.changed for c in g] == [False, False, True, False]
    assert [c.faulted for c in g] == [False, False, False, True]


def test_long_runs_cost_cells_not_pages(small):
    huge = _vma_with_runs(small, [(0, 1 << 28, "absent"), (1 << 28, 1, "anon")])  # 1 TiB
    per = scale_for(huge.npages(4096), 2000)
    g = cells(huge, 4096, per)
    assert len(g) <= 2000 and g[0].state == "absent"
    assert g[-1].state == "anon" and not g[-1].mixed  # page 2^28 opens a cell of its own


def test_faults_panel_text(small):
    from vmainspect.tui.widgets.faults import faults_text

    v = next(v for v in small.vmas if v.kind == "heap")
    tick = FaultTick(
        mode="perf",
        window_s=2.0,
        minor=40,
        major=2,
        lost=3,
        by_symbol=(("malloc+0x10", "/usr/lib/x86_64-linux-gnu/libc.so.6", 30),),
        recent=(FaultSample(0, 1, 7, 0x1234, v.start + 8192, True, "malloc+0x10"),),
        by_thread={7: (30, 2), 8: (10, 0)},
        by_transition=(("absent", "anon", 12),),
    )
    text = faults_text(tick, small, None).plain
    assert "minor 40 (20/s)" in text and "major 2 (1/s)" in text and "lost 3" in text
    assert "malloc+0x10" in text and "libc.so.6" in text and "[heap]" in text and "MAJ" in text
    assert "absent → anon" in text and "tid 7 30/2" in text
    counters = FaultTick(
        mode="counters", window_s=1.0, minor=5, major=0, lost=None, reason="perf_event_paranoid=3"
    )
    text = faults_text(counters, small, None).plain
    assert "counters only: perf_event_paranoid=3" in text and "lost" not in text
    assert "saved snapshots carry none" in faults_text(None, small, None).plain
