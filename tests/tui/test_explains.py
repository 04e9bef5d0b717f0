"""The screen explains itself: a legend for every colour and mark, hints where there is more."""

from __future__ import annotations

from tui_helpers import make_app, wait_frames

from vmainspect.tui.rows import COLUMNS
from vmainspect.tui.screens.help import KIND_HELP, help_body
from vmainspect.tui.widgets.colours import KIND_COLOURS
from vmainspect.tui.widgets.legend import KIND_ORDER, legend_text
from vmainspect.tui.widgets.overview import KIND_BG
from vmainspect.tui.widgets.page_map import STATE_STYLE


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_every_kind_and_page_state_is_in_the_legend_and_the_help():
    from vmainspect.model import PAGE_STATES, VMA_KINDS

    assert set(KIND_ORDER) == set(VMA_KINDS) == set(KIND_COLOURS) == set(KIND_BG) == set(KIND_HELP)
    legend = legend_text().plain
    help_text = _plain(help_body())
    for word in (*VMA_KINDS, *PAGE_STATES, "unmapped", "┈12T┈", "▲", "•", "*", "!", "░", "executable"):
        assert word in help_text, word
    for word in (*VMA_KINDS, *PAGE_STATES, "┈12T┈", "▲", "•", "*", "!", "░", "executable"):
        assert word in legend, word
    assert set(STATE_STYLE) == set(PAGE_STATES)


async def test_l_toggles_the_legend_on_screen(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        assert not app.legend.display
        await pilot.press("l")
        await pilot.pause()
        assert app.legend.display and app.legend.region.height >= 4
        await pilot.press("l")
        await pilot.pause()
        assert not app.legend.display


async def test_a_saved_snapshot_offers_no_pause(small):
    for live, offered in ((False, False), (True, True)):
        app = make_app([small], live=live)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_frames(app, pilot)
            keys = {b.binding.key for b in app.active_bindings.values() if b.enabled and b.binding.show}
            assert ("space" in keys) is offered, keys


async def test_the_sorted_column_has_its_arrow_even_when_narrow(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        for col in COLUMNS:
            app.table.set_view(sort=col.key)
            await pilot.pause()
            header = "".join(s.text for s in app.table.render_line(0))  # line 0: the column titles
            assert "▲" in header, (col.key, header)


async def test_details_say_there_is_more_below(small):
    app = make_app([small])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_frames(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        body = str(app.details.query_one("#details-body").render())
        assert body.startswith("↓ smaps, VmFlags and ELF below")
