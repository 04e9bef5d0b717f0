"""Pilot tests of the TUI on replayed fixture snapshots (deterministic: no /proc)."""

from __future__ import annotations

import os

from tui_helpers import fixture_path, make_app, next_frame, wait_frames

from vmainspect.model import Frame, replace
from vmainspect.snapshot import io as snapshot_io
from vmainspect.tui.widgets.page_map import PageMapPanel
from vmainspect.tui.widgets.vma_table import VmaTable


def text_of(widget) -> str:
    """The plain text a Static currently shows."""
    return str(widget.render())


def table_lines(app) -> list[str]:
    table = app.query_one(VmaTable)
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_navigation(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        assert app.selected_vma == small.vmas[0]
        await pilot.press("down", "down")
        assert app.selected_vma == small.vmas[2]
        await pilot.press("end")
        assert app.selected_vma == small.vmas[-1]
        await pilot.press("home", "pagedown")
        table = app.query_one(VmaTable)
        page = table.scrollable_content_region.height - 1
        assert app.selected_vma == small.vmas[page]
        # the selected row is on screen and drawn with the cursor
        assert any(f"{small.vmas[page].start:012x}" in line for line in table_lines(app))


async def test_sort_by_rss_and_back(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        table = app.query_one(VmaTable)
        await pilot.press("o", "o", "o", "o")  # address -> perms -> kind -> size -> rss
        assert table.sort == "rss" and table.reverse  # numbers sort biggest first
        shown = [table.rows.vmas[i].smaps["rss"] for i in table.order]
        assert shown == sorted((v.smaps["rss"] for v in small.vmas), reverse=True)
        assert "RSS▼" in table_lines(app)[0]
        await pilot.press("O")
        shown = [table.rows.vmas[i].smaps["rss"] for i in table.order]
        assert shown == sorted(v.smaps["rss"] for v in small.vmas)
        # clicking a header sorts by that column
        x = table_lines(app)[0].index("Path")
        await pilot.click(VmaTable, offset=(x + 1, 0))
        assert table.sort == "path"
        paths = [table.rows.vmas[i].path or "" for i in table.order]
        assert paths == sorted(paths)


async def test_filter(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        table = app.query_one(VmaTable)
        await pilot.press("slash", *"libc.so")
        expected = [v for v in small.vmas if "libc.so" in (v.path or "")]
        assert expected and [table.rows.vmas[i] for i in table.order] == expected
        assert app.selected_vma in expected
        assert f"{len(expected)} of {len(small.vmas)} VMAs" in text_of(app.query_one("#status"))
        await pilot.press("enter")  # keep the filter, back to the table
        assert table.has_focus and len(table.order) == len(expected)
        await pilot.press("slash", "escape")  # clear it
        assert len(table.order) == len(small.vmas)
        # keys type into the filter, not into bindings: q does not quit, backspace deletes
        await pilot.press("slash", "q", "backspace", "enter")
        assert app.is_running and len(table.order) == len(small.vmas)
        # kind and perms match too; all words must match
        await pilot.press("slash", *"rw-s file-shared")
        assert [table.rows.vmas[i] for i in table.order] == [
            v for v in small.vmas if v.perms == "rw-s" and v.kind == "file-shared"
        ]


async def test_goto_address(small):
    app = make_app([small])
    target = next(v for v in small.vmas if v.path and "libm.so" in v.path and "x" in v.perms)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("g", *f"{target.start + 0x1234:x}", "enter")
        assert app.selected_vma == target
        # an address in a gap selects the next VMA up and says it is not mapped
        gap_end = next(b for a, b in zip(small.vmas, small.vmas[1:]) if b.start > a.end)
        addr = gap_end.start - 0x1000
        await pilot.press("g", *f"0x{addr:x}", "enter")
        assert app.selected_vma == gap_end
        assert any("is not mapped" in n.message for n in app._notifications)
        # nonsense is refused in the dialog, which stays open
        await pilot.press("g", *"xyz", "enter")
        assert "not a hex address" in text_of(app.screen.query_one("#goto-error"))
        await pilot.press("escape")
        assert app.selected_vma == gap_end


async def test_select_address_clears_a_hiding_filter(small):
    app = make_app([small])
    stack = next(v for v in small.vmas if v.kind == "stack")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("slash", *"libc", "enter")
        assert app.select_address(stack.start + 8) is True
        assert app.selected_vma == stack
        assert app.query_one(VmaTable).filter_text == ""


def _changed(snap):
    """A next tick: one VMA unmapped, one new, one grown (built from the fixture)."""
    vmas = list(snap.vmas)
    removed = vmas.pop(5)  # the anon VMA after the exe
    grow_i = next(i for i, v in enumerate(vmas) if v.kind == "heap")
    heap = vmas[grow_i]
    smaps = dict(heap.smaps, rss=heap.smaps["rss"] + 65536, private_dirty=heap.smaps["private_dirty"] + 65536)
    vmas[grow_i] = replace(heap, smaps=smaps)
    last_user = vmas[-2]
    new = replace(
        vmas[-3],
        start=last_user.start - 0x100000,
        end=last_user.start - 0xFF000,
        path=None,
        kind="anon-private",
        pages=None,
    )
    vmas.insert(len(vmas) - 2, new)  # between ld.so and the stack
    return (
        replace(snap, vmas=tuple(vmas), taken_at="2026-11-25T07:56:18.113231Z"),
        removed,
        heap,
        new,
    )


async def test_changes_are_highlighted_for_one_tick(small):
    nxt, removed, heap, new = _changed(small)
    app = make_app([small, nxt])
    async with app.run_test(size=(220, 60)) as pilot:
        await wait_frames(app, pilot)
        await next_frame(app, pilot)
        rows = app.rows
        ghost = [rows.vmas[i] for i in rows.ghost]
        assert ghost == [removed]
        assert [rows.vmas[i] for i in rows.new] == [new]
        hi = next(i for i, v in enumerate(rows.vmas) if v.start == heap.start)
        assert rows.rss_delta[hi] == 65536 and rows.dirty_delta[hi] == 65536
        lines = table_lines(app)
        assert any(line.startswith("-") and f"{removed.start:012x}" in line for line in lines)
        # the VMA count in the header does not count the ghost
        assert f"VMAs {len(nxt.vmas)}" in text_of(app.query_one("#facts"))
        # the next tick (same snapshot again): the ghost is gone, nothing is new
        await next_frame(app, pilot)
        assert not app.rows.ghost and not app.rows.new and len(app.rows) == len(nxt.vmas)


async def test_pause_and_resume():
    small = snapshot_io.load(fixture_path("small"))
    frames = [replace(small, taken_at=f"2026-11-25T07:56:{10 + i:02d}.000000Z") for i in range(50)]
    app = make_app(frames, interval=0.02)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot, 3)
        await pilot.press("space")
        assert app.paused
        while app.polling:  # a poll that was in flight lands
            await pilot.pause(0.01)
        seen = app.frames_seen
        await pilot.pause(0.3)
        assert app.frames_seen == seen  # nothing polled while paused
        assert "PAUSED" in text_of(app.query_one("#facts"))
        await pilot.press("space")
        assert not app.paused
        await wait_frames(app, pilot, seen + 2)


async def test_save_writes_a_valid_snapshot(small, tmp_path):
    app = make_app([small], save_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        files = list(tmp_path.iterdir())
        assert [f.name for f in files] == [f"vmainspect-{small.process.pid}-20261125-075616.json"]
        assert snapshot_io.load(str(files[0])) == small
        assert str(files[0]) in text_of(app.query_one("#status"))
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


async def test_save_failure_is_reported(small, tmp_path):
    app = make_app([small], save_dir=str(tmp_path / "missing" / "dir"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "save failed" in text_of(app.query_one("#status"))


async def test_process_exit_keeps_the_last_snapshot(small, tmp_path):
    gone = Frame(small, gone=True, message=f"process {small.process.pid} does not exist or has exited")
    app = make_app([small, gone], save_dir=str(tmp_path), interval=0.01)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot, 2)
        await pilot.pause(0.1)
        assert app.frames_seen == 2  # polling stopped
        assert app.current_frame.gone
        assert "EXITED" in text_of(app.query_one("#facts"))
        assert "has exited" in text_of(app.query_one("#status"))
        assert len(app.query_one(VmaTable).order) == len(small.vmas)  # still on screen
        await pilot.press("s")  # and still saveable
        await app.workers.wait_for_complete()
        assert len(list(tmp_path.iterdir())) == 1


async def test_permission_message_without_root(small_nonroot):
    app = make_app([small_nonroot])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        notes = text_of(app.query_one("#pm-notes"))
        assert "dirty state of file pages unknown: needs root (kpageflags)" in notes
        assert "needs root (kpagecount)" in notes
        counts = text_of(app.query_one("#pm-counts"))
        assert "dirty ?" in counts and "shared ?" in counts  # unknown, not 0
        assert "not root" in text_of(app.query_one("#status"))


async def test_page_map_cells_follow_the_runs(small):
    app = make_app([small])
    heap = next(v for v in small.vmas if v.kind == "heap")
    async with app.run_test(size=(220, 60)) as pilot:
        await wait_frames(app, pilot)
        app.select_address(heap.start)
        await pilot.pause()
        grid = app.query_one(PageMapPanel).query_one("#pm-grid")
        grid.render_line(0)
        per = grid.per
        # independent expectation: expand the runs page by page
        states = []
        for r in heap.pages.runs:
            states.extend([r.state] * r.count)
        rank = ("absent", "zero", "file", "anon", "swapped", "file-dirty")
        for c, cell in enumerate(grid._cells):
            chunk = states[c * per : (c + 1) * per]
            # the most significant page of the cell wins; mixed when they differ
            assert cell.state == max(set(chunk), key=rank.index)
            assert cell.mixed == (len(set(chunk)) > 1)
        assert f"{len(states):,} pages" in text_of(app.query_one("#pm-title"))


async def test_file_source_is_read_only(tmp_path, small):
    from vmainspect.tui.app import VmaInspectApp
    from vmainspect.tui.sources import FileSource

    app = VmaInspectApp(FileSource(fixture_path("small")), describe=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        assert "FILE" in text_of(app.query_one("#facts"))
        await pilot.press("space")
        assert not app.paused
        assert app.current_frame.snapshot == small


async def test_help_and_palette_list_the_actions(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Pause / resume", "Save snapshot", "Go to address", "Filter VMAs", "Sort by RSS"):
            assert t in titles


def _cursor_lines(table) -> list[int]:
    """Screen lines of the table drawn (through Textual's line cache, as they are
    on screen) with the cursor's background."""
    from textual.geometry import Region

    from vmainspect.tui.widgets.vma_cells import CURSOR

    w, h = table.size
    strips = table.render_lines(Region(0, 0, w, h))
    return [
        y
        for y, strip in enumerate(strips)
        if any(seg.style is not None and seg.style.bgcolor == CURSOR.bgcolor for seg in strip)
    ]


async def test_cursor_repaints_when_scrolled(small):
    """Moving the cursor after a scroll repaints the old and the new row (only
    changed lines are repainted, so a wrong line number leaves a stale cursor)."""
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        table = app.query_one(VmaTable)
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert table.scroll_y > 0
        for key in ("down", "up", "up"):
            await pilot.press(key)
            await pilot.pause()
            assert _cursor_lines(table) == [table.cursor - int(table.scroll_y) + 1]


async def test_tick_repaints_changed_row(small):
    """A tick repaints the rows whose data changed, also when scrolled."""
    vmas = list(small.vmas)
    k = len(vmas) // 2
    v = vmas[k]
    vmas[k] = replace(v, smaps={**v.smaps, "rss": v.smaps.get("rss", 0) + (7 << 20)})
    grown = replace(small, vmas=tuple(vmas))
    app = make_app([small, grown])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        table = app.query_one(VmaTable)
        assert app.select_address(v.start)
        await pilot.press("down")  # the changed row is not the cursor's
        await pilot.pause()
        assert table.scroll_y > 0 and app.selected_vma is not v
        await next_frame(app, pilot)
        from textual.geometry import Region

        w, h = table.size
        shown = [s.text for s in table.render_lines(Region(0, 0, w, h))]
        row = next(line for line in shown if line[1:].startswith(f"{v.start:012x}-"))
        from vmainspect.units import human_bytes

        assert human_bytes(v.smaps.get("rss", 0) + (7 << 20)) in row
