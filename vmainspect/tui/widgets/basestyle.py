"""The widget's base Rich style, computed once per style change, not per line.

``Widget.rich_style`` walks every ancestor's CSS on each call (~0.2 ms); a
Line-API widget asks for it in every ``render_line``, which at 60 lines was
a sizeable share of a key press. The cache key is the ancestors' style
revision counters and the theme, so any CSS, pseudo-class (focus, hover) or
theme change still shows at once.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def base_style(widget: Widget) -> Style:
    try:
        key = (widget.app.theme,) + tuple(n.styles._cache_key for n in widget.ancestors_with_self)
    except AttributeError:  # a textual without the private counter: no cache
        return widget.rich_style
    cached = getattr(widget, "_vi_base_style", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    style = widget.rich_style
    widget._vi_base_style = (key, style)
    return style
