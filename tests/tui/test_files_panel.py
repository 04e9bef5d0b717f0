"""The TUI's files panel, Details line and writeback header on a process with dirty file pages."""

from __future__ import annotations

import os

import pytest
from dirty_target import WRITTEN, dirty_target
from kernel_cache import have_cachestat, kernel_cachestat
from tui_helpers import next_frame, wait_frames

from vmainspect.model import Frame, MappedFile, PageCache
from vmainspect.snapshot.files import DirtyClock
from vmainspect.tui.sources import FramesSource, LiveSource, SourceKind
from vmainspect.tui.widgets.files import files_text

pytestmark = pytest.mark.skipif(not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)")


def _row(app, path: str) -> list[str]:
    """The files panel's row for ``path``: CACHED PAGES DIRTY WB EVICT [DIRTY FOR]."""
    body = app.files_panel.query_one("#files-body")
    (line,) = [ln for ln in str(body.render()).splitlines() if ln.endswith("  " + path)]
    return line[: -len(path)].split()


async def test_dirty_count_falls_to_zero_when_the_file_is_written_back():
    from vmainspect.tui.app import VmaInspectApp

    with dirty_target() as (t, path):
        source = LiveSource(t.pid, interval=3600, faults=False, pages=False, lock_budget=None)
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_frames(app, pilot)
            await pilot.press("4")
            row = _row(app, path)
            kernel_after = kernel_cachestat(path)["dirty"]
            if kernel_after >= len(WRITTEN):  # nothing cleaned them since the frame was taken
                assert int(row[2]) >= len(WRITTEN), row
                assert row[-1].endswith("/30s") or "/" in row[-1]  # dirty for N s of the expiry
            assert app.select_address(t.report["addr"])
            details = str(app.details.query_one("#details-body").render())
            assert "page cache" in details and f"dirty {row[2]}" in details
            header = str(app.header.query_one("#facts").render())
            assert "System dirty " in header and "expire" in header and "working set off" in header

            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # write back this file (not the whole machine)
            finally:
                os.close(fd)
            assert kernel_cachestat(path)["dirty"] == 0
            for _ in range(50):  # bounded poll for the tick that shows it
                await next_frame(app, pilot)
                row = _row(app, path)
                if row[2] == "0":
                    break
            assert row[2] == "0" and len(row) == 5, row  # clean: no dirty-for age either
            source.close()


def _file(dirty: int | None, unknown: str | None = None) -> MappedFile:
    c = PageCache(cached=None if unknown else 4, dirty=dirty, writeback=0, evicted=0, recently_evicted=0)
    return MappedFile(
        path="/x/\x1b[31mred",
        dev="fe:00",
        inode=7,
        size=4 * 4096,
        vmas=1,
        mapped_pages=4,
        page_cache=c,
        mapped_page_cache=c,
        unknown=unknown,
    )


def test_files_text_escapes_paths_and_lists_reasons(small):
    from msgspec.structs import replace

    snap = replace(small, files=(_file(3), replace(_file(None, "[b]why[/b]"), inode=8)))
    clock = DirtyClock()
    clock.update(snap.files, 100.0)
    text = files_text(snap, clock, 135.0, None, 4096).plain
    assert "\x1b" not in text and "/x/\\x1b[31mred" in text
    assert "35s" in text  # dirty for 35 s (no expiry known)
    assert "? 1 file: [b]why[/b]" in text


async def test_working_set_key_warns_and_needs_a_live_source(small):
    from vmainspect.tui.app import VmaInspectApp

    app = VmaInspectApp(FramesSource([Frame(small)], kind=SourceKind.SNAPSHOT), describe=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("w")
        await pilot.pause()
        assert any("live process" in str(n.message) for n in app._notifications)


async def test_working_set_view_resets_referenced_bits_of_a_live_process():
    from targets import read_smaps_kb, spawn_target

    from vmainspect.tui.app import VmaInspectApp

    code = "m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE); m[0] = 1; report['addr'] = addr_of(m)"
    with spawn_target(code + "; _keep.append(m)") as t:
        addr = t.report["addr"]

        def referenced() -> int:  # the kernel's own count for the region the target wrote
            (f,) = [f for s, _e, f in read_smaps_kb(t.pid) if s == addr]
            return f["Referenced"]

        assert referenced() == 4096
        source = LiveSource(t.pid, interval=3600, faults=False, pages=False, lock_budget=None)
        source.prime()
        app = VmaInspectApp(source, interval=3600, describe=None)
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_frames(app, pilot)
            await pilot.press("w")  # on: warns, and the next ticks reset the referenced bits
            await pilot.pause()
            assert any("clear_refs" in str(n.message) for n in app._notifications)
            await next_frame(app, pilot)
            await next_frame(app, pilot)
            assert app.current_frame.wss_interval is not None
            # the target is stopped: it touched nothing since the reset, as the kernel says too
            # (file pages shared with other processes can be referenced by them: not checked)
            assert referenced() == 0
            assert "working set" in str(app.header.query_one("#facts").render())
            assert app.select_address(addr)
            details = str(app.details.query_one("#details-body").render())
            assert "working set" in details and "0 in the last" in details
            await pilot.press("w")  # off again
            await next_frame(app, pilot)
            assert app.current_frame.wss_interval is None
            source.close()
