"""The page map never hides a page: the cell rule, zoom to a range, the counts line (Pilot)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from vmainspect.model import PageCounts, PageInfo, PageRun, replace
from vmainspect.tui.pagegrid import SIGNIFICANCE, cells
from vmainspect.tui.widgets.page_map import PageGrid, PageMapPanel

PAGE = 4096


def _vma(small, runs, shared=None):
    base = next(v for v in small.vmas if v.kind == "anon-private")
    n = sum(c for _, c, _ in runs)
    counts = PageCounts(0, 0, 0, 0, 0, None, None, None, None, None)
    pi = PageInfo(counts, tuple(PageRun(f, c, s) for f, c, s in runs), shared)
    return replace(base, end=base.start + n * PAGE, pages=pi)


def _every_16th(small, total=1024):
    runs = []
    for p in range(0, total, 16):
        runs += [(p, 1, "anon"), (p + 1, 15, "absent")]
    return _vma(small, runs)


def _expand(vma):
    states = []
    for r in vma.pages.runs:
        states.extend([r.state] * r.count)
    return states


def test_every_state_pair_the_more_significant_wins(small):
    for i, low in enumerate(SIGNIFICANCE):
        for high in SIGNIFICANCE[i:]:
            v = _vma(small, [(0, 7, low), (7, 1, high)])
            (c,) = cells(v, PAGE, 8)
            assert c.state == high and c.mixed == (low != high), (low, high)


def test_one_touched_page_in_a_cell_shows(small):
    v = _every_16th(small)
    g = cells(v, PAGE, 8)  # 128 cells, every other one holds a touched page
    assert [c.state for c in g] == ["anon", "absent"] * 64
    assert [c.mixed for c in g] == [True, False] * 64


def test_zoom_draws_only_the_range(small):
    v = _every_16th(small)
    g = cells(v, PAGE, 1, first=16, count=40)
    assert len(g) == 40
    assert [i for i, c in enumerate(g) if c.state == "anon"] == [0, 16, 32]


class Host(App[None]):
    def __init__(self, size_rows: int) -> None:
        super().__init__()
        self.rows = size_rows

    def compose(self) -> ComposeResult:
        yield PageMapPanel(id="pm")

    def on_mount(self) -> None:
        self.query_one(PageMapPanel).styles.height = self.rows


async def _grid_states(app, pilot):
    await pilot.pause()
    grid = app.query_one(PageGrid)
    text = "".join(grid.render_line(y).text for y in range(grid.size.height))
    return grid, text


async def test_pilot_cell_rule_zoom_and_counts_line(small):
    v = _every_16th(small)
    app = Host(8)
    async with app.run_test(size=(60, 20)) as pilot:
        panel = app.query_one(PageMapPanel)
        panel.show(v, None, small.capabilities, None, PAGE)
        grid, text = await _grid_states(app, pilot)
        assert grid.per > 1  # 1024 pages cannot fit 1 a cell here
        states = _expand(v)
        # independent expectation: a cell is anon exactly when one of its pages is
        for c, cell in enumerate(grid._cells):
            chunk = states[c * grid.per : (c + 1) * grid.per]
            assert (cell.state == "anon") == ("anon" in chunk)
        assert text.count("░") == 64  # every touched page marks its cell
        # the counts line stays on screen in a small panel
        counts = app.query_one("#pm-counts")
        assert counts.region.height >= 1 and counts.region.bottom <= panel.region.bottom
        # zoom to 64 pages: one page a cell, the title names the range
        panel.show(v, None, small.capabilities, None, PAGE, zoom=(v.start + 16 * PAGE, 64 * PAGE))
        grid, text = await _grid_states(app, pilot)
        assert grid.per == 1 and len(grid._cells) == 64
        assert [i for i, c in enumerate(grid._cells) if c.state == "anon"] == [0, 16, 32, 48]
        title = str(app.query_one("#pm-title").render())
        assert "pages 16-79 of 1,024" in title and "1 cell = 1 page" in title
