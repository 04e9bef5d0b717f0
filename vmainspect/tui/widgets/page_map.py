"""The page map of the selected VMA: one cell per page (or per N pages).

A multi-page cell shows its most significant page (see ``pagegrid``) and
``░`` when its pages differ, so no page is hidden by its neighbours. The
panel can zoom to a part of the VMA (``show(..., zoom=(address, length))``):
the lecture shows a step's own pages, one per cell when they fit. The
counts line is docked at the bottom and stays visible however small the
panel is.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Static

from ...model import Capabilities, FaultTick, Vma
from ...safetext import printable
from ...units import human_bytes, plural
from ..pagegrid import Cell, cells, scale_for
from .basestyle import CachedBaseStyle

STATE_STYLE = {
    "absent": Style(color="grey35", bgcolor="grey15"),
    "file": Style(color="white", bgcolor="#2f6db5"),
    "file-dirty": Style(color="black", bgcolor="#e0913a"),
    "anon": Style(color="white", bgcolor="#3f9a45"),
    "zero": Style(color="black", bgcolor="grey62"),
    "swapped": Style(color="white", bgcolor="#a33ea0"),
}
STATE_GLYPH = {"absent": "·"}
LEGEND_ORDER = ("absent", "file", "file-dirty", "anon", "zero", "swapped")


def legend() -> Text:
    t = Text()
    for s in LEGEND_ORDER:
        t.append(" ", STATE_STYLE[s])
        t.append(s)
        t.append(" ")
    t.append("░", "bold")
    t.append("mixed ")
    t.append("•", "bold")
    t.append("shared")
    t.append(" ")
    t.append("*", "bold bright_white")
    t.append("changed")
    t.append(" ")
    t.append("!", "bold bright_yellow")
    t.append("faulted")
    return t


def capability_notes(caps: Capabilities, vma: Vma | None = None) -> list[str]:
    """What the page map cannot show in this snapshot, and why."""
    if not caps.pages:
        return ["page state not collected (--no-pages): run without it to see pages"]
    out = []
    if caps.kpageflags is False:
        out.append(
            "dirty state of file pages unknown: needs root (kpageflags); written file pages show as 'file'"
        )
    if caps.pfn_visible is False and (vma is None or vma.pages is None or vma.pages.counts.zero is None):
        out.append("PFNs hidden (needs root): the zero page shows as 'anon'")
    if caps.kpagecount is False:
        out.append("sharing with other mappings unknown: needs root (kpagecount)")
    return out


def _segment(c: Cell, base: Style) -> Segment:
    st = STATE_STYLE[c.state]
    if c.faulted:
        glyph, st = "!", st + Style(color="bright_yellow", bold=True)
    elif c.changed:
        glyph, st = "*", st + Style(color="bright_white", bold=True)
    elif c.mixed:
        glyph = "░"
    elif c.shared:
        glyph, st = "•", st + Style(bold=True)
    else:
        glyph = STATE_GLYPH.get(c.state, " ")
    return Segment(glyph, base + st)


def _run(known: dict, c: Cell, n: int, base: Style) -> Segment:
    """``n`` cells ``c`` in a row as one segment (identical cells merged)."""
    seg = known.get(c)
    if seg is None:
        seg = known[c] = _segment(c, base)
    return seg if n == 1 else Segment(seg.text * n, seg.style)


class PageGrid(CachedBaseStyle):
    """The grid itself; picks its scale from its size."""

    DEFAULT_CSS = "PageGrid { height: 1fr; min-height: 2; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.vma: Vma | None = None
        self.prev: Vma | None = None
        self.faults: FaultTick | None = None
        self.page_size = 4096
        self.per = 1
        self.first = 0  # first page shown (relative to the VMA)
        self.count: int | None = None  # pages shown (None: to the end of the VMA)
        self._cells: list[Cell] = []
        self._key: tuple | None = None
        self._seg_base: Style | None = None
        self._segs: dict[Cell, Segment] = {}

    def show(
        self,
        vma: Vma | None,
        prev: Vma | None,
        faults: FaultTick | None,
        page_size: int,
        first: int = 0,
        count: int | None = None,
    ) -> None:
        # identity: a Vma's == walks all its page runs
        same = (
            vma is self.vma
            and prev is self.prev
            and faults is self.faults
            and (page_size, first, count) == (self.page_size, self.first, self.count)
        )
        self.vma, self.prev, self.faults, self.page_size = vma, prev, faults, page_size
        self.first, self.count = first, count
        if same and self._key is not None:
            return
        old = (self._cells, self.per) if self._key is not None else None
        self._key = None
        if old is not None and self.size.width and self.size.height:
            self._compute()
            if (self._cells, self.per) == old:
                return  # a new frame, same grid (most refresh ticks): no repaint
        self.refresh()

    def _compute(self) -> None:
        w, h = self.size.width, self.size.height
        key = (id(self.vma), id(self.prev), id(self.faults), w, h, self.first, self.count)
        if key == self._key:
            return
        self._key = key
        vma = self.vma
        if vma is None or vma.pages is None or w <= 0 or h <= 0:
            self._cells = []
            return
        per = scale_for(self.shown_pages(), w * h)
        self.per = per
        self._cells = cells(
            vma, self.page_size, per, self.prev, self.faults, first=self.first, count=self.count
        )
        if isinstance(self.parent, PageMapPanel):
            self.parent.scale_changed(per)

    def shown_pages(self) -> int:
        if self.vma is None:
            return 0
        rest = max(0, self.vma.npages(self.page_size) - self.first)
        return rest if self.count is None else min(self.count, rest)

    def render_line(self, y: int) -> Strip:
        self._compute()
        w = self.size.width
        base = self.base_style
        start = y * w
        if start >= len(self._cells):
            return Strip.blank(w, base)
        # a grid has a handful of distinct cells: style each once per base style
        if self._seg_base != base:
            self._seg_base = base
            self._segs = {}
        known = self._segs
        segs: list[Segment] = []
        last = None
        run = 0
        for c in self._cells[start : start + w]:
            if c is last:
                run += 1
                continue
            if last is not None:
                segs.append(_run(known, last, run, base))
            last, run = c, 1
        if last is not None:
            segs.append(_run(known, last, run, base))
        return Strip(segs).adjust_cell_length(w, base)


class PageMapPanel(Vertical):
    """Title, legend, what is unknown and why, the grid, and the counts.

    ``zoom_to`` (address, length), when set, is the zoom of every ``show``
    that passes none: the lecture sets it to the current step's range.
    """

    zoom_to: tuple[int, int] | None = None

    DEFAULT_CSS = """
    PageMapPanel { height: 1fr; }
    PageMapPanel > .pm-line { height: auto; }
    PageMapPanel > #pm-title { height: 1; dock: top; }
    PageMapPanel > #pm-counts { height: auto; max-height: 2; dock: bottom; }
    PageMapPanel > #pm-notes { color: $warning; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="pm-title", classes="pm-line")
        yield Static(legend(), id="pm-legend", classes="pm-line")
        yield Static(id="pm-notes", classes="pm-line")
        yield PageGrid(id="pm-grid")
        yield Static(id="pm-counts", classes="pm-line")

    def show(
        self,
        vma: Vma | None,
        prev: Vma | None,
        caps: Capabilities | None,
        faults: FaultTick | None,
        page_size: int,
        zoom: tuple[int, int] | None = None,
    ) -> None:
        """Show ``vma``; ``zoom`` (address, length) limits the grid to that part of it."""
        if zoom is None:
            zoom = self.zoom_to
        first, count = 0, None
        if vma is not None and zoom is not None:
            lo, hi = max(zoom[0], vma.start), min(zoom[0] + zoom[1], vma.end)
            if lo < hi and (lo, hi) != (vma.start, vma.end):
                first = (lo - vma.start) // page_size
                count = (hi - lo + page_size - 1) // page_size
        self._vma, self._page_size, self._range = vma, page_size, (first, count)
        grid = self.query_one(PageGrid)
        notes = capability_notes(caps, vma) if caps is not None else []
        if vma is not None and caps is not None and caps.pages and vma.pages is None:
            notes.insert(
                0, "no page state for this VMA (not collected: e.g. [vsyscall] or a special mapping)"
            )
        if faults is not None and faults.period > 1 and vma is not None:
            notes.append(
                f"faulted pages marked: the sampled ones only (1 fault in {faults.period:,} sampled)"
            )
        text = "\n".join(printable(n) for n in notes)
        if text != getattr(self, "_notes", None):  # unchanged text: no re-layout
            self._notes = text
            self.query_one("#pm-notes", Static).update(Content(text))  # literal, not markup
            self.query_one("#pm-notes").display = bool(notes)
        counts = self._counts_text(vma)
        if counts.plain != getattr(self, "_counts", None):
            self._counts = counts.plain
            self.query_one("#pm-counts", Static).update(counts, layout=False)
        grid.show(vma, prev, faults, page_size, first, count)
        size = grid.size
        per = (
            scale_for(grid.shown_pages(), size.width * size.height)
            if vma is not None and size.width and size.height
            else grid.per
        )
        self.scale_changed(per)

    def scale_changed(self, per: int) -> None:
        vma = getattr(self, "_vma", None)
        title = self.query_one("#pm-title", Static)
        if vma is None:
            self._title = None
            title.update("Pages: no VMA selected", layout=False)
            return
        n = vma.npages(self._page_size)
        first, count = getattr(self, "_range", (0, None))
        scale = (
            "1 cell = 1 page" if per == 1 else f"1 cell = {per} pages ({human_bytes(per * self._page_size)})"
        )
        t = Text()
        t.append("Pages ", "bold")
        t.append(f"{vma.start:x}-{vma.end:x} ")
        if count is not None:
            t.append(f"pages {first:,}-{first + count - 1:,} of {n:,}", "bold")
            t.append(f" · {scale}", "dim" if per == 1 else "bold")
        else:
            t.append(f"{plural(n, 'page')} · {scale}", "dim" if per == 1 else "bold")
        if t != getattr(self, "_title", None):  # called from the grid's render: no needless repaint
            self._title = t
            title.update(t, layout=False)

    @staticmethod
    def _counts_text(vma: Vma | None) -> Text:
        t = Text()
        if vma is None or vma.pages is None:
            return t
        c = vma.pages.counts

        def q(x: int | None) -> str:
            return "?" if x is None else f"{x:,}"

        t.append(
            f"present {c.present:,} (file {c.file:,}, anon {c.anon:,}) · swapped {c.swapped:,}"
            f" · exclusive {c.exclusive:,} · dirty {q(c.dirty)} · zero {q(c.zero)}"
            f" · shared {q(c.shared)} · thp {q(c.thp)} · ksm {q(c.ksm)}"
        )
        return t
