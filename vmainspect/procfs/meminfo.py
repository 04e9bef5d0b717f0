"""System-wide memory facts: /proc/meminfo and the writeback tunables.

``parse_meminfo`` is a pure parser (bytes in, dict out); ``read_writeback``
reads the four facts the writeback view shows through ``ProcReader``'s
global-file methods, so a fixture proc tree works the same way.
"""

from __future__ import annotations

from ..errors import VmaInspectError
from ..model import Writeback
from .reader import ProcReader


def parse_meminfo(raw: bytes) -> dict[str, int]:
    """``Name:  123 kB`` lines -> {"Name": bytes}; a value without a unit is kept as the number.

    Lines that do not parse are skipped (a future kernel may add other shapes).
    """
    out: dict[str, int] = {}
    for line in raw.split(b"\n"):
        name, colon, rest = line.partition(b":")
        if not colon:
            continue
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        if len(parts) > 1 and parts[1] == b"kB":
            value *= 1024
        out[name.decode("ascii", "replace").strip()] = value
    return out


def parse_centisecs(raw: bytes) -> float | None:
    """A /proc/sys/vm/*_centisecs value in seconds, or None if it is not a number."""
    text = raw.strip()
    if not text.isdigit():
        return None
    return int(text) / 100


def read_writeback(proc_root: str = "/proc") -> Writeback:
    """Dirty/Writeback from meminfo and the two vm tunables; what cannot be read is None."""
    reader = ProcReader(0, proc_root)

    def read(name: str) -> bytes | None:
        try:
            return reader.read_global(name)
        except (OSError, VmaInspectError):
            return None

    meminfo = read("meminfo")
    fields = parse_meminfo(meminfo) if meminfo is not None else {}
    expire = read("sys/vm/dirty_expire_centisecs")
    interval = read("sys/vm/dirty_writeback_centisecs")
    return Writeback(
        dirty=fields.get("Dirty"),
        writeback=fields.get("Writeback"),
        dirty_expire_s=parse_centisecs(expire) if expire is not None else None,
        dirty_writeback_s=parse_centisecs(interval) if interval is not None else None,
    )
