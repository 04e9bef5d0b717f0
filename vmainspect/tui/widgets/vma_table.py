"""A virtualised VMA table (Line API): only the visible rows are ever rendered.

65,000 rows cost nothing until they scroll into view: the widget keeps the
frame's ``Rows`` and a list of row indices (filtered, sorted); ``render_line``
formats one row on demand. Line 0 is the column header and does not scroll.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...model import Vma
from .. import rows as R
from ..rows import Rows
from .basestyle import CachedBaseStyle
from .vma_cells import CURSOR, CURSOR_BLUR, column_widths, header_strip, row_strip

# From this many rows on, sorting and filtering run in a worker thread.
ASYNC_VIEW_ROWS = 20_000


class VmaTable(ScrollView, CachedBaseStyle, can_focus=True):
    """The table of VMAs of the current frame."""

    DEFAULT_CSS = """
    VmaTable { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Selected(Message):
        """The VMA under the cursor changed (or its data did)."""

        def __init__(self, table: VmaTable, vma: Vma | None) -> None:
            super().__init__()
            self.table = table
            self.vma = vma

    class ViewChanged(Message):
        """The shown rows changed after a sort or filter (status line counts)."""

    class FilterTyped(Message):
        """While filtering: the new text; ``text=None``: Esc (clear); ``done``: Enter (keep)."""

        def __init__(self, text: str | None, done: bool = False) -> None:
            super().__init__()
            self.text = text
            self.done = done

    class SortRequested(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: Rows = Rows([])
        self.order: list[int] = []
        self.sort = "address"
        self.reverse = False
        self.filter_text = ""
        self.cursor = 0
        self.pending = False  # a sort/filter is being computed in a thread
        self.filtering = False  # keys type into the filter (the app shows it)
        self.addr_digits = 12
        self._selected: Vma | None = None
        self._strips: dict = {}
        self._shown: dict = {}  # screen line -> row key drawn there; "scroll"/"size"/"base" of that drawing
        # optional callback(vma) used instead of the Selected message
        self.on_select: Callable[[Vma | None], None] | None = None

    # --- data ------------------------------------------------------------
    @property
    def selected_vma(self) -> Vma | None:
        if 0 <= self.cursor < len(self.order):
            return self.rows.vmas[self.order[self.cursor]]
        return None

    @property
    def selected_row(self) -> int | None:
        if 0 <= self.cursor < len(self.order):
            return self.order[self.cursor]
        return None

    def set_rows(self, rows: Rows, order: list[int] | None = None) -> None:
        """Show a new frame's rows, keeping the selected VMA (by start address)."""
        keep = self._selected.start if self._selected is not None else None
        self.rows = rows
        self.pending = False
        # 12 hex digits cover user space below 2^48; [vsyscall] (16 digits) is elided
        self.addr_digits = 12
        if order is None and len(rows) >= ASYNC_VIEW_ROWS and self.is_attached:
            # the view changed while this frame was prepared: address order until the thread is done
            self.order = list(range(len(rows)))
            self._restore(keep)
            self.set_view()
            return
        self.order = order if order is not None else R.order(rows, self.sort, self.reverse, self.filter_text)
        self._restore(keep)

    def set_view(
        self,
        sort: str | None = None,
        reverse: bool | None = None,
        filter_text: str | None = None,
        to_top: bool = False,
    ) -> None:
        """Change sort/filter; recomputes the index list and keeps the selection
        (``to_top``: put the cursor on the first row instead, as after a new sort)."""
        self._to_top = to_top
        if sort is not None:
            self.sort = sort
        if reverse is not None:
            self.reverse = reverse
        if filter_text is not None:
            self.filter_text = filter_text
        if len(self.rows) >= ASYNC_VIEW_ROWS and self.is_attached:
            # big tables: sort/filter in a thread; the old order stays until it lands
            self.pending = True
            self._refresh_visible_line(0)
            self._compute_view(self.rows, (self.sort, self.reverse, self.filter_text))
            return
        keep = self._selected.start if self._selected is not None else None
        self.order = R.order(self.rows, self.sort, self.reverse, self.filter_text)
        self._restore(keep)
        self.post_message(self.ViewChanged())

    @work(thread=True, exclusive=True, group="table-view", description="sort/filter VMAs")
    def _compute_view(self, rows: Rows, view: tuple) -> None:
        order = R.order(rows, *view)
        self.app.call_from_thread(self._view_ready, rows, view, order)

    def _view_ready(self, rows: Rows, view: tuple, order: list[int]) -> None:
        if rows is not self.rows or view != (self.sort, self.reverse, self.filter_text):
            return  # a newer frame or view is on its way
        self.pending = False
        keep = self._selected.start if self._selected is not None else None
        self.order = order
        self._restore(keep)
        self.post_message(self.ViewChanged())

    def _position_of(self, start: int) -> int | None:
        row = R.find_start(self.rows, start)
        if row is None:
            return None
        if self.sort == "address" and not self.filter_text and not self.reverse:
            return row  # identity order
        try:
            return self.order.index(row)
        except ValueError:
            return None

    def _restore(self, keep: int | None) -> None:
        if getattr(self, "_to_top", False):
            self._to_top = False
            keep = None
            self.cursor = 0
        pos = self._position_of(keep) if keep is not None else None
        if pos is None:
            pos = min(self.cursor, len(self.order) - 1) if self.order else 0
        self._set_virtual_rows(len(self.order) + 1)
        self._move(max(pos, 0), force=True)
        self._refresh_changed()

    def _refresh_visible_line(self, y: int) -> None:
        """Repaint screen line ``y`` of the widget (0 = the column header).
        (``ScrollView.refresh_line`` takes a virtual line and subtracts the
        scroll offset: not what is wanted here.)"""
        self.refresh(Region(0, y, max(1, self.size.width), 1))

    def _refresh_changed(self) -> None:
        """Repaint only the lines whose row content differs from what was last
        drawn there (a refresh tick changes a few rows, not the whole page)."""
        shown = self._shown
        if (
            shown.get("scroll") != int(self.scroll_y)
            or shown.get("size") != self.size
            or shown.get("base") != self.base_style
        ):
            self.refresh()
            return
        top = int(self.scroll_y)
        n = len(self.order)
        self._refresh_visible_line(0)
        for y in range(1, self.scrollable_content_region.height):
            pos = top + y - 1
            key = self._row_key(pos) if pos < n else None
            if shown.get(y) != key:
                self._refresh_visible_line(y)

    def _set_virtual_rows(self, lines: int) -> None:
        """Set the scrollable height. ``virtual_size`` is a layout reactive: a
        changed row count (every filter key) would re-lay out the whole screen
        (~50 ms at 220x60). Unless the scrollbar appears or disappears, only the
        scrollbar and this widget need updating."""
        size = Size(self.size.width or 80, lines)
        if size == self.virtual_size:
            return
        height = self.scrollable_content_region.height
        old_bar = self.virtual_size.height > height
        if not self.is_attached or not height or old_bar != (lines > height):
            self.virtual_size = size
            return
        self.set_reactive(VmaTable.virtual_size, size)
        bar = self.vertical_scrollbar  # the same bar, new proportions (public ScrollBar reactives)
        bar.window_virtual_size = size.height
        bar.window_size = self.container_size.height - self.scrollbar_size_horizontal
        bar.refresh()
        self.scroll_y = self.validate_scroll_y(self.scroll_y)
        self.refresh()

    def select_row(self, row: int) -> bool:
        """Put the cursor on row index ``row`` of ``self.rows`` (if it is shown)."""
        try:
            pos = (
                self.order.index(row)
                if not (self.sort == "address" and not self.filter_text and not self.reverse)
                else row
            )
        except ValueError:
            return False
        self._move(pos)
        return True

    # --- cursor ----------------------------------------------------------
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _move(self, pos: int, force: bool = False) -> None:
        n = len(self.order)
        pos = max(0, min(pos, n - 1)) if n else 0
        old = self.cursor
        self.cursor = pos
        # keep the cursor visible: rows are at y = pos + 1 (header is line 0)
        h = self._page()
        top = int(self.scroll_y)
        if pos < top:
            self.scroll_to(y=pos, animate=False, immediate=True)
        elif pos >= top + h:
            self.scroll_to(y=pos - h + 1, animate=False, immediate=True)
        if old != pos:
            top = int(self.scroll_y)
            self._refresh_visible_line(old - top + 1)
            self._refresh_visible_line(pos - top + 1)
        vma = self.selected_vma
        if force or vma is not self._selected:
            self._selected = vma
            if self.on_select is not None:
                # synchronous: the panels update in the same screen refresh as the cursor
                self.on_select(vma)
            else:
                self.post_message(self.Selected(self, vma))

    def start_filter(self) -> None:
        self.filtering = True
        self._typed = self.filter_text

    async def _on_key(self, event) -> None:
        """While filtering, printable keys, Backspace, Enter and Esc edit the filter
        (before any binding sees them: 'q' types a q). The text is kept here and
        updated at once, so fast typing (a paste, tmux send-keys) loses nothing."""
        key = event.key
        if not self.filtering:
            if key == "slash":  # start here too: keys right behind it must not reach bindings
                self.start_filter()
                event.stop()
                event.prevent_default()
                self.post_message(self.FilterTyped(self._typed))
            return
        if key == "escape":
            self._typed = ""
            msg = self.FilterTyped(None)
        elif key == "enter":
            msg = self.FilterTyped(self._typed, done=True)
        elif key == "backspace":
            self._typed = self._typed[:-1]
            msg = self.FilterTyped(self._typed)
        elif event.character and event.is_printable:
            self._typed += event.character
            msg = self.FilterTyped(self._typed)
        else:
            return  # arrows etc. still move the cursor
        if msg.text is None or msg.done:
            self.filtering = False
        event.stop()
        event.prevent_default()
        self.post_message(msg)

    def action_cursor(self, delta: int) -> None:
        self._move(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        self._move(self.cursor + delta * self._page())

    def action_jump(self, pos: int) -> None:
        self._move(pos if pos >= 0 else len(self.order) - 1)

    def on_click(self, event: Click) -> None:
        y = event.y
        if y == 0:
            x = 0
            for col, w in self._layout(self.size.width):
                if x <= event.x < x + w + 1:
                    self.post_message(self.SortRequested(col.key))
                    return
                x += w + 1
            return
        self._move(int(self.scroll_y) + y - 1)

    # --- rendering -------------------------------------------------------
    def _layout(self, width: int) -> list[tuple[R.Column, int]]:
        cached = getattr(self, "_columns_cache", None)
        if cached is not None and cached[0] == width:
            return cached[1]
        out = column_widths(width, self.addr_digits)
        self._columns_cache = (width, out)
        return out

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.base_style
        if y == 0:
            return self._header(width, base)
        pos = int(self.scroll_y) + y - 1
        if pos >= len(self.order):
            return Strip.blank(width, base)
        # rows are cached by what they show: a cursor move, a scroll or a refresh
        # tick renders only the rows that are new or changed, not a page
        key = self._row_key(pos)
        shown = self._shown
        shown[y] = key
        if y == 1:
            shown["scroll"], shown["size"], shown["base"] = int(self.scroll_y), self.size, base
        cache = self._strips
        ckey = (key, width, base, self.addr_digits)
        strip = cache.get(ckey)
        if strip is None:
            if len(cache) > 4000:
                cache.clear()
            strip = cache[ckey] = self._row(pos, width, base)
        return strip

    def _row_key(self, pos: int) -> tuple:
        """Everything row ``pos`` shows (its strip is cached under this)."""
        rows = self.rows
        k = self.order[pos]
        v = rows.vmas[k]
        s = v.smaps
        rd, dd = rows.rss_delta.get(k, 0), rows.dirty_delta.get(k, 0)
        return (
            v.start,
            v.end,
            v.perms,
            v.kind,
            v.path,
            s.get("rss", 0),
            R.dirty(v),
            s.get("swap", 0),
            rows.faults.get(k),
            k in rows.ghost,
            k in rows.new,
            k in rows.resized,
            (rd > 0) - (rd < 0),
            (dd > 0) - (dd < 0),
            pos == self.cursor and (1 + self.has_focus),
        )

    def _header(self, width: int, base: Style) -> Strip:
        return header_strip(
            self._layout(width), width, base, self.addr_digits, self.sort, self.reverse, self.pending
        )

    def _row(self, pos: int, width: int, base: Style) -> Strip:
        if pos == self.cursor:
            base = base + (CURSOR if self.has_focus else CURSOR_BLUR)
        return row_strip(self.rows, self.order[pos], self._layout(width), width, base, self.addr_digits)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.order) + 1)
        self._move(self.cursor)
