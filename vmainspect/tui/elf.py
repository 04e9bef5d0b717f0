"""ELF details for the Details panel: read off the UI thread, cached per mapping.

``ElfDetails.lookup(vma, snapshot)`` returns what to show now: the cached
lines, None (not an ELF file mapping), or a "reading" line while the app's
worker reads the headers with ``ElfDetails.read``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from ..model import Snapshot, Vma

Lines = list[str] | str | None  # lines, one error line, or nothing to say
Describe = Callable[[Vma], list[str] | None]
Key = tuple[str, int, int, int]

READING = "reading ELF headers…"
CACHE_ENTRIES = 512  # mappings whose details are kept (the ones the cursor visited last)


def _describe_with_snapshot(vma: Vma, snapshot: Snapshot | None) -> list[str] | None:
    from ..faults.symbolize import describe_vma

    # with the snapshot, the load bias comes from the file's lowest mapping (unambiguous)
    return describe_vma(vma, snapshot=snapshot)


class ElfDetails:
    """``describe``: "default" (the symbolizer), a function of a VMA (tests), or None (off)."""

    def __init__(self, describe: Describe | str | None = "default") -> None:
        self._custom: Describe | None = None if isinstance(describe, str) else describe
        self.enabled = describe is not None
        self._cache: OrderedDict[Key, Lines] = OrderedDict()

    @staticmethod
    def key(vma: Vma) -> Key | None:
        """The cache key of a file mapping, None for anything else."""
        if not vma.path or not vma.path.startswith("/") or vma.inode == 0:
            return None
        return (vma.path, vma.start, vma.end, vma.offset)

    def cached(self, key: Key) -> tuple[bool, Lines]:
        if key not in self._cache:
            return False, None
        self._cache.move_to_end(key)
        return True, self._cache[key]

    def read(self, vma: Vma, snapshot: Snapshot | None) -> Lines:
        """Runs in a worker thread: the lines, or one line saying why there are none."""
        try:
            if self._custom is not None:
                return self._custom(vma)
            return _describe_with_snapshot(vma, snapshot)
        except (OSError, ValueError) as e:
            return f"cannot read ELF: {e}"

    def store(self, key: Key, lines: Lines) -> None:
        self._cache[key] = lines
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
