"""Page-cache state of files and directory trees (``vmainspect cache``).

``measure(paths)`` walks each path (a file, or a directory recursively) and
asks the kernel, per regular file, how many of its pages are in the page
cache, dirty, under writeback and evicted (``procfs/cachestat.py``). The
result is the ``vmainspect/cache@1`` document (``model.cache``).

The walk is fd-relative (``openat`` from the directory's fd), never follows
symbolic links below the paths given, opens each file with ``O_NOFOLLOW`` and
``O_NONBLOCK`` (a FIFO put in a file's place cannot block it) and measures
only what ``fstat`` says is a regular file. An unreadable path or file is one
error line; everything else is still measured. Names that are not UTF-8
are shown with the undecodable bytes as ``\\xNN``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator

import msgspec

from ..model.cache import CACHE_SCHEMA, CachedFile, CacheReport, CacheTotal
from ..procfs import cachestat as cs
from ..safetext import json_visible

SCHEMA = CACHE_SCHEMA

_OPEN_FILE = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_OPEN_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


_UNKNOWN = (None, None, None, None, None)


def text_of(name: str) -> str:
    """A file-system name (str, undecodable bytes as surrogates) as valid text: those bytes shown
    as \\xNN (JSON needs valid Unicode)."""
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Walk:
    def __init__(self, page: int) -> None:
        self.page = page
        self.files: list[CachedFile] = []
        self.errors: list[str] = []
        self.refused = 0  # files whose counts the kernel would not give (EPERM)
        self.seen: set[tuple[int, int]] = set()  # (dev, inode) of files measured (hard links once)
        self.source = cs.SOURCE_CACHESTAT
        self.denied = False  # some error was a permission error (the exit code says so)

    def error(self, path: str, e: OSError | str) -> None:
        why = e if isinstance(e, str) else (e.strerror or str(e))
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM):
            self.denied = True
        self.errors.append(f"{text_of(path)}: {why}")

    def measure_fd(self, fd: int, path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return
        self.seen.add(key)
        size = st.st_size
        c: tuple[int | None, ...]
        try:
            c = cs.counts(fd)
        except OSError as e:
            if e.errno == errno.ENOSYS:  # an older kernel: residency from mincore
                self.source = cs.SOURCE_MINCORE
                try:
                    c = (cs.mincore_resident(fd), None, None, None, None)
                except OSError as e2:
                    e = e2
                    c = ()
            else:
                c = ()
            if not c:
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP):
                    self.error(path, e)
                    return
                c = _UNKNOWN  # the kernel keeps this file's page cache to itself
                self.refused += 1
        self.files.append(CachedFile(text_of(path), size, -(-size // self.page), *c))

    def file_at(self, dir_fd: int | None, name: str, path: str) -> None:
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symbolic link below a given directory: not followed
                return
            self.error(path, e)
            return
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                self.measure_fd(fd, path, st)
        finally:
            os.close(fd)

    def tree(self, dir_fd: int, path: str) -> None:
        """Every regular file below the open directory ``dir_fd`` (closed here), depth first.

        Each directory's files come first, then its subdirectories in name
        order; only the directories on the current path are open (one fd per
        level), and each is opened relative to its parent's fd.
        """
        stack: list[tuple[int, str, Iterator[str]]] = []
        subdirs = self._files_in(dir_fd, path)
        stack.append((dir_fd, path, iter(subdirs)))
        while stack:
            fd, here, todo = stack[-1]
            name = next(todo, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            child = _join(here, name)
            try:
                child_fd = os.open(name, _OPEN_DIR, dir_fd=fd)
            except OSError as e:
                if e.errno != errno.ELOOP:  # replaced by a symbolic link since the listing
                    self.error(child, e)
                continue
            stack.append((child_fd, child, iter(self._files_in(child_fd, child))))

    def _files_in(self, fd: int, here: str) -> list[str]:
        """Measure the regular files in directory ``fd``; return its subdirectories' names, sorted."""
        try:
            with os.scandir(fd) as it:
                entries = sorted(
                    (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it
                )
        except OSError as e:
            self.error(here, e)
            return []
        subdirs = []
        for name, is_dir, is_file in entries:
            if is_dir:
                subdirs.append(name)
            elif is_file:
                self.file_at(fd, name, _join(here, name))
        return subdirs


def _join(folder: str, name: str) -> str:
    return folder + name if folder.endswith("/") else folder + "/" + name


def _sum(values: Iterable[int | None]) -> int | None:
    """The sum of the known values; None when there were values and none was known."""
    values = list(values)
    known = [v for v in values if v is not None]
    return sum(known) if known or not values else None


def measure(paths: Iterable[str | bytes], page_size: int | None = None) -> tuple[CacheReport, bool]:
    """The page-cache state of every regular file at or below ``paths`` (in the order given),
    and whether any error was a permission error.

    A path given is followed if it is a symbolic link; links found while
    walking are not. A file reached twice (hard links, a path given twice)
    is measured once.
    """
    page = page_size or os.sysconf("SC_PAGE_SIZE")
    walk = _Walk(page)
    for p in paths:
        path = os.fsdecode(p)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as e:
            walk.error(path, e)
            continue
        try:
            st = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            walk.error(path, e)
            continue
        if stat.S_ISDIR(st.st_mode):
            walk.tree(fd, path.rstrip("/") or "/")  # closes fd
            continue
        try:
            if stat.S_ISREG(st.st_mode):
                walk.measure_fd(fd, path, st)
            else:
                walk.error(path, "not a regular file or directory")
        finally:
            os.close(fd)
    files = walk.files
    total = CacheTotal(
        files=len(files),
        unknown=sum(f.cached is None for f in files),
        size=sum(f.size for f in files),
        pages=sum(f.pages for f in files),
        cached=_sum(f.cached for f in files),
        dirty=_sum(f.dirty for f in files),
        writeback=_sum(f.writeback for f in files),
        evicted=_sum(f.evicted for f in files),
        recently_evicted=_sum(f.recently_evicted for f in files),
    )
    notes = []
    if walk.refused:
        notes.append(
            f"{walk.refused} file(s): the kernel gives a file's page-cache state only to its owner, "
            "a user who may write it, or root (counts null)"
        )
    if walk.source == cs.SOURCE_MINCORE:
        notes.append(
            "no cachestat in this kernel (Linux < 6.5): residency from mincore; dirty, writeback and evicted unknown"
        )
    report = CacheReport(
        page_size=page,
        source="mincore" if walk.source == cs.SOURCE_MINCORE else "cachestat",
        files=tuple(files),
        total=total,
        errors=tuple(walk.errors),
        notes=tuple(notes),
    )
    return report, walk.denied


def encode(report: CacheReport, indent: int = 2) -> bytes:
    # paths with C1 controls or bidi marks as \uXXXX (safetext.json_visible)
    return bytes(json_visible(msgspec.json.format(msgspec.json.encode(report), indent=indent)))


def decode(data: bytes | str) -> CacheReport:
    """A cache@1 document, validated (msgspec.ValidationError / DecodeError on a bad one)."""
    return msgspec.json.decode(data, type=CacheReport)
