"""The widget's base Rich style, computed once per style change, not per line.

``Widget.rich_style`` walks every ancestor's CSS on each call (~0.2 ms); a
Line-API widget asks for it in every ``render_line``, which at 60 lines was
a sizeable share of a key press. ``CachedBaseStyle`` keeps the result until
Textual calls ``notify_style_update()`` (its public hook, called on the node
and its descendants for any CSS, pseudo-class such as focus or hover, or
theme change), so a change still shows at once.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


class CachedBaseStyle(Widget):
    """Mix in before a Widget subclass: ``self.base_style`` is ``rich_style``, cached."""

    _base_style_cache: Style | None = None

    @property
    def base_style(self) -> Style:
        style = self._base_style_cache
        if style is None:
            style = self._base_style_cache = self.rich_style
        return style

    def notify_style_update(self) -> None:
        self._base_style_cache = None
        super().notify_style_update()
