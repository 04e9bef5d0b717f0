"""The perf rings that follow one process, and the window buffers they are drained into.

Two ways to follow every thread (docs/kernel-notes.md, "perf_event_open and
page-fault events"):

- **per CPU, inherited** (the default, as ``perf record -p`` does): on each CPU,
  one ring; every thread that exists at start gets a minor and a major event
  for that CPU writing into it, opened with ``inherit`` + ``inherit_thread``, so
  every thread created later carries the events from its first instruction
  (its first fault is sampled). 2 x CPUs x threads events, ``CPUs`` rings.
- **per thread** (the fallback when that would take more than ``MAX_EVENTS``
  events, or the kernel refuses ``inherit_thread``, before Linux 5.13): one ring per
  thread, new threads found by listing /proc/PID/task every 0.2 s; faults a
  thread takes before it is found are not sampled, and the sampler reports
  them as ``unsampled`` (the kernel's counter minus the events' counts).

Draining copies each ring's new records, splits them into runs of samples
(C-level strided slices, no per-sample Python) and appends the faulting
addresses and IPs to the window's raw u64 buffers; MMAP2 records go to the
window's list for ``addrspace``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections import Counter
from collections.abc import Callable

from .attrib import count_u64
from .perf import PERF_EVENT_IOC_PERIOD, SAMPLE_WORDS, MmapRecord, PerfError, Ring, split_records

MAX_EVENTS = 4096  # per-CPU mode when 2 x CPUs x threads stays under this
FOLD_BYTES = 32 << 20  # raw addresses kept before folding them into counts (bounds memory between ticks)


def online_cpus(sys_root: str = "/sys") -> list[int]:
    """CPUs the kernel has online (/sys/devices/system/cpu/online: "0-3,5"), else 0..cpu_count-1."""
    try:
        with open(f"{sys_root}/devices/system/cpu/online") as f:
            text = f.read().strip()
        out: list[int] = []
        for part in text.split(","):
            a, _, b = part.partition("-")
            out.extend(range(int(a), int(b or a) + 1))
        if out:
            return out
    except (OSError, ValueError):
        pass
    return list(range(os.cpu_count() or 1))


class Window:
    """One window's raw samples, per kind (0 minor, 1 major)."""

    __slots__ = ("addrs", "folded", "ips", "lost", "mmaps", "n", "other", "tails", "threads")

    def __init__(self) -> None:
        self.addrs = (bytearray(), bytearray())  # raw little-endian u64s
        self.ips = (bytearray(), bytearray())
        self.folded: tuple[tuple[Counter[int], Counter[int]], ...] = (
            (Counter(), Counter()),
            (Counter(), Counter()),
        )  # (addrs, ips) counts per kind
        self.n = [0, 0]  # samples folded per kind
        self.threads: dict[int, list[int]] = {}  # tid -> [minor, major]
        self.lost = 0
        self.other = 0
        self.tails: dict[object, bytes] = {}  # ring -> its newest raw samples
        self.mmaps: list[MmapRecord] = []

    def samples(self, kind: int) -> int:
        return self.n[kind] + len(self.addrs[kind]) // 8


def _tid_counts(col: memoryview) -> dict[int, int]:
    """tid -> samples from the (pid | tid << 32) column; one comparison when a single thread faulted."""
    raw = col.tobytes()
    if raw[:8] * (len(raw) // 8) == raw:
        return {col[0] >> 32: len(col)}
    out: dict[int, int] = {}
    for word, n in Counter(col).items():
        out[word >> 32] = out.get(word >> 32, 0) + n
    return out


class RingSet:
    """The rings following one process (see the module docstring for the two modes)."""

    def __init__(
        self,
        pid: int,
        *,
        period: int,
        ring_bytes: int | None,
        recent: int,
    ) -> None:
        self.pid = pid
        self.period = period
        self.fixed_bytes = ring_bytes  # every ring this size (tests), else ring_bytes()
        self.recent = recent
        self.mode = "per-cpu"
        self.exclude_kernel = False
        self.rings: dict[object, Ring] = {}  # cpu (per-cpu) or tid (per-thread) -> Ring
        self.maj_ids: set[int] = set()
        self.closed_counts = [0, 0]  # event counts of rings already closed (exited threads)
        self.skipped: set[int] = set()  # threads that could not be opened (per-thread mode)
        self.skip_reasons: set[str] = set()
        self.gen = 0  # bumped when the set of rings changes

    # ------------------------------------------------------------ opening
    def ring_bytes(self, nrings: int) -> int:
        if self.fixed_bytes:
            return self.fixed_bytes
        if os.geteuid() == 0:
            # 8 MiB (~175,000 samples, 200 ms at 870k faults/s: a busy machine can keep this
            # process off the CPU that long) per ring, 64 MiB in all at most
            return max(64 << 10, min(8 << 20, (64 << 20) // max(1, nrings)))
        # unprivileged: kernel.perf_event_mlock_kb (516 KiB) per online CPU is shared by all our
        # rings (the ring halves itself when the kernel refuses more)
        return max(8192, (512 << 10) * len(online_cpus()) // max(1, nrings))

    def open(self, tids: list[int]) -> None:
        """Open the rings for ``tids`` (per CPU if it fits, else per thread). Raises OSError if none opens."""
        cpus = online_cpus()
        if 2 * len(cpus) * len(tids) <= MAX_EVENTS:
            try:
                self._open_per_cpu(tids, cpus)
                return
            except PerfError as e:
                if e.errno not in (errno.EINVAL, errno.E2BIG, errno.EMFILE, errno.ENFILE, errno.ENOMEM):
                    raise
                self.close()
        self.mode = "per-thread"
        self._open_per_thread(tids)

    def _new_ring(self, tid: int, cpu: int, nrings: int) -> Ring:
        return Ring(
            tid,
            cpu=cpu,
            inherit=cpu >= 0,
            track_mmaps=True,
            exclude_kernel=self.exclude_kernel,
            period=self.period,
            ring_bytes=self.ring_bytes(nrings),
        )

    def _with_kernel_fallback(self, fn: Callable[[], Ring]) -> Ring:
        """``fn()``; once more with exclude_kernel when the kernel refuses kernel-mode samples."""
        try:
            return fn()
        except PerfError as e:
            if e.errno not in (errno.EACCES, errno.EPERM) or self.exclude_kernel or self.rings:
                raise
        # kernel.perf_event_paranoid >= 2 without privileges: user-mode faults only
        self.exclude_kernel = True
        return fn()

    def _open_per_cpu(self, tids: list[int], cpus: list[int]) -> None:
        first, rest = tids[0], tids[1:]
        for cpu in cpus:
            ring = self._with_kernel_fallback(lambda cpu=cpu: self._new_ring(first, cpu, len(cpus)))  # type: ignore[misc]
            self.rings[cpu] = ring
            for tid in rest:
                try:
                    ring.add(tid)
                except PerfError as e:
                    if e.errno != errno.ESRCH:  # exited meanwhile: nothing to follow
                        raise
            self.maj_ids |= ring.maj_ids
        for ring in self.rings.values():
            ring.enable()

    def _open_per_thread(self, tids: list[int]) -> None:
        first_error: OSError | None = None
        for tid in tids:
            try:
                ring = self._with_kernel_fallback(lambda tid=tid: self._new_ring(tid, -1, len(tids)))  # type: ignore[misc]
            except OSError as err:
                if err.errno == errno.ESRCH:
                    continue  # the thread exited meanwhile
                if not self.rings:
                    first_error = err
                    break
                self.skip(tid, err)
                continue
            ring.enable()
            self.rings[tid] = ring
            self.maj_ids |= ring.maj_ids
        if not self.rings and first_error is not None:
            raise first_error

    def skip(self, tid: int, err: OSError) -> None:
        self.skipped.add(tid)
        self.skip_reasons.add(
            "open file limit (RLIMIT_NOFILE)"
            if err.errno in (errno.EMFILE, errno.ENFILE)
            else "perf ring memory limit (kernel.perf_event_mlock_kb)"
            if err.errno in (errno.EPERM, errno.ENOMEM)
            else os.strerror(err.errno or 0)
        )

    def follow(self, tids: set[int], win: Window) -> None:
        """Per-thread mode: close the rings of exited threads (after a last drain), open new ones."""
        changed = False
        for tid in [t for t in self.rings if t not in tids]:
            self.drain(win, only=tid)
            ring = self.rings.pop(tid)
            mi, ma = ring.counts()
            self.closed_counts[0] += mi
            self.closed_counts[1] += ma
            ring.close()
            changed = True
        self.skipped &= tids
        for tid in sorted(tids):
            if tid in self.rings or tid in self.skipped:
                continue
            try:
                ring = self._new_ring(tid, -1, len(tids))
                ring.enable()
            except OSError as e:
                if e.errno != errno.ESRCH:
                    self.skip(tid, e)
                continue
            self.rings[tid] = ring
            self.maj_ids |= ring.maj_ids
            changed = True
        if changed:
            self.gen += 1

    # ------------------------------------------------------------ draining
    def drain(self, win: Window, only: object = None) -> None:
        """Move every ring's new records into ``win`` (or only ring ``only``'s)."""
        keep = self.recent * SAMPLE_WORDS
        maj_ids = self.maj_ids
        for key, ring in self.rings.items():
            if only is not None and key != only:
                continue
            data = ring.drain()
            if not data:
                continue
            runs, lost, other = split_records(data, win.mmaps)
            win.lost += lost
            win.other += other
            for q in runs:
                ids = q[1::SAMPLE_WORDS]
                if any(m in ids for m in ring.maj_ids):
                    self._mixed(q, maj_ids, win)
                else:
                    win.addrs[0].extend(q[5::SAMPLE_WORDS].tobytes())
                    ips = q[2::SAMPLE_WORDS]
                    raw = ips.tobytes()
                    if raw[:8] * len(ips) == raw:  # one instruction faulted (a hot loop): one count
                        win.folded[0][1][ips[0]] += len(ips)
                    else:
                        win.ips[0].extend(raw)
                    for tid, c in _tid_counts(q[3::SAMPLE_WORDS]).items():
                        win.threads.setdefault(tid, [0, 0])[0] += c
            self._fold(win)
            if keep and runs:
                last = runs[-1]
                tail = (
                    last[-keep:].tobytes()
                    if len(last) >= keep
                    else (win.tails.get(key, b"") + last.tobytes())[-keep * 8 :]
                )
                win.tails[key] = tail

    @staticmethod
    def _mixed(q: memoryview, maj_ids: set[int], win: Window) -> None:
        """A run with major faults in it: sample by sample."""
        idl = q[1::SAMPLE_WORDS].tolist()
        ipl, adl = q[2::SAMPLE_WORDS].tolist(), q[5::SAMPLE_WORDS].tolist()
        tidl = q[3::SAMPLE_WORDS].tolist()
        for k, i in enumerate(idl):
            m = 1 if i in maj_ids else 0
            win.addrs[m].extend(struct.pack("<Q", adl[k]))
            win.ips[m].extend(struct.pack("<Q", ipl[k]))
            win.threads.setdefault(tidl[k] >> 32, [0, 0])[m] += 1

    @staticmethod
    def _fold(win: Window) -> None:
        for k in (0, 1):
            if len(win.addrs[k]) >= FOLD_BYTES:  # nobody ticked for a while: keep counts only
                count_u64(win.addrs[k], win.folded[k][0])
                count_u64(win.ips[k], win.folded[k][1])
                win.n[k] += len(win.addrs[k]) // 8
                del win.addrs[k][:], win.ips[k][:]

    # ------------------------------------------------------------ counts, closing
    def counts(self) -> tuple[int, int]:
        """Sum of the events' own counts (every fault while enabled, sampled or not)."""
        mi, ma = self.closed_counts
        for r in self.rings.values():
            a, b = r.counts()
            mi += a
            ma += b
        return mi, ma

    def set_period(self, period: int) -> int:
        """PERF_EVENT_IOC_PERIOD on every event: one fault in ``period`` sampled from now on
        (kernel semantics: ``cap``'s docstring), and in rings opened later (per-thread mode).
        Returns how many events refused (a thread that exited meanwhile)."""
        self.period = period
        arg, refused = struct.pack("<Q", period), 0
        for ring in self.rings.values():
            ring.period = period
            for fd in (fd for fd in ring.fds if fd >= 0):
                try:
                    fcntl.ioctl(fd, PERF_EVENT_IOC_PERIOD, arg)
                except OSError:
                    refused += 1
        return refused

    def disable(self) -> None:
        for r in list(self.rings.values()):
            r.disable()

    def close(self) -> None:
        for r in self.rings.values():
            r.close()
        self.rings.clear()

    def fds(self) -> list[int]:
        return [r.fd_min for r in self.rings.values()]
