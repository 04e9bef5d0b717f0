"""The faults panel shows the attribution `vmainspect faults` prints: mapping rows by identity,
readable C++ names, and what could not be sampled or placed."""

from __future__ import annotations

from vmainspect.faults.demangle import available
from vmainspect.model import FaultSample, FaultTick
from vmainspect.tui.widgets.faults import faults_text

MANGLED = "_ZN7lecture6memory11touch_pagesEPcl"
READABLE = "lecture::memory::touch_pages(char*, long)"


def test_panel_shows_mappings_unsampled_unattributed_and_readable_names(small):
    heap = next(v for v in small.vmas if v.kind == "heap")
    tick = FaultTick(
        mode="perf",
        window_s=1.0,
        minor=9000,
        major=0,
        lost=0,
        by_symbol=((MANGLED, "/opt/lecture", 8192),),
        recent=(FaultSample(0, 1, 7, 0x1234, heap.start + 8192, False, MANGLED + "+0x1c"),),
        by_mapping=((heap.start, heap.start + (32 << 20), "rw-p", "heap", "[heap]", 8192, 0),),
        unattributed=808,
        unsampled=199,
    )
    text = faults_text(tick, small, None).plain
    assert "not sampled 199" in text and "unattributed 808" in text
    assert "[heap]" in text and "32M" in text
    if available():
        assert READABLE in text and READABLE + "+0x1c" in text and MANGLED not in text
    else:
        assert MANGLED in text


def test_nothing_hidden_means_nothing_said(small):
    tick = FaultTick(mode="perf", window_s=1.0, minor=1, major=0, lost=0, unattributed=0, unsampled=0)
    text = faults_text(tick, small, None).plain
    assert "not sampled" not in text and "unattributed" not in text


def test_scaled_figures_are_marked_as_estimates_and_the_totals_are_not(small):
    heap = next(v for v in small.vmas if v.kind == "heap")
    tick = FaultTick(
        mode="perf",
        window_s=1.0,
        minor=850_123,
        major=0,
        lost=0,
        by_symbol=(("main", "/opt/t", 849_984),),
        by_thread={7: (849_984, 0), 8: (64, 0)},
        by_mapping=((heap.start, heap.end, "rw-p", "heap", "[heap]", 849_984, 0),),
        unattributed=128,
        period=64,
    )
    text = faults_text(tick, small, None).plain
    assert "sampling 1 fault in 64 (850k faults/s; --max-fault-rate)" in text
    assert "minor 850,123 " in text  # the exact total: unmarked
    assert "~849,984 " in text and "unattributed ~128" in text and "tid 7 ~849,984/0" in text
    every = faults_text(msgspec_replace(tick, period=1), small, None).plain
    assert "~" not in every and "sampling 1 fault" not in every


def msgspec_replace(tick: FaultTick, **kw: object) -> FaultTick:
    from vmainspect.model import replace

    return replace(tick, **kw)
