"""Text from other users, made safe to show (stdlib only).

Process names, command lines, paths, symbols and anything read from a file
are controlled by whoever owns the process or wrote the file. Shown on a
terminal, a control character in them would be obeyed (ESC starts an escape
sequence: colours, cursor moves, window titles, on some terminals worse).
``printable`` shows every non-printable character as a visible escape
instead, the way pmap and perf do; the text output of every command and the
TUI's widgets go through it. (Markup is the TUI's other hazard: it renders
these strings as ``rich.text.Text``, never as markup; see tui/safe.py.)
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the other characters str.isprintable() refuses
# (line/paragraph separators, bidi overrides, unassigned, surrogates).
_BAD = re.compile(r"[^\x20-\x7e]")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c.isprintable():
        return c
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def printable(text: str) -> str:
    """``text`` with each non-printable character shown as ``\\xNN`` (``\\uNNNN`` above 0xff)."""
    if text.isascii() and text.isprintable():
        return text
    return _BAD.sub(_escape, text)
