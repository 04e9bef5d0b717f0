"""Writing user files safely: temp file in the same folder, fsync, rename."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from typing import Callable, TextIO

from .errors import OutputError


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` atomically and return the path written.

    - ``-`` writes to stdout.
    - A path that exists and is not a regular file (``/dev/null``, a FIFO, a
      terminal) is written directly, never replaced.
    - A symlink is resolved first and its *target* is replaced atomically, so
      the link stays a link (like editors that "write through" links).
    - Otherwise a temporary file in the same folder is written, fsynced and
      renamed over ``path``; a crash mid-write leaves the old file intact.
    Raises OutputError (one line) on failure.
    """
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return path
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {path}: is a directory")
        try:
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        return path
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".vmainspect-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path
