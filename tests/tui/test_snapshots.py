"""SVG snapshots of the main screens (pytest-textual-snapshot), from fixture replays.

Regenerate after an intended UI change: ``pytest tests/tui/test_snapshots.py --snapshot-update``.
Deterministic: fixture snapshots only, no clocks, ELF details from a fixed stand-in.
"""

from __future__ import annotations

from tui_helpers import make_app, next_frame, wait_frames

from vmainspect.model import Frame, replace


def _select(kind_or_path: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_frames(app, pilot)
        v = next(
            v
            for v in app.current_frame.snapshot.vmas
            if v.kind == kind_or_path or (v.path or "").endswith(kind_or_path)
        )
        app.select_address(v.start)
        await pilot.pause()

    return run_before


def test_main_100x30(snap_compare, small):
    assert snap_compare(make_app([small]), terminal_size=(100, 30), run_before=_select("heap"))


def test_main_220x60(snap_compare, small):
    assert snap_compare(make_app([small]), terminal_size=(220, 60), run_before=_select("libc.so.6"))


def test_nonroot_100x30(snap_compare, small_nonroot):
    assert snap_compare(make_app([small_nonroot]), terminal_size=(100, 30), run_before=_select("data.bin"))


def test_help_100x30(snap_compare, small):
    async def run_before(pilot) -> None:
        await wait_frames(pilot.app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app([small]), terminal_size=(100, 30), run_before=run_before)


def test_changes_and_exit_220x60(snap_compare, small):
    vmas = list(small.vmas)
    removed = vmas.pop(5)
    heap_i = next(i for i, v in enumerate(vmas) if v.kind == "heap")
    heap = vmas[heap_i]
    vmas[heap_i] = replace(heap, smaps=dict(heap.smaps, rss=heap.smaps["rss"] + 65536))
    nxt = replace(small, vmas=tuple(vmas), taken_at="2026-11-25T07:56:18.113231Z")
    gone = Frame(nxt, gone=True, message=f"process {small.process.pid} does not exist or has exited")

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_frames(app, pilot)
        app.select_address(removed.start)
        await next_frame(app, pilot)
        await pilot.pause()

    assert removed.end <= heap.start
    assert snap_compare(make_app([small, gone]), terminal_size=(220, 60), run_before=run_before)


def test_main_80x24(snap_compare, small):
    """80 columns: the address column shows the start only, so Path keeps the file name."""
    assert snap_compare(make_app([small]), terminal_size=(80, 24), run_before=_select("heap"))


def test_legend_100x30(snap_compare, small):
    async def run_before(pilot) -> None:
        await wait_frames(pilot.app, pilot)
        await pilot.press("l")
        await pilot.pause()

    assert snap_compare(make_app([small]), terminal_size=(100, 30), run_before=run_before)
