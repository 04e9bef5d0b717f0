"""Page-fault sampling of one process: perf_event_open rings, or /proc counters.

``FaultSampler(pid).start()`` opens a minor and a major page-fault event on
every thread (``perf.Ring``), and a background thread drains the rings as they
fill (poll on the events, woken at a quarter of the ring) into per-window
buffers of raw addresses and IPs. ``tick(snapshot)`` closes the window: it
counts the distinct faulting addresses (one C-level ``Counter`` pass) and
attributes them to the snapshot's VMAs (one bisect per VMA that took faults),
counts IPs per symbol (each distinct IP symbolized once, ELF files cached),
and returns a ``TickResult``: the ``model.FaultTick`` plus what only a live
caller needs (the snapshot the faults were attributed to, the per-symbol
minor/major split, the unattributed count, whether the process ended and why,
and the error of a failed ``refresh``). Nothing is read back from attributes. The attribution itself (addresses to VMAs,
page-state transitions, IPs and data to symbols) is in ``fault_attrib``.

Threads that appear later are followed: /proc/PID/task is listed every 0.2 s
by the drain thread and at every tick (faults of a thread in the first moments
of its life, before it is seen, are missed; /proc's counters still have them).
Threads that exit are drained a last time and closed.

Where perf_event_open is refused (kernel.perf_event_paranoid, seccomp, a
process of another user), the sampler switches to counters mode: per-process
and per-thread ``minflt``/``majflt`` deltas from /proc/PID/stat and
/proc/PID/task/TID/stat, and ``reason`` says why, once.

/proc access goes through ``ProcReader``; listing /proc/PID/task (which
ProcReader has no call for) is done here with the same error translation.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import AccessDenied, ProcessGone, VmaInspectError
from ..model import FaultTick, Snapshot
from ..procfs.parse import ParseError, StatInfo, parse_stat
from ..procfs.process import Liveness, ProcessIdentity, classify, describe
from ..procfs.reader import ProcReader
from .attrib import NO_VMAS, FaultSymbols, attribute, count_u64, transitions

PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_PAGES = 65536  # FaultTick.pages bound
SCAN_INTERVAL = 0.2  # seconds between /proc/PID/task listings in the drain thread


def _faults_of(stat: StatInfo) -> tuple[int, int]:
    return stat.minflt, stat.majflt


def _raise_nofile(need: int) -> None:
    """Raise the soft open-file limit toward the hard one when ``need`` fds may not fit (as perf does)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(
                resource.RLIMIT_NOFILE,
                (hard if hard == resource.RLIM_INFINITY else min(hard, max(need, soft)), hard),
            )
    except (ImportError, ValueError, OSError):
        pass


def _paranoid(proc_root: str) -> str:
    try:
        return ProcReader(0, proc_root).read_global("sys/kernel/perf_event_paranoid").decode().strip()
    except Exception:
        return "?"


FOLD_BYTES = 32 << 20  # raw addresses kept before folding them into counts (bounds memory between ticks)


class _Window:
    __slots__ = ("addrs", "folded", "ips", "lost", "n", "other", "tails", "threads")

    def __init__(self) -> None:
        self.addrs = (bytearray(), bytearray())  # minor, major: raw little-endian u64s
        self.ips = (bytearray(), bytearray())
        self.folded = ((Counter(), Counter()), (Counter(), Counter()))  # (addrs, ips) counts per kind
        self.n = [0, 0]  # samples per kind
        self.threads: dict[int, list[int]] = {}  # tid -> [minor, major]
        self.lost = 0
        self.other = 0
        self.tails: dict[int, bytes] = {}  # tid -> the newest raw samples


@dataclass(frozen=True)
class TickResult:
    """Everything one ``FaultSampler.tick()`` has to say."""

    faults: FaultTick  # what is shown and recorded
    snapshot: Snapshot | None  # the snapshot the faults were attributed to (a refreshed one if refresh ran)
    unattributed: int = 0  # sampled faults outside that snapshot's VMAs (perf only)
    by_symbol_split: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # (symbol, dso) -> (minor, major) of faulting data in ELF .data/.bss/.rodata
    by_data_symbol_split: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    ended: str | None = None  # why the process is gone (exited, zombie, PID reused); None while it runs
    refresh_error: VmaInspectError | None = (
        None  # refresh() failed: the faults were attributed to the old snapshot
    )


class FaultSampler:
    """Samples one process's page faults; see the module docstring."""

    def __init__(
        self,
        pid: int,
        *,
        period: int = 1,
        proc_root: str = "/proc",
        recent: int = 64,
        ring_bytes: int | None = None,
        baseline: Snapshot | None = None,
    ) -> None:
        """``baseline``: the snapshot page-state transitions of the first tick are counted from."""
        if period < 1:
            raise ValueError("period must be >= 1")
        self.pid = pid
        self.period = period
        self.proc_root = proc_root
        self.recent = max(0, recent)
        self.ring_bytes = ring_bytes
        self.reader = ProcReader(pid, proc_root)
        self.mode = "perf"
        self.reason: str | None = None
        self.notes: list[str] = []  # e.g. kernel-mode faults not sampled
        self.gone = False  # the process has exited
        self.ended: str | None = None  # why it is gone
        self.exclude_kernel = False
        self._maj_ids: set[int] = (
            set()
        )  # ids of every major event opened (recent samples of exited threads too)
        self._closed_counts = [0, 0]  # event counts of rings already closed (exited threads)
        self._rings: dict = {}  # tid -> perf.Ring
        self._skipped: set[int] = set()  # threads that could not be opened
        self._skip_reasons: set[str] = set()
        self._lock = threading.Lock()
        self._win = _Window()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gen = 0
        self._last = time.monotonic()
        self._counters: dict[int, tuple[int, int]] = {}
        self._proc_counters: tuple[int, int] | None = None
        self._symbols = FaultSymbols(pid, proc_root)
        self._started = False
        self._previous: Snapshot | None = baseline  # transitions are counted from it; each tick moves it on
        self._identity: ProcessIdentity | None = None
        self.start_counters: tuple[int, int] | None = None  # /proc (minflt, majflt) right after start

    # ------------------------------------------------------------ threads
    def _tids(self) -> list[int]:
        path = f"{self.proc_root}/{self.pid}/task"
        try:
            return [int(t) for t in os.listdir(path) if t.isdigit()]
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ESRCH):
                raise ProcessGone(self.pid) from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise AccessDenied(self.pid, "task list", "needs to be the process's user or root") from None
            raise

    def _ring_bytes(self, nthreads: int) -> int:
        if self.ring_bytes:
            return self.ring_bytes
        if os.geteuid() == 0:
            # 4 MiB (~87,000 samples, 200 ms at 436k faults/s: a busy machine can keep this
            # process off the CPU that long) per thread, 64 MiB in all at most
            return max(64 << 10, min(4 << 20, (64 << 20) // max(1, nthreads)))
        # unprivileged: kernel.perf_event_mlock_kb (516 KiB) is shared by all our rings
        return max(8192, (512 << 10) // max(1, nthreads))

    def _open(self, tid: int, nthreads: int):
        from .perf import Ring

        ring = Ring(
            tid, period=self.period, ring_bytes=self._ring_bytes(nthreads), exclude_kernel=self.exclude_kernel
        )
        ring.enable()
        self._maj_ids.add(ring.id_maj)
        return ring

    def _refusal(self, e: OSError) -> str:
        par = _paranoid(self.proc_root)
        who = "root" if os.geteuid() == 0 else "not root"
        try:
            owner = os.stat(f"{self.proc_root}/{self.pid}").st_uid
        except OSError:
            owner = None
        if e.errno in (errno.EACCES, errno.EPERM):
            if owner is not None and owner != os.geteuid() and os.geteuid() != 0:
                why = (
                    f"perf_event_open refused: process {self.pid} belongs to another user "
                    f"(needs root or CAP_PERFMON; kernel.perf_event_paranoid={par})"
                )
            else:
                why = (
                    f"perf_event_open refused (kernel.perf_event_paranoid={par}, {who}"
                    f"{'; seccomp or a container profile may block it' if e.errno == errno.EPERM else ''})"
                )
        elif e.errno == errno.ENOSYS:
            why = "perf_event_open is not available on this kernel"
        elif e.errno == errno.ENOENT:
            why = "the kernel has no software page-fault events (CONFIG_PERF_EVENTS)"
        else:
            why = f"perf_event_open failed: {os.strerror(e.errno or 0)}"
        return why + ": showing /proc fault counters instead"

    def start(self) -> None:
        """Open the events (or fall back to counters). Raises ProcessGone if there is no process."""
        if self._started:
            return
        self._started = True
        # ProcessGone / AccessDenied as the reader says; (pid, start time) names the process
        self._identity = ProcessIdentity.of(parse_stat(self.reader.read("stat")))
        self._last = time.monotonic()
        if self.proc_root != "/proc":
            self._counters_mode(
                "perf sampling needs the live /proc (proc root is "
                f"{self.proc_root}): showing its fault counters instead"
            )
            return
        try:
            pass
        except OSError as e:  # no libc to call syscall() through
            self._counters_mode(f"perf_event_open unavailable ({e}): showing /proc fault counters instead")
            return
        tids = sorted(self._tids())
        _raise_nofile(2 * len(tids) + 64)  # two events per thread
        first_error: OSError | None = None
        for tid in tids:
            try:
                self._rings[tid] = self._open(tid, len(tids))
                continue
            except OSError as e:
                err = e
            if err.errno in (errno.EACCES, errno.EPERM) and not self.exclude_kernel and not self._rings:
                # kernel.perf_event_paranoid >= 2 without privileges: user-mode faults only
                self.exclude_kernel = True
                try:
                    self._rings[tid] = self._open(tid, len(tids))
                    self.notes.append(
                        "faults taken in kernel mode (e.g. read() into fresh pages) are "
                        f"not sampled: kernel.perf_event_paranoid={_paranoid(self.proc_root)} "
                        "allows only user-mode sampling without root"
                    )
                    continue
                except OSError as e2:
                    err = e2
            if err.errno == errno.ESRCH:
                continue  # the thread exited meanwhile
            if not self._rings:
                first_error = err
                break
            self._skipped.add(tid)
            self._skip_reasons.add(
                "open file limit (RLIMIT_NOFILE)"
                if err.errno in (errno.EMFILE, errno.ENFILE)
                else "perf ring memory limit (kernel.perf_event_mlock_kb)"
                if err.errno in (errno.EPERM, errno.ENOMEM)
                else os.strerror(err.errno or 0)
            )
        if not self._rings:
            if first_error is None:
                if not self.reader.exists():
                    raise ProcessGone(self.pid)
                first_error = OSError(errno.ESRCH, "no thread could be opened")
            self._counters_mode(self._refusal(first_error))
            return
        self.start_counters = self.proc_counters()
        if self._skipped:
            self.notes.append(
                f"{len(self._skipped)} thread(s) could not be sampled: "
                + ", ".join(sorted(self._skip_reasons))
            )
        self._thread = threading.Thread(target=self._run, name=f"faults-{self.pid}", daemon=True)
        self._thread.start()

    def _end(self, why: str) -> None:
        """The process is gone (``why`` says how); the first reason given stays."""
        self.gone = True
        if self.ended is None:
            self.ended = why

    def _counters_mode(self, reason: str) -> None:
        self.mode = "counters"
        self.reason = reason
        self._counters = self._read_thread_counters()
        try:
            self._proc_counters = _faults_of(parse_stat(self.reader.read("stat")))
        except ProcessGone as e:
            self._end(str(e))
        self.start_counters = self._proc_counters

    # ------------------------------------------------------------ draining
    def _run(self) -> None:
        poller = None
        gen = -1
        next_scan = time.monotonic() + SCAN_INTERVAL
        while not self._stop.is_set():
            if gen != self._gen:
                with self._lock:
                    gen = self._gen
                    poller = select.poll()
                    for r in self._rings.values():
                        poller.register(r.fd_min, select.POLLIN)
            try:
                poller.poll(50)
            except (OSError, ValueError):
                pass
            if self._stop.is_set():
                break
            with self._lock:
                self._drain_all()
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + SCAN_INTERVAL
                try:
                    self._rescan()
                except (ProcessGone, AccessDenied) as e:
                    self._end(str(e))
                    break
                except OSError:
                    pass

    def _drain_all(self) -> None:
        from .perf import SAMPLE_WORDS, split_records

        win = self._win
        keep = self.recent * SAMPLE_WORDS
        for tid, ring in self._rings.items():
            data = ring.drain()
            if not data:
                continue
            runs, lost, other = split_records(data)
            win.lost += lost
            win.other += other
            counts = win.threads.get(tid)
            if counts is None:
                counts = win.threads[tid] = [0, 0]
            maj = ring.id_maj
            for q in runs:
                ids = q[1::SAMPLE_WORDS]
                if maj in ids:
                    idl = ids.tolist()
                    ipl, adl = q[2::SAMPLE_WORDS].tolist(), q[5::SAMPLE_WORDS].tolist()
                    for k, i in enumerate(idl):
                        m = 1 if i == maj else 0
                        win.addrs[m].extend(struct.pack("<Q", adl[k]))
                        win.ips[m].extend(struct.pack("<Q", ipl[k]))
                        counts[m] += 1
                else:
                    win.addrs[0].extend(q[5::SAMPLE_WORDS].tobytes())
                    win.ips[0].extend(q[2::SAMPLE_WORDS].tobytes())
                    counts[0] += len(ids)
            for k in (0, 1):
                if len(win.addrs[k]) >= FOLD_BYTES:  # nobody ticked for a while: keep counts only
                    count_u64(win.addrs[k], win.folded[k][0])  # rare: nobody ticked for seconds
                    count_u64(win.ips[k], win.folded[k][1])
                    win.n[k] += len(win.addrs[k]) // 8
                    del win.addrs[k][:], win.ips[k][:]
            if keep and runs:
                last = runs[-1]
                tail = (
                    last[-keep:].tobytes()
                    if len(last) >= keep
                    else (win.tails.get(tid, b"") + last.tobytes())[-keep * 8 :]
                )
                win.tails[tid] = tail

    def _rescan(self) -> None:
        state = self._liveness(parse_stat(self.reader.read("stat")))
        if state in (Liveness.ZOMBIE, Liveness.REUSED):
            raise ProcessGone(self.pid, describe(self.pid, state))
        tids = set(self._tids())
        with self._lock:
            changed = False
            for tid in list(self._rings):
                if tid not in tids:  # exited: last drain, then close
                    self._drain_all()
                    ring = self._rings.pop(tid)
                    mi, ma = ring.counts()
                    self._closed_counts[0] += mi
                    self._closed_counts[1] += ma
                    ring.close()
                    changed = True
            self._skipped &= tids
            new = [t for t in tids if t not in self._rings and t not in self._skipped]
            for tid in new:
                try:
                    self._rings[tid] = self._open(tid, len(tids))
                    changed = True
                except OSError as e:
                    if e.errno != errno.ESRCH:
                        self._skipped.add(tid)
            if changed:
                self._gen += 1

    # ------------------------------------------------------------ ticks
    def tick(
        self, snapshot: Snapshot | None, *, refresh: Callable[[], Snapshot | None] | None = None
    ) -> TickResult:
        """The faults since the last tick, attributed to ``snapshot``'s VMAs.

        ``refresh``: optional callable returning a newer Snapshot, called once when
        some faulting addresses lie outside ``snapshot``'s VMAs (a mapping made
        during the window). A ``VmaInspectError`` it raises (the process went
        away, access lost) is returned in ``TickResult.refresh_error``; the
        faults are then attributed to ``snapshot``.
        """
        if not self._started:
            self.start()
        now = time.monotonic()
        window_s = max(0.0, now - self._last)
        self._last = now
        if self.mode == "counters":
            return self._counters_tick(window_s, snapshot)
        if not self.gone and not self._stop.is_set():
            try:
                self._rescan()
            except (ProcessGone, AccessDenied) as e:
                self._end(str(e))
            except OSError:
                pass
        with self._lock:
            self._drain_all()
            win, self._win = self._win, _Window()
        return self._perf_tick(win, window_s, snapshot, refresh)

    def _perf_tick(
        self,
        win: _Window,
        window_s: float,
        snapshot: Snapshot | None,
        refresh: Callable[[], Snapshot | None] | None,
    ) -> TickResult:
        if snapshot is None:  # nothing to attribute to: an empty map (all unattributed)
            snapshot = NO_VMAS
        # distinct faulting addresses with their counts (one C-level pass per kind), sorted
        lists = []
        for k, raw in enumerate(win.addrs):
            cnt = count_u64(raw, Counter())
            if win.folded[k][0]:
                cnt.update(win.folded[k][0])
            keys = list(cnt)
            keys.sort()
            lists.append((keys, cnt))
        by_vma, missing = attribute(snapshot, lists)
        refresh_error: VmaInspectError | None = None
        if missing and refresh is not None:
            try:
                fresh = refresh()
            except VmaInspectError as e:
                fresh, refresh_error = None, e
            if fresh is not None:
                snapshot = fresh
                by_vma, missing = attribute(snapshot, lists)
        data_split = self._symbols.data_symbols(snapshot, by_vma, lists)
        sym_split = self._symbols.ip_symbols(snapshot, win.ips, (win.folded[0][1], win.folded[1][1]))
        by_symbol = tuple(
            sorted(((s, d, a + b) for (s, d), (a, b) in sym_split.items()), key=lambda t: (-t[2], t[0], t[1]))
        )
        pages: set[int] = set()
        mask = ~(PAGE - 1)
        for keys, _cnt in lists:
            for a in keys:
                pages.add(a & mask)
                if len(pages) >= MAX_PAGES:
                    break
        minor = win.n[0] + len(win.addrs[0]) // 8
        major = win.n[1] + len(win.addrs[1]) // 8
        page_list = sorted(pages)
        by_transition = transitions(self._previous, snapshot, page_list)
        self._previous = snapshot
        tick = FaultTick(
            mode="perf",
            window_s=window_s,
            minor=minor,
            major=major,
            lost=win.lost,
            by_vma=by_vma,
            by_symbol=by_symbol,
            recent=self._symbols.samples(win.tails.values(), self._maj_ids, self.recent, snapshot),
            reason=None,
            by_thread={t: (c[0], c[1]) for t, c in win.threads.items()},
            pages=tuple(page_list),
            by_transition=by_transition,
        )
        return TickResult(
            tick,
            None if snapshot is NO_VMAS else snapshot,
            unattributed=missing,
            by_symbol_split=sym_split,
            by_data_symbol_split=data_split,
            ended=self.ended,
            refresh_error=refresh_error,
        )

    # ------------------------------------------------------------ counters mode
    def _read_thread_counters(self) -> dict[int, tuple[int, int]]:
        out = {}
        try:
            tids = self._tids()
        except (ProcessGone, AccessDenied):
            return out
        for tid in tids:
            try:
                out[tid] = _faults_of(parse_stat(self.reader.read(f"task/{tid}/stat")))
            except (ProcessGone, AccessDenied, ParseError):
                continue
        return out

    def _counters_tick(self, window_s: float, snapshot: Snapshot | None) -> TickResult:
        minor = major = 0
        try:
            stat = parse_stat(self.reader.read("stat"))
            state = self._liveness(stat)
            if state is Liveness.REUSED:
                self._end(describe(self.pid, state))
                tick = FaultTick(
                    mode="counters", window_s=window_s, minor=0, major=0, lost=None, reason=self.reason
                )
                return TickResult(tick, snapshot, ended=self.ended)
            if state is Liveness.ZOMBIE:
                self._end(describe(self.pid, state))  # a zombie's counters are still its last ones
            now = _faults_of(stat)
            if self._proc_counters is not None:
                minor = max(0, now[0] - self._proc_counters[0])
                major = max(0, now[1] - self._proc_counters[1])
            self._proc_counters = now
        except ProcessGone as e:
            self._end(str(e))
        threads = self._read_thread_counters()
        by_thread = {}
        for tid, (mi, ma) in threads.items():
            b = self._counters.get(tid, (0, 0))
            by_thread[tid] = (max(0, mi - b[0]), max(0, ma - b[1]))
        self._counters = threads
        tick = FaultTick(
            mode="counters",
            window_s=window_s,
            minor=minor,
            major=major,
            lost=None,
            reason=self.reason,
            by_thread=by_thread,
        )
        return TickResult(tick, snapshot, ended=self.ended)

    def _liveness(self, stat: StatInfo) -> Liveness:
        return Liveness.RUNNING if self._identity is None else classify(self._identity, stat)

    def proc_counters(self) -> tuple[int, int] | None:
        """The kernel's (minflt, majflt) for the whole process now; None if it is gone
        or the PID names another process (whose counters are not this one's)."""
        try:
            stat = parse_stat(self.reader.read("stat"))
        except (ProcessGone, AccessDenied):
            return None
        if self._liveness(stat) is Liveness.REUSED:
            self._end(describe(self.pid, Liveness.REUSED))
            return None
        return _faults_of(stat)

    def event_counts(self) -> tuple[int, int]:
        """Sum of the perf events' own counts (every fault while enabled, sampled or not)."""
        mi, ma = self._closed_counts
        with self._lock:
            for r in self._rings.values():
                a, b = r.counts()
                mi += a
                ma += b
        return mi, ma

    def stop(self) -> None:
        """Stop counting and sampling (the rings keep what they hold for a last ``tick``)."""
        # no lock: the drain thread may hold it for milliseconds, and every fault
        # sampled after the caller's last look at /proc would widen the window
        for r in list(self._rings.values()):
            r.disable()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            for r in self._rings.values():
                r.close()
            self._rings.clear()

    def __enter__(self) -> FaultSampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
