"""Domain errors and the exit codes they map to (stdlib only).

Every error a user can cause ends as one line on stderr and one of these exit
codes; a traceback is a bug. The codes are documented in the README.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DIFFERENT = 1  # `diff`: the snapshots differ (like diff(1))
EXIT_USAGE = 2  # bad arguments, bad or corrupt input file, wrong schema
EXIT_NO_PROCESS = 3  # no such process, or it exited / was replaced while being read
EXIT_ACCESS = 4  # permission denied (says which privilege is missing)
EXIT_OUTPUT = 5  # the output file could not be written (nothing was replaced)
EXIT_UNSUPPORTED = 6  # the kernel or system lacks a needed feature
EXIT_DEPENDENCY = 7  # an optional dependency is not installed (the message names the extra)
EXIT_INTERRUPTED = 130  # Ctrl+C


class VmaInspectError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user."""

    exit_code = 1


class BadInput(VmaInspectError):
    """Bad argument, corrupt/truncated/hostile file, wrong schema."""

    exit_code = EXIT_USAGE


class ProcessGone(VmaInspectError):
    """The process does not exist, exited while being read, or its PID was reused."""

    exit_code = EXIT_NO_PROCESS

    def __init__(self, pid: int, detail: str = "") -> None:
        self.pid = pid
        msg = f"process {pid} does not exist or has exited"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class AccessDenied(VmaInspectError):
    """Reading something needs a privilege we lack; ``missing`` names it."""

    exit_code = EXIT_ACCESS

    def __init__(self, pid: int | None, what: str, missing: str) -> None:
        self.pid = pid
        self.what = what
        self.missing = missing
        target = f"process {pid}'s {what}" if pid is not None else what
        super().__init__(f"permission denied reading {target}: {missing}")


class OutputError(VmaInspectError):
    """An output file could not be written; the previous file is untouched."""

    exit_code = EXIT_OUTPUT


class Unsupported(VmaInspectError):
    """The kernel or system lacks a feature that the command needs."""

    exit_code = EXIT_UNSUPPORTED


class MissingDependency(VmaInspectError):
    """An optional Python dependency is not installed; the message names the extra to install."""

    exit_code = EXIT_DEPENDENCY
