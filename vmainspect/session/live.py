"""One process followed over time: collect, sample faults, decide when it is gone.

A ``LiveSession`` is the loop body that the TUI's live source, ``record``
and ``faults`` share. ``start()`` takes the first snapshot (a missing
process, a zombie or missing privileges fail here, before anything is
written or shown) and starts the fault sampler; each ``step()`` collects
again (or only checks the process, for ``faults`` without ``--pages``) and
ticks the sampler against the new snapshot, and returns a ``Step``. The
caller owns the timing.

The lock budget (``session.pacing``): reading the memory map holds the
process's mmap lock, so a collect is not started before the last one's lock
time divided by ``lock_budget`` has passed since it started. A step that
comes sooner keeps the last snapshot (``fresh`` False, ``held`` says until
when and why), still checks that the process lives and still ticks the
sampler; the sampler's refresh (faults outside the known VMAs) is held back
the same way. It also reads the process-level counters that take no mmap
lock (/proc/PID/stat, which the liveness check reads anyway, and status:
``Step.vitals``), so the state, thread count, RSS, swap and fault totals shown
keep moving while the map is kept. ``step(force=True)`` collects anyway (the user asked). An exec
keeps the PID and start time but replaces the memory map, so a held-back step
also reads one byte of an fd on /proc/PID/maps opened before the last collect
(``procfs.process.MmProbe``, as ``collect`` uses one within a read):
the kernel binds that fd to the memory map of then, and once an exec has
released that map the read returns nothing. If its stat line says it runs
(not exiting), the step then collects whatever the budget says: the kept map
is of a program no longer running, and faults would be attributed to its
VMAs. (On Linux 6.17+ reading maps takes no mmap lock; before, one line of it
takes it for microseconds.)

"Gone" is decided here and only here, from the process's identity (pid and
start time, ``procfs.process``): it exited (no such PID), it is a zombie
(its memory is released), or its PID names another process. Once gone,
every ``Step`` carries ``ended`` and the last complete snapshot; the sampler
is closed after one last drain, so faults taken before the exit are counted
and none of another process's are. A snapshot is never partial (see
``snapshot.collect``); a read cut short by an exec or lost access keeps the
last view with a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AccessDenied, ProcessGone, VmaInspectError
from ..faults.cap import MIN_WINDOW_S
from ..faults.sampler import FaultSampler, TickResult
from ..model import ProcessVitals, Snapshot
from ..procfs.process import Liveness, MmProbe, ProcessIdentity, describe, liveness
from ..procfs.procstat import StatInfo, parse_stat
from ..procfs.reader import ProcReader
from ..procfs.vitals import read_vitals
from ..snapshot.collect import collect
from .pacing import DEFAULT_LOCK_BUDGET, HeldBack, Pacer

Collector = Callable[..., Snapshot]


@dataclass(frozen=True)
class Ended:
    """Why the session ended."""

    state: Liveness  # EXITED, ZOMBIE, REUSED or EXITING
    message: str  # one line for the user


@dataclass(frozen=True)
class Step:
    """One turn of the loop."""

    snapshot: Snapshot | None  # the newest complete snapshot (None: never readable, faults only)
    faults: TickResult | None = None  # the faults of the window ending now; None when not sampling
    ended: Ended | None = None  # set once the process is gone; ``snapshot`` is then the last one
    message: str | None = None  # something to say that does not end the session (e.g. access lost)
    fresh: bool = True  # ``snapshot`` was collected in this step
    held: HeldBack | None = None  # not collected: the lock budget held this step back (until when, why)
    # the process-level counters read at the end of this step (stat and status, no mmap lock): on a
    # held-back step newer than ``snapshot.process`` and its RSS and swap totals; read after a collect
    # too, so that consecutive steps' counters are read the same way. None: not read (unreadable,
    # or a step that does not collect: ``faults`` without ``--pages``)
    vitals: ProcessVitals | None = None


@dataclass(frozen=True)
class Final:
    """What ``LiveSession.finish()`` returns."""

    step: Step  # the last tick (the faults up to the end)
    counters: tuple[int, int] | None  # the kernel's (minflt, majflt) as sampling stopped; None if gone
    events: tuple[int, int] | None  # the perf events' own (minor, major) counts; None in counters mode


class LiveSession:
    """Follows process ``pid``; see the module docstring.

    ``collect_each_step``: collect in every ``step()`` (the TUI, ``record``,
    ``faults --pages``); otherwise only when the sampler finds faults outside
    the last snapshot's VMAs. ``need_snapshot``: without it, a process whose
    memory map may not be read can still be sampled by /proc counters.
    ``need_faults``: a sampler that cannot start is an error (``faults``),
    not a note (the TUI, ``record``). ``lock_budget``: the fraction of wall
    time the collects may hold the process's mmap lock (see the module
    docstring); None = collect every step. ``clock``: monotonic seconds for
    the budget (tests pass a fake one).
    """

    def __init__(
        self,
        pid: int,
        *,
        pages: bool = False,
        faults: bool = True,
        period: int = 1,
        proc_root: str = "/proc",
        collect_each_step: bool = True,
        need_snapshot: bool = True,
        need_faults: bool = False,
        collector: Collector = collect,
        fault_pages: bool = True,
        lock_budget: float | None = DEFAULT_LOCK_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        max_fault_rate: int | None = None,
    ) -> None:
        """``fault_pages``: the sampler lists each tick's faulted pages (FaultTick.pages), which the
        live view marks; a command that prints neither them nor transitions passes False.
        ``max_fault_rate``: fault samples a second the sampler may take (``faults.cap``; the TUI
        and ``record`` pass one); None: every ``period``-th fault (``faults``, the lecture)."""
        self.pid = pid
        self.fault_pages = fault_pages
        self.pages = pages
        self.want_faults = faults
        self.period = period
        self.max_fault_rate = max_fault_rate
        self.proc_root = proc_root
        self.collect_each_step = collect_each_step
        self.need_snapshot = need_snapshot
        self.need_faults = need_faults
        self._collector = collector
        self.pacer = Pacer(lock_budget, clock)  # ValueError for a budget outside (0, 1]
        self.held_steps = 0  # steps the budget held back
        self._reader = ProcReader(pid, proc_root)
        self.identity: ProcessIdentity | None = None
        self.sampler: FaultSampler | None = None
        self.faults_note: str | None = None if faults else "fault sampling off"
        self.denied: AccessDenied | None = None  # why the memory map could not be read at the start
        self._last: Snapshot | None = None
        self._ended: Ended | None = None
        self._started = False
        self._create_time: float | None = None
        self._mm_probe: MmProbe | None = None  # bound to the memory map the last collect read

    # ------------------------------------------------------------ state
    @property
    def last(self) -> Snapshot | None:
        """The newest complete snapshot."""
        return self._last

    @property
    def ended(self) -> Ended | None:
        return self._ended

    def _collect(self) -> Snapshot:
        # opened before the read: an exec after this point releases the map the probe is bound
        # to, so the next held-back step sees it (at worst one collect too many, never one missed)
        probe = self._open_probe()
        try:
            with self.pacer.collecting() as spent:
                snap = self._collector(self.pid, pages=self.pages, proc_root=self.proc_root, lock_time=spent)
        except BaseException:
            if probe is not None:
                probe.close()
            raise
        self._close_maps()
        self._mm_probe = probe
        return snap

    def _open_probe(self) -> MmProbe | None:
        try:
            return MmProbe(self._reader, for_file="maps")
        except (VmaInspectError, OSError):
            return None  # the collect says why, if it matters; no exec check until one opens

    def _close_maps(self) -> None:
        if self._mm_probe is not None:
            self._mm_probe.close()
            self._mm_probe = None

    def _map_replaced(self) -> bool:
        """The memory map the last collect read has been released (an exec, or the exit):
        the probe opened before that collect reads nothing, or fails."""
        if self._mm_probe is None:
            return False
        try:
            return not self._mm_probe.still_alive()
        except (VmaInspectError, OSError):
            return True  # no longer readable: the collect says why

    def _end(self, state: Liveness) -> Ended:
        if self._ended is None:
            self._ended = Ended(state, describe(self.pid, state))
        return self._ended

    def _check(self) -> Liveness:
        return self._check_stat()[0]

    def _check_stat(self) -> tuple[Liveness, StatInfo | None]:
        """The process's state and the stat line that says so (None: not read or no such PID)."""
        if self.identity is None:
            return Liveness.RUNNING, None
        try:
            return liveness(self._reader, self.identity)
        except AccessDenied:
            return Liveness.RUNNING, None  # stat unreadable now: nothing proves it is gone

    def _vitals(self, stat: StatInfo | None) -> ProcessVitals | None:
        """The process-level counters now (no mmap lock: ``procfs.vitals``); None if they
        cannot be read (the next collect says why, if it matters)."""
        try:
            return read_vitals(self._reader, stat)
        except (VmaInspectError, OSError):
            return None

    # ------------------------------------------------------------ life cycle
    def start(self) -> Step:
        """First snapshot, then fault sampling. Raises ProcessGone (no such
        process, or a zombie: nothing left to show) or AccessDenied."""
        if self._started:
            raise RuntimeError("session already started")
        self._started = True
        try:
            return self._start()
        except BaseException:
            self._close_maps()  # the caller has no session to close
            raise

    def _start(self) -> Step:
        stat = parse_stat(self._reader.read("stat"))  # ProcessGone: no such process
        read_at = time.monotonic()
        self.identity = ProcessIdentity.of(stat)
        snap: Snapshot | None
        try:
            snap = self._collect()
        except AccessDenied as e:
            if self.need_snapshot or not self.want_faults:
                raise
            snap, self.denied = None, e
        if stat.dead or (snap is not None and snap.process.state in ("Z", "X", "x")):
            raise ProcessGone(self.pid, "it is a zombie: it has exited and has no memory left to show")
        self._last = snap
        self._create_time = snap.process.create_time if snap is not None else None
        vitals = self._vitals(None) if snap is not None else None
        if self.want_faults:
            self._start_sampler(snap, self._fault_rate(stat, read_at, vitals))
        return Step(snap, self._tick(snap), vitals=vitals)

    def _fault_rate(self, before: StatInfo, read_at: float, now: ProcessVitals | None) -> float | None:
        """Faults a second from ``before`` (read at monotonic ``read_at``, before the first
        collect) to ``now`` (read just after it), for the sampling cap's first window; None: no
        cap, not read, or too short a time to tell."""
        elapsed = time.monotonic() - read_at
        if self.max_fault_rate is None or now is None or elapsed < MIN_WINDOW_S:
            return None
        faults = now.minor_faults + now.major_faults - before.minflt - before.majflt
        return max(0, faults) / elapsed

    def _start_sampler(self, baseline: Snapshot | None, expected_rate: float | None = None) -> None:
        sampler = FaultSampler(
            self.pid,
            period=self.period,
            proc_root=self.proc_root,
            baseline=baseline,
            pages=self.fault_pages,
            max_rate=self.max_fault_rate,
            expected_rate=expected_rate,
        )
        try:
            sampler.start()
        except (VmaInspectError, OSError) as e:
            sampler.close()
            if self.need_faults:
                raise
            self.faults_note = f"fault sampling unavailable: {e}"
            return
        if baseline is None and sampler.mode == "perf" and self.denied is not None:
            sampler.close()  # samples could not be attributed to any mapping
            raise self.denied
        self.sampler = sampler
        self.faults_note = sampler.reason

    def _refresh(self) -> Snapshot | None:
        """A newer snapshot for the sampler (faults outside the known VMAs); None if gone
        or if the lock budget holds the collect back."""
        if self.pacer.held() is not None:
            return None
        try:
            snap = self._collect()
        except ProcessGone:
            return None
        if snap.process.state in ("Z", "X", "x") or not self._same(snap):
            return None
        self._last = snap
        return snap

    def _same(self, snap: Snapshot) -> bool:
        """``snap`` is of the process the session started on (its start time is the same)."""
        first = self._create_time
        return first is None or snap.process.create_time in (None, first)

    def _tick(self, snap: Snapshot | None) -> TickResult | None:
        if self.sampler is None:
            return None
        try:
            result = self.sampler.tick(snap, refresh=self._refresh if snap is not None else None)
        except (VmaInspectError, OSError) as e:
            self.faults_note = f"fault sampling stopped: {e}"
            self._close_sampler()
            return None
        if result.snapshot is not None and result.snapshot is not snap:
            self._last = result.snapshot  # refreshed: the newer map is the one shown
        return result

    def step(self, *, force: bool = False) -> Step:
        """Collect (or check) and tick once. After the end: the last snapshot and ``ended``.
        ``force``: collect even if the lock budget would hold this step back."""
        if not self._started:
            raise RuntimeError("start() the session first")
        if self._ended is not None:
            return Step(self._last, None, self._ended, fresh=False)
        if not self.collect_each_step:
            state = self._check()
            if state in (Liveness.RUNNING, Liveness.EXITING):
                return Step(self._last, self._tick(self._last), fresh=False)
            return self._gone(state)
        held = None if force else self.pacer.held()
        if held is not None:  # keep the last map; the process is checked from its stat line
            state, stat = self._check_stat()
            if state not in (Liveness.RUNNING, Liveness.EXITING):
                return self._gone(state)
            # unless it exec'd: the kept map is of a program no longer running, read the new one
            if state is Liveness.EXITING or not self._map_replaced():
                self.held_steps += 1
                vitals = self._vitals(stat)  # the header's counters move on while the map is kept
                return Step(self._last, self._tick(self._last), fresh=False, held=held, vitals=vitals)
        try:
            snap = self._collect()
        except ProcessGone as e:
            state = self._check()
            if state is Liveness.RUNNING:  # e.g. an exec during the read: keep the last view
                return Step(self._last, self._tick(self._last), message=str(e), fresh=False)
            return self._gone(state)
        except AccessDenied as e:
            # e.g. it exec'd a setuid binary: keep the last view, say why
            return Step(self._last, None, message=str(e), fresh=False)
        if not self._same(snap):
            return self._gone(Liveness.REUSED)
        if snap.process.state in ("Z", "X", "x"):
            return self._gone(Liveness.ZOMBIE)
        self._last = snap
        return Step(snap, self._tick(snap), vitals=self._vitals(None))

    def _gone(self, state: Liveness) -> Step:
        ended = self._end(state)
        self._close_maps()
        last_faults = None
        if self.sampler is not None and state is not Liveness.REUSED:
            self.sampler.stop()
            last_faults = self._tick(self._last)  # what the rings still hold from before the exit
        self._close_sampler()
        return Step(self._last, last_faults, ended, fresh=False)

    def finish(self) -> Final:
        """End sampling now: the kernel's (minflt, majflt) read just before the
        events stop (None if gone or reused), the events' own counts, then the
        last tick."""
        counters = events = None
        if self.sampler is not None:
            counters = self.sampler.proc_counters()  # None after PID reuse: never another's counts
            self.sampler.stop()
            if self.sampler.mode == "perf":
                events = self.sampler.event_counts()
        if self._ended is not None:
            return Final(Step(self._last, None, self._ended, fresh=False), counters, events)
        state = self._check()
        if state in (Liveness.EXITED, Liveness.ZOMBIE, Liveness.REUSED):
            self._end(state)
            if state is Liveness.REUSED:
                counters = None
        if self.collect_each_step and self.pages and self._ended is None:
            self._refresh()
        result = self._tick(self._last) if state is not Liveness.REUSED else None
        self._close_sampler()
        self._close_maps()
        return Final(Step(self._last, result, self._ended, fresh=False), counters, events)

    def _close_sampler(self) -> None:
        if self.sampler is not None:
            try:
                self.sampler.close()
            except (VmaInspectError, OSError):
                pass
            self.sampler = None

    def close(self) -> None:
        self._close_sampler()
        self._close_maps()
