"""Open the very file a process maps, safely, for reading.

A VMA names its file by path, device and inode. The path is the target's
view (its mount namespace and root, perhaps a container's), and the target or
any other user may have replaced or unlinked the file since it was mapped. So:

1. ``/proc/PID/map_files/START-END`` is the mapped file itself, even when
   deleted; following those links needs CAP_SYS_ADMIN (or
   CAP_CHECKPOINT_RESTORE), so it is tried only as root.
2. ``/proc/PID/root/PATH`` resolves the path in the target's root (needs
   ptrace read access, like smaps).

Either way the file is first opened with O_PATH (no open side effects: a
FIFO, a device or a tape drive put in the file's place is never really
opened), then accepted only when it is a regular file whose device and inode
equal the VMA's; only then is it reopened read-only through
/proc/self/fd. See docs/kernel-notes.md, "Opening a process's mapped files".
"""

from __future__ import annotations

import errno
import os
import stat

from .reader import ProcReader


class MappedFileUnavailable(Exception):
    """The mapped file cannot be opened; ``str()`` is a one-line reason."""

    def __init__(self, reason: str, errno_: int | None = None) -> None:
        super().__init__(reason)
        self.errno = errno_


class MappedNotRegular(MappedFileUnavailable):
    """The VMA maps something other than a regular file (a device, say): no page cache of its own."""


def parse_dev(dev: str) -> tuple[int, int] | None:
    """maps' device field ("fe:01", hex major:minor) -> (major, minor), or None if malformed."""
    major, colon, minor = dev.partition(":")
    try:
        return (int(major, 16), int(minor, 16)) if colon else None
    except ValueError:
        return None


def same_file(st: os.stat_result, dev: str, inode: int) -> bool:
    """Is ``st`` the file maps names by ``dev`` and ``inode``?"""
    want = parse_dev(dev)
    return want is not None and st.st_ino == inode and (os.major(st.st_dev), os.minor(st.st_dev)) == want


_DELETED = " (deleted)"


def _candidates(reader: ProcReader, start: int, end: int, path: str) -> list[str]:
    paths = []
    if os.geteuid() == 0:
        paths.append(reader.path(f"map_files/{start:x}-{end:x}"))
    if path.startswith("/") and not path.endswith(_DELETED):
        paths.append(reader.path("root") + path)
    return paths


def open_mapped_file(
    reader: ProcReader, start: int, end: int, dev: str, inode: int, path: str
) -> tuple[int, os.stat_result]:
    """(read-only fd, its stat) of the file the VMA [start, end) maps; the caller closes the fd.

    Raises MappedFileUnavailable with the reason when no candidate is the
    same file (device and inode) or none could be opened.
    """
    reasons: list[str] = []
    last_errno = None
    for candidate in _candidates(reader, start, end, path):
        try:
            pfd = os.open(candidate, os.O_PATH | os.O_CLOEXEC)
        except ValueError:  # a NUL in the path
            reasons.append("its path cannot be opened")
            continue
        except OSError as e:
            last_errno = e.errno
            reasons.append(_why(candidate, e))
            continue
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                if same_file(st, dev, inode):  # the mapped thing itself: a device, not a file
                    raise MappedNotRegular("not a regular file")
                reasons.append("the path now names something other than a regular file")
                continue
            if not same_file(st, dev, inode):
                reasons.append("the file at the path was replaced since it was mapped (device/inode differ)")
                continue
            try:
                fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
            except OSError as e:
                last_errno = e.errno
                reasons.append(_why(candidate, e))
                continue
            return fd, st
        finally:
            os.close(pfd)
    if not reasons:
        reasons.append("deleted, and only root may open a deleted mapped file (map_files)")
    raise MappedFileUnavailable(reasons[-1], last_errno)


def _why(candidate: str, e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        if "/map_files/" in candidate:
            return "map_files needs CAP_SYS_ADMIN"
        return "permission denied opening it"
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no longer at its path"
    return os.strerror(e.errno or 0)


def open_as_seen_here(path: str, dev: str, inode: int) -> tuple[int, os.stat_result] | None:
    """The file at ``path`` in this process's own view, if it is the one maps names (device, inode).

    For a VMA of a process that is gone (a snapshot read from a file): a file with the
    same device and inode is the same file; anything else is not opened for reading.
    """
    if not path.startswith("/") or path.endswith(_DELETED):
        return None
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    try:
        st = os.fstat(pfd)
        if not stat.S_ISREG(st.st_mode) or not same_file(st, dev, inode):
            return None
        try:
            return os.open(
                f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
            ), st
        except OSError:
            return None
    finally:
        os.close(pfd)


def open_in_root(reader: ProcReader | None, path: str) -> int | None:
    """A read-only fd on the regular file at ``path`` inside the process's root, else in this
    process's view (a debug file found by build-id or debuglink: checked by its content)."""
    cands = ([reader.path("root") + path] if reader is not None else []) + [path]
    for cand in cands:
        try:
            pfd = os.open(cand, os.O_PATH | os.O_CLOEXEC)
        except (OSError, ValueError):
            continue
        try:
            if not stat.S_ISREG(os.fstat(pfd).st_mode):
                continue
            try:
                return os.open(
                    f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
                )
            except OSError:
                continue
        finally:
            os.close(pfd)
    return None


def file_unlinked(reader: ProcReader, start: int, end: int, dev: str, inode: int, path: str) -> bool | None:
    """Is the file a VMA maps, whose path ends in `` (deleted)``, really unlinked?

    The kernel appends the suffix to the path of an unlinked file, but a real
    file may have that name too. stat() only, nothing is opened: as root the
    mapped inode itself through ``map_files`` (unlinked: no link left); else
    the path as printed, in the target's root (a file there with the VMA's
    device and inode is a real file of that name; none, or another file, means
    the suffix is the kernel's). None: nothing could be read (stat refused).
    See docs/kernel-notes.md, "(deleted) in maps".
    """
    if os.geteuid() == 0:
        try:
            st = os.stat(reader.path(f"map_files/{start:x}-{end:x}"))
        except OSError:
            pass  # refused or gone: the path may still tell
        else:
            if same_file(st, dev, inode):
                return st.st_nlink == 0
    if not path.startswith("/"):
        return None
    try:
        st = os.stat(reader.path("root") + path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):  # refused, or a NUL in the path
        return None
    return not same_file(st, dev, inode)
