"""Standard output that fails as one line: full (`> /dev/full`), closed (`>&-`) or broken.

``guard()`` wraps sys.stdout (and its binary buffer) so that a write that
fails raises StdoutFailed, an OutputError (exit 5, one line), instead of an
OSError traceback from deep inside a command; with fd 1 closed at start-up
(sys.stdout is None) the first write fails the same way. ``silence()``
points fd 1 at /dev/null afterwards, so the interpreter's own flush at exit
cannot fail again (which would print "Exception ignored" and exit 120).
A reader that went away (EPIPE: `| head`) stays BrokenPipeError: cli.main
treats it as the end of the output, not an error.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .errors import OutputError


class StdoutFailed(OutputError):
    """Standard output could not be written."""


class _Guarded:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _fail(self, e: OSError | None) -> StdoutFailed:
        why = "it is closed" if e is None else (e.strerror or str(e))
        return StdoutFailed(f"cannot write to standard output: {why}")

    def write(self, data: Any) -> int:
        if self._stream is None:
            raise self._fail(None)
        try:
            return int(self._stream.write(data))
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._fail(e) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise self._fail(e) from None

    @property
    def buffer(self) -> _Guarded:
        return _Guarded(getattr(self._stream, "buffer", None))

    def isatty(self) -> bool:
        return self._stream is not None and bool(self._stream.isatty())

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise self._fail(None)
        return getattr(self._stream, name)


def guard() -> None:
    """Wrap the process's real stdout (not a test's replacement)."""
    if sys.stdout is None or sys.stdout is sys.__stdout__:
        sys.stdout = _Guarded(sys.stdout)


def silence() -> None:
    """After stdout failed: discard anything still buffered, at exit too."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.close(fd)
    except OSError:
        pass
