"""collect(pid) -> Snapshot: one consistent look at a process's memory.

Pure data: never imports textual (nor psutil: 30+ ms of start-up for two
facts the kernel gives directly). Every /proc file is read once, through
``ProcReader``; smaps carries the maps header lines, so maps is not read.

All or nothing: a truncated smaps looks exactly like a smaller process, so
completeness is decided from what the kernel guarantees, never from the data.
/proc/PID/stat is read first and last (same start time: the same process; not
a zombie, not exiting: PF_EXITING is set before an exiting task releases its
memory), and an fd on /proc/PID/maps opened before smaps is read once after
the last read: the kernel ends a read of a released mm with end-of-file, not
an error, so data from the probe proves smaps reached its real end (see
``procfs.process.MmProbe`` and docs/kernel-notes.md). Otherwise
``ProcessGone`` is raised: vmainspect never returns a partial snapshot.

Speed: the reading runs in a thread, started before the model and the
parsers are imported, so on a cold start (the CLI) the kernel generates smaps
while Python imports; smaps_rollup and the small files are read by a second
thread meanwhile (the kernel walks the page tables for both).
"""

from __future__ import annotations

import os
import pwd
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import gcpause
from ..errors import ProcessGone
from ..procfs.locktime import LockTime, measured
from ..procfs.process import MmProbe
from ..procfs.reader import ProcReader
from ..units import now_iso

if TYPE_CHECKING:
    from ..model import MappedFile, Snapshot, Vma
    from ..procfs.procstat import StatInfo

T = TypeVar("T")

NOTE_NO_PAGES = "per-page state not collected (use --pages)"
NOTE_KTHREAD = "kernel thread: it has no user address space, so no VMAs"
NOTE_ZOMBIE = "zombie: the process has exited and released its memory; no VMAs"
GONE = "it exited while being read"


def _user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no such user in this system's database: the number
        return str(uid)


_btime_cache: dict[str, int | None] = {}


def _boot_time(reader: ProcReader) -> int | None:
    from ..errors import VmaInspectError
    from ..procfs.procstat import parse_btime

    root = reader.proc_root
    if root not in _btime_cache:
        try:
            _btime_cache[root] = parse_btime(reader.read_global("stat"))
        except (VmaInspectError, OSError):  # a fixture tree without /proc/stat: create time unknown
            _btime_cache[root] = None
    return _btime_cache[root]


@dataclass(frozen=True)
class _Small:
    rollup: bytes | None  # None: no mm (kernel thread, zombie, exiting)
    status: bytes
    cmdline: bytes
    exe: str | None


def _read_small(reader: ProcReader, timer: LockTime | None) -> _Small:
    """smaps_rollup, status, cmdline and the exe link."""
    try:
        with measured(timer, "smaps_rollup"):
            rollup_raw: bytes | None = reader.read("smaps_rollup")
    except ProcessGone:
        # Kernel threads and zombies have no mm: smaps_rollup fails with ESRCH
        # although the process exists (their smaps is empty).
        if not reader.exists():
            raise
        rollup_raw = None
    return _Small(rollup_raw, reader.read("status"), reader.read("cmdline"), reader.readlink("exe"))


class _Pending(Generic[T]):
    """The result of ``fn`` run in a thread; ``result()`` joins and re-raises."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name="vmainspect-proc", daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self.value = fn()
        except BaseException as e:  # handed to the caller by result()
            self.error = e

    def result(self) -> T:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


@dataclass(frozen=True)
class _Files:
    stat: bytes
    smaps: bytes
    rollup: bytes
    status: bytes
    cmdline: bytes
    exe: str | None
    probe: MmProbe  # open: the caller closes it


def _read_files(reader: ProcReader, timer: LockTime | None = None) -> _Files:
    """stat first (the reference for "same process?"), the mm probe, then smaps
    here and the small files in a second thread. ``ProcessGone`` after the
    first stat read means the process exited while being read."""
    stat_raw = reader.read("stat")  # ProcessGone here: no such process
    try:
        probe = MmProbe(reader)  # before smaps: see MmProbe
    except ProcessGone:
        raise ProcessGone(reader.pid, GONE) from None
    try:
        small = _Pending(lambda: _read_small(reader, timer))
        try:
            with measured(timer, "smaps"):
                smaps_raw = reader.read("smaps")
        finally:
            small.thread.join()
        got = small.result()
        if got.rollup is None and smaps_raw:  # an mm for smaps but none for smaps_rollup: it is exiting
            raise ProcessGone(reader.pid, GONE)
    except ProcessGone:
        probe.close()
        raise ProcessGone(reader.pid, GONE) from None
    except BaseException:
        probe.close()
        raise
    return _Files(stat_raw, smaps_raw, got.rollup or b"", got.status, got.cmdline, got.exe, probe)


def collect(
    pid: int,
    *,
    pages: bool = False,
    proc_root: str = "/proc",
    use_scan: bool | None = None,
    files: bool = True,
    lock_time: LockTime | None = None,
) -> Snapshot:
    """Read process ``pid``'s memory map (and with ``pages`` its per-page state).

    ``files``: the page-cache state of each regular file mapped (cachestat;
    the snapshot's ``files``), on by default; it reads nothing from the files.

    Raises ProcessGone (no such process; it exited, exec'd or its PID was
    reused while being read) or AccessDenied (naming the missing privilege).
    A kernel thread or a zombie gives a valid snapshot with no VMAs and empty
    totals. ``use_scan``: None = PAGEMAP_SCAN when the kernel has it,
    True/False force it on/off (tests compare both paths).

    ``lock_time``: filled with the CPU time of the reads that hold the
    process's mmap lock (smaps, smaps_rollup, and with ``pages`` the pagemap
    reads; see ``procfs.locktime``), also when the collect raises.
    """
    reader = ProcReader(pid, proc_root)
    with gcpause.paused():  # tens of thousands of acyclic objects: the cyclic GC only costs time here
        taken_at = now_iso()
        reading = _Pending(lambda: _read_files(reader, lock_time))
        from .. import model  # noqa: F401  (imported while the kernel works)
        from ..procfs import parse  # noqa: F401

        read = reading.result()
        try:
            return _build(reader, read, taken_at, pages, use_scan, files, lock_time)
        finally:
            read.probe.close()


def _complete(reader: ProcReader, before: StatInfo, probe: MmProbe, vmas: list[Vma]) -> StatInfo:
    """After the last read: the /proc/PID/stat read now, if what was read is the
    whole of one process's memory; ProcessGone if not (see the module docstring)."""
    from ..procfs.procstat import parse_stat

    pid = reader.pid
    mm_alive = probe.alive()
    try:
        after = parse_stat(reader.read("stat"))
    except ProcessGone:
        raise ProcessGone(pid, GONE) from None
    if after.starttime != before.starttime:
        raise ProcessGone(pid, "its PID was reused by another process while being read")
    if before.dead or before.kernel_thread:
        # no mm at the start: a valid snapshot with no VMAs (a zombie cannot get one back)
        if vmas:
            raise ProcessGone(pid, GONE)
        return after
    if after.dead or after.exiting:
        raise ProcessGone(pid, GONE)
    if not mm_alive:
        # a live task without its memory map: it exec'd (a new mm) or is exiting
        raise ProcessGone(pid, "its memory map was released while being read (it exited or exec'd)")
    return after


def _build(
    reader: ProcReader,
    files: _Files,
    taken_at: str,
    pages: bool,
    use_scan: bool | None,
    with_files: bool = True,
    lock_time: LockTime | None = None,
) -> Snapshot:
    from ..model import Capabilities, HostInfo, ProcessInfo, Snapshot
    from ..procfs import parse, procstat

    pid = reader.pid
    before = procstat.parse_stat(files.stat)
    vmas = parse.parse_smaps(files.smaps)
    totals = parse.parse_smaps_fields(files.rollup)
    suspects = [v for v in vmas if parse.maybe_unlinked(v)]
    if suspects:  # "/x (deleted)": the kernel's mark, or a file with that name?
        from ..procfs.mapped import file_unlinked

        facts = {
            v.start: file_unlinked(reader, v.start, v.end, v.dev, v.inode, v.path or "") for v in suspects
        }
        vmas = parse.with_kinds(vmas, {k: u for k, u in facts.items() if u is not None})
    u = os.uname()
    host = HostInfo(kernel=u.release, page_size=os.sysconf("SC_PAGE_SIZE"), hostname=u.nodename)
    notes: list[str] = []

    page_caps: dict[str, Any] = {
        "pfn_visible": None,
        "kpageflags": None,
        "kpagecount": None,
        "pagemap_scan": None,
    }
    if pages and vmas:
        from ..procfs.pages import read_pages  # lazy: only --pages pays for it

        try:
            result = read_pages(reader, vmas, host.page_size, use_scan=use_scan, lock_time=lock_time)
        except ProcessGone:
            raise ProcessGone(pid, GONE) from None
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

    mapped: tuple[MappedFile, ...] = ()
    if with_files and vmas:
        from .files import mapped_files

        mapped, file_notes = mapped_files(reader, vmas, host.page_size)
        notes.extend(file_notes)

    # Last: the process must still be the one we started with, its memory all read.
    after = _complete(reader, before, files.probe, vmas)

    if not vmas:
        if before.dead:
            notes.append(NOTE_ZOMBIE)
        elif before.kernel_thread:
            notes.append(NOTE_KTHREAD)

    uid = procstat.parse_status_uid(files.status)
    btime = _boot_time(reader)
    create_time = None
    if btime is not None:
        create_time = btime + before.starttime / os.sysconf("SC_CLK_TCK")
    process = ProcessInfo(
        pid=pid,
        ppid=after.ppid,
        name=after.comm,
        cmdline=procstat.parse_cmdline(files.cmdline),
        exe=files.exe,
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
        taken_at=taken_at,
        host=host,
        process=process,
        capabilities=caps,
        totals=totals,
        vmas=tuple(vmas),
        files=mapped,
    )
