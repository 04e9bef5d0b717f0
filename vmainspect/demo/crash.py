"""The crash experiment: what happens to mmap'ed data when a process dies?

For each (mapping, ending) case a throwaway child (crash_child.py) maps a
fresh temp file (or anonymous memory), writes known bytes to a few pages
and stops itself. vmainspect then measures:

- ``dirty_before``: dirty pages of the mapping just before the end, from
  the child's snapshot (kpageflags DIRTY for file pages, present anonymous
  pages are dirty by nature); None without root;
- the child is continued and ends (SIGKILL, SIGSEGV, abort, exit); its
  wait status says how (``ended_by``);
- ``in_file_after``: the file read back with read(2) holds the written bytes
  (None for anonymous memory: there is no file);
- ``dirty_in_cache_after``: the file's pages still dirty in the page cache,
  i.e. not yet on disk, from cachestat(2) (no root needed); on a kernel
  without cachestat vmainspect maps each file read-only, touches every page
  and reads kpageflags for its own mapping (None without root).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from ..errors import VmaInspectError
from ..model import ANON, FILE_DIRTY, Snapshot
from ..model.crash import CRASH_SCHEMA, CaseRecord, CrashReport
from . import libc
from . import measure as m
from .control import PREFIX, module_command, temp_root
from .crash_child import ENDINGS, MAPPINGS

SCHEMA = CRASH_SCHEMA
FILE_PAGES = 16
WRITE_PAGES = (0, 2, 4, 6, 9, 11, 13, 15)
DATA = "CRASH TEST DATA!"


@dataclass
class CaseResult:
    mapping: str
    ending: str
    written_pages: int
    dirty_before: int | None
    in_file_after: bool | None
    dirty_in_cache_after: int | None
    ended_by: str  # "SIGKILL", "SIGSEGV", "SIGABRT", "exit 0"


def _before_bytes(p: int) -> bytes:
    return bytes([0x30 + p % 10]) * len(DATA)


def _make_file(path: str, page: int) -> None:
    with open(path, "wb") as f:
        for p in range(FILE_PAGES):
            f.write(_before_bytes(p).ljust(page, b"."))
        f.flush()
        os.fsync(f.fileno())


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    return f"status {status}"


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert proc.stdout
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line:
        err = b""
        if proc.poll() is not None and proc.stderr:
            err = proc.stderr.read()
        raise VmaInspectError(
            "crash experiment child did not report"
            + (f": {err.decode(errors='replace').strip().splitlines()[-1]}" if err.strip() else "")
        )
    reply: dict[str, Any] = json.loads(line)
    return reply


def case_path(folder: str, mapping: str, ending: str) -> str:
    return os.path.join(folder, f"crash-{mapping.replace('+', '-')}-{ending}.dat")


def start_case(
    mapping: str, ending: str, folder: str, page: int
) -> tuple[subprocess.Popen[bytes], str | None]:
    """Create the case's file and start its child (which will stop itself)."""
    path = case_path(folder, mapping, ending)
    if mapping != "anonymous":
        _make_file(path, page)
    argv, env = module_command(
        "crash_child", mapping, ending, path, str(FILE_PAGES), DATA, ",".join(map(str, WRITE_PAGES))
    )
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=folder
    )
    return proc, (path if mapping != "anonymous" else None)


def finish_case(
    mapping: str,
    ending: str,
    proc: subprocess.Popen[bytes],
    path: str | None,
    collect_fn: Callable[..., Snapshot],
    page: int,
) -> CaseResult:
    """Measure the stopped child, let it end, read the file back (dirty_in_cache_after: None)."""
    try:
        where = _read_line(proc, 30.0)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)  # the kernel says: it is stopped
        if not os.WIFSTOPPED(status):
            raise VmaInspectError(f"crash experiment child ended early: {_status_text(status)}")
        snap = collect_fn(proc.pid, pages=True)
        dirty_before = None
        if snap.capabilities.kpageflags:
            dirty_before = len(m.pages_in(snap, where["addr"], where["len"], (FILE_DIRTY, ANON)))
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait(30.0)
        rc = proc.returncode
        ended_by = signal.Signals(-rc).name if rc < 0 else f"exit {rc}"
    finally:
        _end(proc)
    in_file = None
    if path is not None:
        in_file = m.file_pages_equal(path, page, list(WRITE_PAGES), lambda p: DATA.encode())
    return CaseResult(mapping, ending, len(WRITE_PAGES), dirty_before, in_file, None, ended_by)


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()


def dirty_in_cache(paths: list[str], collect_fn: Callable[..., Snapshot]) -> dict[str, int] | None:
    """Pages of each file still dirty in the page cache, or None when it cannot be known.

    cachestat(2) (Linux 6.5+) answers for files we own or may write, without
    root: these are our own temp files. On an older kernel the files are
    mapped read-only here, one byte per page read so the page-cache pages
    appear in our page tables (reading never dirties a page; a page not
    cached is read from disk, clean), and kpageflags (root only) says which
    are dirty.
    """
    if not paths:
        return {}
    from ..procfs.cachestat import cachestat

    try:
        out = {}
        for path in paths:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                dirty = cachestat(fd).dirty
            finally:
                os.close(fd)
            assert dirty is not None  # cachestat itself always counts dirty pages
            out[path] = dirty
        return out
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
    return _dirty_in_cache_kpageflags(paths, collect_fn)


def _dirty_in_cache_kpageflags(
    paths: list[str], collect_fn: Callable[..., Snapshot]
) -> dict[str, int] | None:
    maps: list[tuple[str, int, int]] = []
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                n = os.fstat(fd).st_size
                addr = libc.mmap_(n, libc.PROT_READ, libc.MAP_SHARED, fd, 0)
            finally:
                os.close(fd)
            maps.append((path, addr, n))
            for off in range(0, n, libc.PAGE):
                libc.read_bytes(addr + off, 1)
        snap = collect_fn(os.getpid(), pages=True)
        if not snap.capabilities.kpageflags:
            return None
        return {path: len(m.pages_in(snap, addr, n, (FILE_DIRTY,))) for path, addr, n in maps}
    finally:
        for _, addr, n in maps:
            libc.munmap(addr, n)


def run_matrix(
    mappings: Iterable[str] = MAPPINGS,
    endings: Iterable[str] = ENDINGS,
    *,
    folder: str | None = None,
    collect_fn: Callable[..., Snapshot] | None = None,
    keep_files: bool = False,
) -> list[CaseResult]:
    """Run every (mapping, ending) case in throwaway children; temp files are removed.

    ``keep_files`` (with ``folder``): leave the case files in the folder (the
    lecture maps one to show its pages; its folder goes with the lecture).
    """
    if collect_fn is None:
        from ..snapshot.collect import collect

        collect_fn = collect
    page = os.sysconf("SC_PAGE_SIZE")
    own = folder is None
    if own:
        folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-crash-", dir=temp_root())
    assert folder is not None
    cases = [(mp, e) for mp in mappings for e in endings]
    for mp, e in cases:
        if mp not in MAPPINGS or e not in ENDINGS:
            raise ValueError(f"unknown case {mp}/{e}")
    started: list[tuple[subprocess.Popen[bytes], str | None]] = []
    try:
        # start every child first: they start up in parallel and stop themselves
        for mp, e in cases:
            started.append(start_case(mp, e, folder, page))
        results = [
            finish_case(mp, e, proc, path, collect_fn, page) for (mp, e), (proc, path) in zip(cases, started)
        ]
        files = [path for _, path in started]
        dirty = dirty_in_cache([p for p in files if p], collect_fn)
        if dirty is not None:
            for res, path in zip(results, files):
                if path:
                    res.dirty_in_cache_after = dirty[path]
        return results
    finally:
        for proc, _ in started:
            _end(proc)
        if own:
            shutil.rmtree(folder, ignore_errors=True)
        elif not keep_files:  # a folder someone else owns (the lecture's): remove exactly our files
            for mp, e in cases:
                with contextlib.suppress(OSError):
                    os.unlink(case_path(folder, mp, e))


def report(results: list[CaseResult], *, root: bool, seconds: float | None = None) -> CrashReport:
    """The results as their ``vmainspect/crash@1`` document (``model.crash``)."""
    return CrashReport(
        root=root,
        file_pages=FILE_PAGES,
        cases=tuple(CaseRecord(**asdict(r)) for r in results),
        seconds=None if seconds is None else round(seconds, 3),
    )


def to_json(results: list[CaseResult], *, root: bool, seconds: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(report(results, root=root, seconds=seconds))
    return out


EXPLANATION = """\
What this means:
- A process crash (any signal, or exit without munmap) loses nothing written
  to a MAP_SHARED file mapping: the bytes are in the page cache, which belongs
  to the kernel, not the process; read(2) and later the disk get them.
- Until writeback, those pages are dirty in the page cache: a kernel crash or
  power loss now would lose them (dirty_in_cache_after > 0).
- msync(MS_SYNC) writes them to disk and waits: nothing is left dirty.
- MAP_PRIVATE writes are copy-on-write copies in anonymous memory: they never
  reach the file, crash or not. Anonymous memory simply vanishes."""


def cell(v: object) -> str:
    if v is None:
        return "?"
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


def render_table(results: list[CaseResult], *, root: bool) -> str:
    head = (
        "mapping",
        "ending",
        "written",
        "dirty before",
        "ended by",
        "in file after",
        "dirty in cache after",
    )
    rows = [head]
    for r in results:
        in_file = "n/a" if r.mapping == "anonymous" else cell(r.in_file_after)
        cache = "n/a" if r.mapping == "anonymous" else cell(r.dirty_in_cache_after)
        rows.append(
            (r.mapping, r.ending, str(r.written_pages), cell(r.dirty_before), r.ended_by, in_file, cache)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    text = "\n".join(lines) + f"\n\n(pages of {libc.PAGE} bytes; a file of {FILE_PAGES} pages per case)\n"
    if not root:
        text += "? = needs root: a process's dirty pages are read from /proc/kpageflags, which only root may read.\n"
    return text + "\n" + EXPLANATION + "\n"


def timed_matrix(**kw: Any) -> tuple[list[CaseResult], float]:
    t = time.perf_counter()
    res = run_matrix(**kw)
    return res, time.perf_counter() - t
