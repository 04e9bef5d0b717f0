"""What one line of the VMA table shows: the column widths, the header and a row as a Strip.

Pure functions of the frame's ``Rows`` and the table's settings; ``VmaTable``
(vma_table.py) decides which rows are visible and caches their strips.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ...safetext import printable
from ...units import human_bytes, short_rate
from .. import rows as R
from ..rows import COLUMNS, Rows
from .colours import KIND_COLOURS

# Below this width (of the table's text) the address column shows the start only (the size column
# says how far it reaches), so that Path keeps room for a file name.
NARROW_ADDRESS_WIDTH = 90

_HEADER = Style(bold=True, underline=True)
CURSOR = Style(bgcolor="#264f78", color="white")
CURSOR_BLUR = Style(bgcolor="#3a3a3a")
_GHOST = Style(color="grey42", strike=True)
_NEW = Style(color="bright_green", bold=True)
_UP = Style(color="bright_green", bold=True)
_DOWN = Style(color="orange3")
_RESIZED = Style(color="bright_yellow", bold=True)
_DIM = Style(color="grey50")
_EXEC = Style(color="bright_red")

Layout = list[tuple[R.Column, int]]


def column_widths(width: int, addr_digits: int) -> Layout:
    """Each column and its width in a table ``width`` cells wide (Path takes what is left)."""
    out = []
    used = 1  # change marker column
    for col in COLUMNS:
        if col.key == "address":
            w = addr_digits * 2 + 1 if width >= NARROW_ADDRESS_WIDTH else addr_digits
        elif col.width:
            w = col.width
        else:
            w = max(4, width - used - 1)
        out.append((col, w))
        used += w + 1
    return out


def header_strip(
    layout: Layout, width: int, base: Style, addr_digits: int, sort: str, reverse: bool, pending: bool
) -> Strip:
    """The column titles; the sort column's carries ▲/▼ (⧗ while a sort is computed)."""
    segs = [Segment(" ", base)]
    arrow = "▲" if not reverse else "▼"
    for col, w in layout:
        title = col.title if col.key != "address" or w > addr_digits else "Start"
        if col.key == sort:  # the arrow stays when the title must shorten (Perm is 4 wide)
            title = title[: max(0, w - 1)] + ("⧗" if pending else arrow)
        text = title.rjust(w) if col.right else title.ljust(w)
        st = base + _HEADER
        if col.key == sort:
            st += Style(color="bright_yellow")
        segs.append(Segment(text[:w], st))
        segs.append(Segment(" ", base))
    return Strip(segs).adjust_cell_length(width, base)


def row_strip(rows: Rows, k: int, layout: Layout, width: int, base: Style, addr_digits: int) -> Strip:
    """Row ``k`` of ``rows`` (``base`` already holds the cursor's style where it is on it)."""
    v = rows.vmas[k]
    ghost = k in rows.ghost
    if ghost:
        mark, mst = "-", base + _GHOST
    elif k in rows.new:
        mark, mst = "+", base + _NEW
    else:
        mark, mst = " ", base
    segs = [Segment(mark, mst)]
    rowst = base + _GHOST if ghost else base
    d = addr_digits
    for col, w in layout:
        st = rowst
        key = col.key
        if key == "address":
            text = f"{v.start:0{d}x}-{v.end:0{d}x}" if w > d else f"{v.start:0{d}x}"
            if len(text) > w and w > d:  # [vsyscall], above 2^48: the start and the size, whole
                text = f"{v.start:x} +{human_bytes(v.end - v.start)}"
        elif key == "perms":
            text = printable(v.perms)
            if not ghost and "x" in v.perms:
                st = rowst + _EXEC
        elif key == "kind":
            text = printable(v.kind)
            if not ghost:
                st = rowst + Style(color=KIND_COLOURS.get(v.kind))
        elif key == "size":
            text = human_bytes(v.end - v.start)
            if k in rows.resized and not ghost:
                st = rowst + _RESIZED
        elif key == "rss":
            text = human_bytes(R.rss(v))
            st = _delta_style(rowst, rows.rss_delta.get(k), ghost)
        elif key == "dirty":
            text = human_bytes(R.dirty(v))
            st = _delta_style(rowst, rows.dirty_delta.get(k), ghost)
        elif key == "swap":
            s = R.swap(v)
            text = human_bytes(s)
            if not s:
                st = rowst + _DIM
        elif key == "flt":
            f = rows.faults.get(k)
            if f is None:
                text, st = "-", rowst + _DIM
            else:
                total = f[0] + f[1]
                text = ("~" if rows.fault_period > 1 else "") + short_rate(total)  # ~: an estimate
                st = rowst + Style(color="bright_red" if f[1] else "orange1", bold=total >= 100)
        else:
            text = printable(v.path or "")
            if len(text) > w > 1:
                text = "…" + text[len(text) - w + 1 :]  # keep the file name
        if len(text) > w:
            text = text[: w - 1] + "…" if w > 1 else text[:w]
        text = text.rjust(w) if col.right else text.ljust(w)
        segs.append(Segment(text, st))
        segs.append(Segment(" ", rowst))
    return Strip(segs).adjust_cell_length(width, base)


def _delta_style(st: Style, delta: int | None, ghost: bool) -> Style:
    if ghost or not delta:
        return st
    return st + (_UP if delta > 0 else _DOWN)
