"""Human-readable sizes, in the style of pmap and htop (binary units, stdlib only)."""

from __future__ import annotations

import re
import time

_UNITS = ("K", "M", "G", "T", "P", "E")
_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGTPE]?)(?:i?B)?\s*\Z", re.IGNORECASE)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the noun that goes with it: "1 page", "2 pages", "1,024 pages"."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def human_bytes(n: int | None) -> str:
    """``n`` bytes as a short binary size: "0", "512B", "4K", "1.5M", "12G"; None -> "?".

    Sizes below 1 KiB are shown in bytes with a "B" suffix (page-sized VMAs
    never hit this, but odd smaps fields might). At most three significant
    digits: one decimal below 10 units ("1.5M"), none above ("12G", "640K").
    A trailing ".0" is dropped ("4K", not "4.0K"). Negative values (deltas)
    keep their sign.
    """
    if n is None:
        return "?"
    if n < 0:
        return "-" + human_bytes(-n)
    if n == 0:
        return "0"
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024.0
        if value < 1024.0 or unit == _UNITS[-1]:
            if value < 10.0:
                text = f"{value:.1f}"
                if text == "10.0":
                    return f"10{unit}"
                if text.endswith(".0"):
                    text = text[:-2]
                return text + unit
            rounded = round(value)
            if rounded >= 1024 and unit != _UNITS[-1]:
                continue  # e.g. 1023.7K -> shown as 1M by the next unit
            return f"{rounded}{unit}"
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """Parse "4096", "4K", "1.5M", "2GiB", "12g" into bytes (binary units).

    Raises ValueError with a one-line message on anything else.
    """
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 4K, 1.5M, 2G)")
    number, unit = m.group(1), m.group(2).upper()
    scaled = float(number) * _SUFFIX[unit] if "." in number else int(number) * _SUFFIX[unit]
    return int(scaled)


def now_iso() -> str:
    """The current UTC time as the formats write it: "2026-12-04T15:32:52.123456Z"."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def short_rate(x: float) -> str:
    """A rate in at most 4-5 characters, for a table cell or a status line: 0.5, 42, 9876,
    "850k", "12M" (SI: a thousand, not 1,024)."""
    if x < 10:
        return f"{x:.1f}".rstrip("0").rstrip(".") or "0"
    if x < 10_000:
        return f"{x:.0f}"
    if x < 10_000_000:
        return f"{x / 1000:.0f}k"
    return f"{x / 1e6:.0f}M"


def seconds_text(s: float) -> str:
    """A wait or an age as a user reads it: "1.6 s", "12 min", "3.5 h", "12 days" (a tiny
    --lock-budget makes the next read due in 10^8 s)."""
    if s < 100:
        return f"{s:.1f} s"
    if s < 100 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:,.0f} days"
