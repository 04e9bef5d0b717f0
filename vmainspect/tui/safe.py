"""Strings from processes and files, as literal text for the widgets.

Textual renders a ``str`` as markup in many places (``Static.update``,
``Label``, ``DataTable`` cells, ``notify``): a process named ``[/]x`` would
crash them, and one named ``[link=...]`` would restyle the screen. Widgets
build ``rich.text.Text`` from these strings instead, and control characters
are escaped (``vmainspect.safetext.printable``) so none reaches the terminal.
"""

from __future__ import annotations

from rich.text import Text

from ..safetext import printable


def literal(text: str | None, style: str = "") -> Text:
    """``text`` (None: empty) as a Text that is shown exactly, control characters escaped."""
    return Text(printable(text or ""), style=style, end="")
