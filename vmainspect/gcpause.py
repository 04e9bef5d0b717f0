"""The one place vmainspect switches Python's cyclic garbage collector.

Building a snapshot makes hundreds of thousands of small objects and no
reference cycles; while they are built, every generation-0 collection would
rescan the growing heap (a fifth of the time of a 20k-VMA collect). So the
builders (``snapshot.collect``, ``procfs.pages``, the ``snapshot`` command,
loading a snapshot file) run inside ``paused()``. Nothing is frozen
(``gc.freeze`` would move every object alive at that moment out of the
collector's reach for good, cyclic garbage included: a long TUI session grew
without bound that way). Reference counting frees acyclic objects either way.

``paused()`` nests and may be used from several threads at once: the
collector is disabled by the first to enter and enabled again by the last
to leave, and only if it was enabled before.

``settle_startup()`` is the one other switch: a long-running process (the
TUI) calls it once, when its modules and widgets exist and before any data
arrives. What exists then lives as long as the process, so freezing it once
takes tens of thousands of objects out of every later full collection
without keeping anything that would otherwise be freed.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


_settled = False


def settle_startup() -> None:
    """Collect, then freeze what exists now (once per process; later calls do nothing)."""
    global _settled
    with _lock:
        if _settled:
            return
        _settled = True
    gc.collect()
    gc.freeze()
