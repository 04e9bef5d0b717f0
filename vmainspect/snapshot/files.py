"""Page-cache state of the files a process maps: the snapshot's ``files``.

For every distinct regular file among the process's VMAs (by device and
inode), ``mapped_files`` opens the very file mapped (``procfs/mapped.py``:
map_files as root, /proc/PID/root otherwise, device and inode checked) and
asks cachestat(2) (``procfs/cachestat.py``) for the whole file and for the
byte ranges the process maps. Nothing is read from the files and nothing is
faulted in: the target pays nothing.

What cannot be known is null with the reason in the snapshot's notes, one
note per reason: a file the kernel will not describe to this user (cachestat
needs the owner, a writer or root), a file deleted since it was mapped
(only root reaches those, through map_files), a path replaced since.

``DirtyClock`` turns successive snapshots into "dirty for N s": how long
since a file's dirty pages were first seen, to set against
vm.dirty_expire_centisecs while the flusher writes them back.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..procfs import cachestat as cs
from ..procfs.mapped import MappedFileUnavailable, MappedNotRegular, open_mapped_file
from ..procfs.reader import ProcReader

if TYPE_CHECKING:
    from ..model import MappedFile, PageCache, Vma

_DELETED = " (deleted)"


def _page_cache(c: cs.CacheCounts | None) -> PageCache:
    from ..model import PageCache

    if c is None:
        return PageCache(cached=None, dirty=None, writeback=None, evicted=None, recently_evicted=None)
    return PageCache(
        cached=c.cached,
        dirty=c.dirty,
        writeback=c.writeback,
        evicted=c.evicted,
        recently_evicted=c.recently_evicted,
    )


def mapped_ranges(vmas: Iterable[Vma]) -> list[tuple[int, int]]:
    """The file byte ranges [start, end) the VMAs map, merged and sorted."""
    spans = sorted((v.offset, v.offset + (v.end - v.start)) for v in vmas)
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _why_unknown(e: OSError) -> str:
    if e.errno == errno.EPERM:
        return (
            "the kernel gives a file's page-cache state only to its owner, "
            "a user who may write it, or root (cachestat: EPERM)"
        )
    if e.errno == errno.EOPNOTSUPP:
        return "hugetlbfs files have no page-cache counts (cachestat: EOPNOTSUPP)"
    return f"cachestat: {e.strerror or e}"


def mapped_files(
    reader: ProcReader, vmas: Sequence[Vma], page_size: int
) -> tuple[tuple[MappedFile, ...], list[str]]:
    """(one MappedFile per distinct regular file mapped, in order of first mapping; notes)."""
    from ..model import MappedFile

    groups: dict[tuple[str, int], list[Vma]] = {}
    for v in vmas:
        if v.inode and v.path and v.path.startswith("/"):
            groups.setdefault((v.dev, v.inode), []).append(v)
    out: list[MappedFile] = []
    unknown: dict[str, int] = {}  # reason -> files
    for (dev, inode), group in groups.items():
        first = group[0]
        path = first.path
        assert path is not None
        ranges = mapped_ranges(group)
        size: int | None = None
        whole = mapped = None
        reason = None
        try:
            fd, st = open_mapped_file(reader, first.start, first.end, dev, inode, path)
        except MappedNotRegular:
            continue  # a device or the like: it has no page cache of its own
        except MappedFileUnavailable as e:
            reason = str(e)
            if path.endswith(_DELETED) and os.geteuid() != 0:
                reason = "deleted since it was mapped; only root reaches deleted files (map_files)"
        else:
            try:
                size = st.st_size
                whole = cs.page_cache(fd)
                mapped = cs.CacheCounts(0, 0, 0, 0, 0, whole.source)
                for lo, hi in ranges:
                    mapped = mapped + cs.page_cache(fd, lo, hi - lo)
            except OSError as e:
                whole = mapped = None
                reason = _why_unknown(e)
            finally:
                os.close(fd)
        if reason is not None:
            unknown[reason] = unknown.get(reason, 0) + 1
        out.append(
            MappedFile(
                path=path,
                dev=dev,
                inode=inode,
                size=size,
                vmas=len(group),
                mapped_pages=sum(-(-(hi - lo) // page_size) for lo, hi in ranges),
                page_cache=_page_cache(whole),
                mapped_page_cache=_page_cache(mapped),
                unknown=reason,
            )
        )
    notes = [f"page cache of {n} mapped file{'s' if n != 1 else ''} unknown: {r}" for r, n in unknown.items()]
    if any(f.page_cache.cached is not None for f in out) and not cs.have_cachestat():
        notes.append(
            "no cachestat in this kernel (Linux < 6.5): mapped files' residency from mincore; "
            "dirty, writeback and evicted unknown"
        )
    return tuple(out), notes


class DirtyClock:
    """How long each file's pages have been dirty, as far as successive snapshots saw.

    ``update`` is fed each new snapshot's files and the time it was taken
    (monotonic seconds); a file's clock starts when its dirty count is first
    seen above zero and stops when it is seen at zero (written back).
    """

    def __init__(self) -> None:
        self._since: dict[tuple[str, int], float] = {}

    def update(self, files: Iterable[MappedFile], now: float) -> None:
        seen = set()
        for f in files:
            key = (f.dev, f.inode)
            seen.add(key)
            dirty = f.page_cache.dirty
            if dirty:
                self._since.setdefault(key, now)
            elif dirty == 0:
                self._since.pop(key, None)
        for key in list(self._since):
            if key not in seen:  # unmapped: no longer watched
                del self._since[key]

    def dirty_for(self, f: MappedFile, now: float) -> float | None:
        """Seconds since ``f``'s dirty pages were first seen, or None if it is not dirty."""
        t = self._since.get((f.dev, f.inode))
        return None if t is None else now - t
