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


# The same hazards inside JSON text, as UTF-8 bytes: C1 controls (U+0080-009F: U+009B is
# CSI to a terminal that takes 8-bit controls), the soft hyphen, the Arabic letter mark,
# zero-width and bidi marks (U+200B-200F), line and paragraph separators and bidi
# embeddings and overrides (U+2028-202E), invisible operators and bidi isolates
# (U+2060-206F), the byte order mark and interlinear annotations. A JSON encoder writes
# them as they are (only U+0000-001F must be escaped); the bytes of a multi-byte UTF-8
# character never occur inside another, and outside strings JSON is ASCII.
_JSON_INVISIBLE = re.compile(
    rb"\xc2[\x80-\x9f\xad]|\xd8\x9c|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa0-\xaf]|\xef\xbb\xbf|\xef\xbf[\xb9-\xbb]"
)


def _u_escape(m: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(m.group().decode())


def json_visible(doc: bytes | bytearray) -> bytes | bytearray:
    """JSON text (UTF-8) with the characters above written as ``\\uXXXX`` escapes: the same
    document to a JSON reader, visible text on a terminal (``snapshot`` writes to stdout by
    default). Returns ``doc`` itself when it has none (the common case: one scan, no copy)."""
    if doc.isascii() or _JSON_INVISIBLE.search(doc) is None:  # isascii: ~100x faster than the scan
        return doc
    return _JSON_INVISIBLE.sub(_u_escape, doc)
