"""Page-fault sampling of one process: perf_event_open rings, or /proc counters.

``FaultSampler(pid).start()`` opens a minor and a major page-fault event for
every thread (``rings.RingSet``: per CPU with inherited events, so threads
created later are sampled from their first fault), and a background thread
(named vmi-faults) drains the rings when a quarter full into per-window raw
buffers. ``tick(snapshot)`` closes the window: distinct faulting addresses
are counted in one C-level pass and placed in the mapping each hit when it
faulted (``addrspace``), IPs named (``attrib``), and a ``TickResult`` is
returned: the ``model.FaultTick`` plus what only a live caller needs. With
``max_rate`` (samples a second) the sample period rises and falls with the
rate (``cap``): totals are then the events' counts, the rest scaled estimates.

Faults nothing sampled (a thread's first moments in per-thread mode, faults
the kernel takes on another's behalf) are counted, not hidden: the kernel's
counter minus the events' own counts is ``FaultTick.unsampled``.

Where perf_event_open is refused (kernel.perf_event_paranoid, seccomp, a
process of another user), or the ring buffer cannot be read safely on this
architecture (docs/kernel-notes.md, "The perf ring buffer's memory ordering"),
the sampler switches to counters mode: per-process and per-thread
``minflt``/``majflt`` deltas from /proc/PID/stat and /proc/PID/task/TID/stat,
and ``reason`` says why, once.
/proc goes through ``ProcReader`` (/proc/PID/task is listed by ``access.task_ids``).
"""

from __future__ import annotations

import errno
import os
import platform
import select
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import AccessDenied, ProcessGone, VmaInspectError
from ..model import FaultTick, Snapshot
from ..procfs.parse import StatInfo, parse_stat
from ..procfs.process import Liveness, ProcessIdentity, classify, describe
from ..procfs.reader import ProcReader
from .access import deltas, faults_of, paranoid, raise_nofile, refusal_reason, task_ids, thread_counters
from .addrspace import AddressSpace, one_mapping
from .attrib import NO_VMAS, FaultSymbols, count_u64, transitions
from .cap import RateCap, scaled_pairs
from .result import TickResult
from .rings import RingSet, Window, online_cpus

PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_PAGES = 65536  # FaultTick.pages bound
SCAN_INTERVAL = 0.2  # seconds between /proc/PID/task listings (per-thread mode)
# where reading the ring with plain loads and stores is correct (docs/kernel-notes.md)
RING_SAFE_MACHINES = frozenset({"x86_64", "AMD64", "amd64"})


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
        pages: bool = True,
        max_rate: int | None = None,
        expected_rate: float | None = None,
    ) -> None:
        """``max_rate``: samples a second allowed (None: every ``period``-th fault, as ``faults``
        and the demo need); ``expected_rate``: faults a second seen just before (``RateCap``);
        ``baseline``: the snapshot at the first window's start (page-state transitions are
        counted from it, faults in mappings unmapped during the window are placed in it).
        ``pages``: list the faulted pages in each tick (``FaultTick.pages``, and the page-state
        transitions); a caller that shows neither saves that pass over every distinct address."""
        if period < 1:
            raise ValueError("period must be >= 1")
        self.pid = pid
        self.cap = RateCap(period, max_rate, expected_rate) if max_rate is not None else None
        self.period = self.cap.period if self.cap else period  # in force now (raised under max_rate)
        self.proc_root = proc_root
        self.recent = max(0, recent)
        self.want_pages = pages
        self.reader = ProcReader(pid, proc_root)
        self.mode = "perf"
        self.reason: str | None = None
        self.notes: list[str] = []  # e.g. kernel-mode faults not sampled
        self.gone = False  # the process has exited
        self.ended: str | None = None  # why it is gone
        self.rings = RingSet(pid, period=self.period, ring_bytes=ring_bytes, recent=self.recent)
        self._lock = threading.Lock()
        self._win = Window()
        self._stop = threading.Event()
        self._wake = -1  # an eventfd the drain thread polls too: stop() wakes it at once
        self._thread: threading.Thread | None = None
        self._last = time.monotonic()
        self._counters: dict[int, tuple[int, int]] = {}
        self._proc_counters: tuple[int, int] | None = None
        self._symbols = FaultSymbols(pid, proc_root)
        self._space = AddressSpace(baseline)
        self._started = False
        self._previous: Snapshot | None = baseline  # transitions are counted from it; each tick moves it on
        self._identity: ProcessIdentity | None = None
        self.start_counters: tuple[int, int] | None = None  # /proc (minflt, majflt) right after start
        self._unsampled_seen = 0  # kernel-counted faults not seen by any event, reported so far
        self._proc_base: tuple[int, int] | None = None  # /proc counters and event counts at start
        self._event_base = (0, 0)

    @property
    def exclude_kernel(self) -> bool:
        """Kernel-mode faults are not sampled (kernel.perf_event_paranoid without privileges)."""
        return self.rings.exclude_kernel

    @property
    def following(self) -> str:
        """How threads are followed: "per-cpu" (inherited, from their first fault) or "per-thread"."""
        return self.rings.mode

    # ------------------------------------------------------------ threads
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
        machine = platform.machine()
        if machine not in RING_SAFE_MACHINES:
            self._counters_mode(
                f"perf sampling is not enabled on {machine}: reading the perf ring there needs "
                "memory barriers this code does not have (see docs/kernel-notes.md): "
                "showing /proc fault counters instead"
            )
            return
        tids = sorted(task_ids(self.proc_root, self.pid))
        raise_nofile(2 * len(tids) * len(online_cpus()) + 64)  # two events per thread and CPU
        try:
            self.rings.open(tids)
        except OSError as e:
            if e.errno == errno.ESRCH and not self.reader.exists():
                raise ProcessGone(self.pid) from None
            self._counters_mode(refusal_reason(self.pid, self.proc_root, e))
            return
        if not self.rings.rings:
            if not self.reader.exists():
                raise ProcessGone(self.pid)
            self._counters_mode(
                refusal_reason(self.pid, self.proc_root, OSError(errno.ESRCH, "no thread could be opened"))
            )
            return
        # a thread made between the listing and the events' opening inherited nothing, and
        # cannot be told from one made just after (which did): it is not added twice, and its
        # faults show in ``unsampled``
        if self.rings.exclude_kernel:
            self.notes.append(
                "faults taken in kernel mode (e.g. read() into fresh pages) are "
                f"not sampled: kernel.perf_event_paranoid={paranoid(self.proc_root)} "
                "allows only user-mode sampling without root"
            )
        self.start_counters = self.proc_counters()
        self._event_base = self.rings.counts()
        if self.cap is not None:
            self.cap.last = (self.start_counters, self._event_base)
        self._proc_base = self.start_counters
        if self.rings.skipped:
            self.notes.append(
                f"{len(self.rings.skipped)} thread(s) could not be sampled: "
                + ", ".join(sorted(self.rings.skip_reasons))
            )
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
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
            self._proc_counters = faults_of(parse_stat(self.reader.read("stat")))
        except ProcessGone as e:
            self._end(str(e))
        self.start_counters = self._proc_counters

    # ------------------------------------------------------------ draining
    def _run(self) -> None:
        from .perf import name_this_thread

        name_this_thread("vmi-faults")  # seen in /proc/PID/task/TID/comm (and top -H)
        poller = select.poll()
        gen = -1
        per_thread = self.rings.mode == "per-thread"
        next_scan = time.monotonic() + SCAN_INTERVAL
        while not self._stop.is_set():
            if gen != self.rings.gen:
                with self._lock:
                    gen = self.rings.gen
                    poller = select.poll()
                    poller.register(self._wake, select.POLLIN)
                    for fd in self.rings.fds():
                        poller.register(fd, select.POLLIN)
            try:
                poller.poll(250)
            except (OSError, ValueError):
                pass
            if self._stop.is_set():
                break
            with self._lock:
                self.rings.drain(self._win)
            if per_thread and time.monotonic() >= next_scan:
                next_scan = time.monotonic() + SCAN_INTERVAL
                try:
                    self._rescan()
                except (ProcessGone, AccessDenied) as e:
                    self._end(str(e))
                    break
                except OSError:
                    pass

    def _check_alive(self) -> None:
        """ProcessGone when the process is a zombie or its PID names another process now."""
        state = self._liveness(parse_stat(self.reader.read("stat")))
        if state in (Liveness.ZOMBIE, Liveness.REUSED):
            raise ProcessGone(self.pid, describe(self.pid, state))

    def _rescan(self) -> None:
        self._check_alive()
        if self.rings.mode != "per-thread":
            return
        tids = set(task_ids(self.proc_root, self.pid))
        with self._lock:
            self.rings.follow(tids, self._win)

    # ------------------------------------------------------------ ticks
    def tick(
        self, snapshot: Snapshot | None, *, refresh: Callable[[], Snapshot | None] | None = None
    ) -> TickResult:
        """The faults since the last tick, each in the mapping it hit (``snapshot``'s VMAs first).

        ``refresh``: optional callable returning a newer Snapshot, called once when
        some faulting addresses lie outside ``snapshot``'s VMAs (a mapping made
        or resized during the window). A ``VmaInspectError`` it raises (the process
        went away, access lost) is returned in ``TickResult.refresh_error``; the
        faults are then attributed to ``snapshot`` and the window's history.
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
        proc = None if self._proc_base is None or self.gone else self.proc_counters()
        unsampled = self._unsampled(proc)
        # capped: totals from the kernel's counters, samples weighted by the window's period
        cap, exact, new_period, weight = self.cap, None, self.period, self.period if self.cap else 1
        if cap is not None:
            with self._lock:  # the drain thread may be changing the rings (per-thread mode)
                counts = self.rings.counts()
            exact, new_period = cap.window(proc, counts, window_s)
        with self._lock:
            # the ioctls take ms (an IPI each) while the target faults: up, before the drain,
            # down, after it, so the few samples around the switch that carry the other weight
            # are taken at the larger period and given the smaller weight (a slight under-
            # estimate; totals stay exact). Threads created since the opening (per-CPU mode)
            # keep the period of their creation: the ioctl does not reach them (docs/faults.md)
            if new_period > self.period:
                self.rings.set_period(new_period)
            self.rings.drain(self._win)
            win, self._win = self._win, Window()
            if new_period < self.period:
                self.rings.set_period(new_period)
            self.period = new_period
        return self._perf_tick(win, window_s, snapshot, refresh, unsampled, weight, exact)

    def _unsampled(self, now: tuple[int, int] | None) -> int | None:
        """Faults the kernel counted since the last tick that no event saw (never negative).

        /proc is read before the events, so a fault between the two reads makes the
        events' count larger, never the difference: this is a lower bound."""
        if now is None or self._proc_base is None:
            return None
        ev = self.rings.counts()
        kernel = (now[0] - self._proc_base[0]) + (now[1] - self._proc_base[1])
        events = (ev[0] - self._event_base[0]) + (ev[1] - self._event_base[1])
        total = max(0, kernel - events)
        out = max(0, total - self._unsampled_seen)
        self._unsampled_seen = max(self._unsampled_seen, total)
        return out

    def _perf_tick(
        self,
        win: Window,
        window_s: float,
        snapshot: Snapshot | None,
        refresh: Callable[[], Snapshot | None] | None,
        unsampled: int | None,
        weight: int = 1,
        exact: tuple[int, int] | None = None,
    ) -> TickResult:
        # distinct faulting addresses with their counts (one C-level pass per kind), sorted
        lists = []
        for k, raw in enumerate(win.addrs):
            one = None
            if not self.want_pages and not win.folded[k][0]:
                one = one_mapping(raw, snapshot, self._symbols.elf_data_vma)
            if one is not None:
                lists.append(one)
                continue
            cnt = count_u64(raw, Counter())
            if win.folded[k][0]:
                cnt.update(win.folded[k][0])
            keys = list(cnt)
            keys.sort()
            lists.append((keys, cnt))
        self._space.add(win.mmaps)
        att = self._space.attribute(snapshot, lists)
        refresh_error: VmaInspectError | None = None
        if (att.unattributed or att.from_history) and refresh is not None:
            try:
                fresh = refresh()
            except VmaInspectError as e:
                fresh, refresh_error = None, e
            if fresh is not None:
                snapshot = fresh
                att = self._space.attribute(snapshot, lists)
        self._space.advance(snapshot)
        by_vma = {k: (a, b) for k, (a, b) in att.by_start.items()}
        named: Any = snapshot if snapshot is not None else NO_VMAS  # no map: no names, all "[unknown]"
        data_split = scaled_pairs(self._symbols.data_symbols(named, by_vma, lists), weight)
        sym_split = scaled_pairs(
            self._symbols.ip_symbols(named, win.ips, (win.folded[0][1], win.folded[1][1])), weight
        )
        by_vma = scaled_pairs(by_vma, weight)
        by_symbol = tuple(
            sorted(((s, d, a + b) for (s, d), (a, b) in sym_split.items()), key=lambda t: (-t[2], t[0], t[1]))
        )
        by_mapping = tuple(
            sorted(
                (
                    (m.start, m.end, m.perms, m.kind, m.path, c[0] * weight, c[1] * weight)
                    for key, c in att.by_mapping.items()
                    for m in (att.mappings[key],)
                ),
                key=lambda r: (-(r[5] + r[6]), r[0]),
            )
        )
        page_list: list[int] = []
        if self.want_pages:
            mask = ~(PAGE - 1)
            page_list = sorted({a & mask for keys, _cnt in lists for a in keys})[:MAX_PAGES]
        by_transition = transitions(self._previous, snapshot, page_list)
        if snapshot is not None:
            self._previous = snapshot
        minor, major = exact if exact is not None else (win.samples(0), win.samples(1))
        tick = FaultTick(
            mode="perf",
            window_s=window_s,
            minor=minor,
            major=major,
            lost=win.lost,
            by_vma=by_vma,
            by_symbol=by_symbol,
            recent=self._symbols.samples(win.tails.values(), self.rings.maj_ids, self.recent, named),
            reason=None,
            by_thread={t: (c[0] * weight, c[1] * weight) for t, c in win.threads.items()},
            pages=tuple(page_list),
            by_transition=by_transition,
            by_mapping=by_mapping,
            unattributed=att.unattributed * weight,
            unsampled=unsampled,
            period=weight,
        )
        return TickResult(
            tick,
            snapshot,
            unattributed=att.unattributed * weight,
            by_symbol_split=sym_split,
            by_data_symbol_split=data_split,
            ended=self.ended,
            refresh_error=refresh_error,
        )

    # ------------------------------------------------------------ counters mode
    def _read_thread_counters(self) -> dict[int, tuple[int, int]]:
        try:
            return thread_counters(self.reader, task_ids(self.proc_root, self.pid))
        except (ProcessGone, AccessDenied):
            return {}

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
            now = faults_of(stat)
            if self._proc_counters is not None:
                minor = max(0, now[0] - self._proc_counters[0])
                major = max(0, now[1] - self._proc_counters[1])
            self._proc_counters = now
        except ProcessGone as e:
            self._end(str(e))
        threads = self._read_thread_counters()
        by_thread = deltas(threads, self._counters)
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
        return faults_of(stat)

    def event_counts(self) -> tuple[int, int]:
        """Sum of the perf events' own counts (every fault while enabled, sampled or not)."""
        with self._lock:
            return self.rings.counts()

    def stop(self) -> None:
        """Stop counting and sampling (the rings keep what they hold for a last ``tick``)."""
        # no lock: the drain thread may hold it for milliseconds, and every fault
        # sampled after the caller's last look at /proc would widen the window
        self.rings.disable()
        self._halt()

    def _halt(self) -> None:
        """Stop the drain thread (woken through the eventfd, not left to its poll timeout)."""
        self._stop.set()
        if self._wake >= 0:
            try:
                os.eventfd_write(self._wake, 1)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def close(self) -> None:
        self._halt()
        with self._lock:
            self.rings.close()
        if self._wake >= 0:
            os.close(self._wake)
            self._wake = -1

    def __enter__(self) -> FaultSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
