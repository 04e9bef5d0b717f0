"""collect(pid) -> Snapshot: one consistent look at a process's memory.

Pure data: never imports textual (nor psutil: 30+ ms of start-up for two
facts the kernel gives directly). Every /proc file is read once, through
``ProcReader``; smaps carries the maps header lines, so maps is not read.

Consistency: /proc/PID/stat is read first and last. If the process vanished,
turned into a zombie or its start time changed (the PID was reused) while we
read, ``ProcessGone`` is raised: vmainspect never returns a partial snapshot
(a truncated smaps looks exactly like a smaller process, so "partial" could
not be told from "complete").

Speed: the reading runs in a thread, started before the model and the
parsers are imported, so on a cold start (the CLI) the kernel generates smaps
while Python imports; smaps_rollup and the small files are read by a second
thread meanwhile (the kernel walks the page tables for both).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import TYPE_CHECKING

from ..errors import ProcessGone
from ..procfs.reader import ProcReader

if TYPE_CHECKING:
    from ..model import Snapshot

_DEAD_STATES = ("Z", "X", "x")

NOTE_NO_PAGES = "per-page state not collected (use --pages)"
NOTE_KTHREAD = "kernel thread: it has no user address space, so no VMAs"
NOTE_ZOMBIE = "zombie: the process has exited and released its memory; no VMAs"


def _user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


_btime_cache: dict[str, int | None] = {}


def _boot_time(reader: ProcReader, parse) -> int | None:
    root = reader.proc_root
    if root not in _btime_cache:
        try:
            _btime_cache[root] = parse.parse_btime(reader.read_global("stat"))
        except Exception:  # a fixture tree without /proc/stat: create time unknown
            _btime_cache[root] = None
    return _btime_cache[root]


def _read_small(reader: ProcReader) -> tuple:
    """smaps_rollup, status, cmdline and the exe link."""
    try:
        rollup_raw = reader.read("smaps_rollup")
    except ProcessGone:
        # Kernel threads and zombies have no mm: smaps_rollup fails with ESRCH
        # although the process exists (their smaps is empty).
        if not reader.exists():
            raise
        rollup_raw = None
    return rollup_raw, reader.read("status"), reader.read("cmdline"), reader.readlink("exe")


def _in_thread(fn, *args) -> _Pending:
    pending = _Pending()

    def run() -> None:
        try:
            pending.value = fn(*args)
        except BaseException as e:  # handed to the caller by result()
            pending.error = e

    pending.thread = threading.Thread(target=run, name="vmainspect-proc", daemon=True)
    pending.thread.start()
    return pending


class _Pending:
    thread: threading.Thread
    value = None
    error: BaseException | None = None

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


def _read_files(reader: ProcReader) -> tuple:
    """stat first (the reference for "same process?"), then smaps here and the
    small files in a second thread. Returns the raw bytes; ``ProcessGone`` after
    the first stat read means the process exited while being read."""
    stat_raw = reader.read("stat")  # ProcessGone here: no such process
    try:
        small = _in_thread(_read_small, reader)
        try:
            smaps_raw = reader.read("smaps")
        finally:
            small.thread.join()
        rollup_raw, status_raw, cmdline_raw, exe = small.result()
    except ProcessGone:
        raise ProcessGone(reader.pid, "it exited while being read") from None
    if rollup_raw is None:
        if smaps_raw:  # an mm for smaps but none for smaps_rollup: it is exiting
            raise ProcessGone(reader.pid, "it exited while being read")
        rollup_raw = b""
    return stat_raw, smaps_raw, rollup_raw, status_raw, cmdline_raw, exe


def _now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def collect(
    pid: int, *, pages: bool = False, proc_root: str = "/proc", use_scan: bool | None = None
) -> Snapshot:
    """Read process ``pid``'s memory map (and with ``pages`` its per-page state).

    Raises ProcessGone (no such process; it exited or its PID was reused
    while being read) or AccessDenied (naming the missing privilege). A kernel
    thread or a zombie gives a valid snapshot with no VMAs and empty totals.
    ``use_scan``: None = PAGEMAP_SCAN when the kernel has it, True/False force
    it on/off (tests compare both paths).
    """
    reader = ProcReader(pid, proc_root)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of acyclic objects: the cyclic GC only costs time here
    try:
        taken_at = _now_iso()
        reading = _in_thread(_read_files, reader)
        from .. import model  # noqa: F401  (imported while the kernel works)
        from ..procfs import parse

        return _build(reader, parse, reading.result(), taken_at, pages, use_scan)
    finally:
        if gc_was_enabled:
            gc.enable()


def _build(
    reader: ProcReader, parse, files: tuple, taken_at: str, pages: bool, use_scan: bool | None
) -> Snapshot:
    from ..model import Capabilities, HostInfo, ProcessInfo, Snapshot

    pid = reader.pid
    stat_raw, smaps_raw, rollup_raw, status_raw, cmdline_raw, exe = files
    before = parse.parse_stat(stat_raw)
    vmas = parse.parse_smaps(smaps_raw)
    totals = parse.parse_smaps_fields(rollup_raw)
    u = os.uname()
    host = HostInfo(kernel=u.release, page_size=os.sysconf("SC_PAGE_SIZE"), hostname=u.nodename)
    notes: list[str] = []

    page_caps: dict = {"pfn_visible": None, "kpageflags": None, "kpagecount": None, "pagemap_scan": None}
    if pages and vmas:
        from ..procfs.pages import read_pages  # lazy: only --pages pays for it

        try:
            result = read_pages(reader, vmas, host.page_size, use_scan=use_scan)
        except ProcessGone:
            raise ProcessGone(pid, "it exited while being read") from None
        if len(result.infos) != len(vmas):
            raise RuntimeError("read_pages returned a different number of VMAs")
        vmas = parse.with_pages(vmas, result.infos)  # = replace(v, pages=info) for each
        page_caps = {
            "pfn_visible": result.pfn_visible,
            "kpageflags": result.kpageflags,
            "kpagecount": result.kpagecount,
            "pagemap_scan": result.pagemap_scan,
        }
        notes.extend(result.notes)
    elif pages:
        notes.append("no VMAs: no per-page state to collect")
    else:
        notes.append(NOTE_NO_PAGES)

    # Last: the process must still be the one we started with.
    try:
        after = parse.parse_stat(reader.read("stat"))
    except ProcessGone:
        raise ProcessGone(pid, "it exited while being read") from None
    if after.starttime != before.starttime:
        raise ProcessGone(pid, "its PID was reused by another process while being read")
    if after.state in _DEAD_STATES and before.state not in _DEAD_STATES:
        raise ProcessGone(pid, "it exited while being read")

    if not vmas:
        if before.state in _DEAD_STATES:
            notes.append(NOTE_ZOMBIE)
        elif before.kernel_thread:
            notes.append(NOTE_KTHREAD)

    uid = parse.parse_status_uid(status_raw)
    btime = _boot_time(reader, parse)
    create_time = None
    if btime is not None:
        create_time = btime + before.starttime / os.sysconf("SC_CLK_TCK")
    process = ProcessInfo(
        pid=pid,
        ppid=after.ppid,
        name=after.comm,
        cmdline=parse.parse_cmdline(cmdline_raw),
        exe=exe,
        user=_user_name(uid),
        uid=uid,
        state=after.state,
        threads=after.num_threads,
        minor_faults=after.minflt,
        major_faults=after.majflt,
        create_time=create_time,
    )
    caps = Capabilities(root=os.geteuid() == 0, pages=bool(pages), notes=tuple(notes), **page_caps)
    return Snapshot(
        taken_at=taken_at, host=host, process=process, capabilities=caps, totals=totals, vmas=tuple(vmas)
    )
