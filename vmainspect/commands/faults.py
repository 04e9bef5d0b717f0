"""vmainspect faults PID: which mappings and which functions take a process's page faults."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, cast

from .argtypes import add_lock_budget, add_max_fault_rate, int_arg, lock_budget, pid_arg, seconds_arg

if TYPE_CHECKING:
    from ..faults.sampler import FaultSampler, TickResult
    from ..model import Snapshot
    from ..model.faults import TransitionState
    from ..session import LiveSession

HELP = "sample a process's page faults: top mappings and functions, minor/major"
DESCRIPTION = """Sample every page fault of a process (perf_event_open software events
page-faults-min and page-faults-maj, with the faulting address and instruction)
for --duration seconds, or until Ctrl+C or the process exits, and print the
mappings (VMAs) and functions that took them, minor and major apart, faults per
second, lost samples, and the kernel's own fault counters (/proc/PID/stat) over
the same window for comparison.

Where perf_event_open is refused (kernel.perf_event_paranoid, seccomp, another
user's process), it says why and reports the /proc counters (per process and
per thread) instead.

examples:
  vmainspect faults 1234 --duration 5
  vmainspect faults 1234 --duration 10 --period 10 --top 20
  vmainspect faults 1234 --duration 5 --max-fault-rate 20000   # spare a busy target
  vmainspect faults 1234 --duration 2 --json | jq .by_vma[0]"""

SCHEMA = "vmainspect/faults@1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pid", type=pid_arg, metavar="PID", help="process to sample")
    p.add_argument(
        "--duration",
        type=seconds_arg(0.001, 1e9),
        default=None,
        metavar="S",
        help="sample for S seconds (default: until Ctrl+C or the process exits)",
    )
    p.add_argument(
        "--period",
        type=int_arg(1, (1 << 63) - 1),  # perf_event_attr.sample_period: the kernel refuses the top bit
        default=1,
        metavar="N",
        help="sample one fault in N (default 1: every fault)",
    )
    # the cap of attach and record, off by default here: a bounded run's per-mapping and per-function
    # counts stay samples, not estimates; N > 0 spares a busy target (docs/faults.md, "The sampling cap")
    add_max_fault_rate(p, 0)
    p.add_argument("--top", type=int_arg(1), default=10, metavar="N", help="rows in each table (default 10)")
    p.add_argument(
        "--pages",
        action="store_true",
        help="read per-page state every second too, and count the faulted pages' "
        "state transitions (absent->anon, zero->anon, file->anon, ...)",
    )
    add_lock_budget(p)
    p.add_argument("--json", action="store_true", help=f"print {SCHEMA} JSON instead of tables")


class _Result:
    def __init__(self) -> None:
        # mapping identity (faults.addrspace.identity) -> [start, end, perms, minor, major]: a mapping
        # that grew or shrank during the run is one row, with the largest extent seen
        self.by_vma: dict[tuple[int, str, str | None], list[Any]] = {}
        self.by_symbol: dict[tuple[str, str], list[int]] = {}
        self.by_thread: dict[int, list[int]] = {}
        self.by_data: dict[tuple[str, str], list[int]] = {}
        self.by_transition: dict[tuple[str, str], int] = {}
        self.minor = self.major = 0
        self.lost = 0
        self.unattributed = 0
        self.samples = 0  # samples taken (under the cap minor/major are the kernel's exact counts)
        self.max_period = 1  # the largest sample period a window used

    def add(self, result: TickResult) -> None:
        """Add one ``TickResult``."""
        from ..faults.addrspace import identity

        tick = result.faults
        self.minor += tick.minor
        self.major += tick.major
        self.lost += tick.lost or 0
        for tid, (a, b) in tick.by_thread.items():
            t = self.by_thread.setdefault(tid, [0, 0])
            t[0] += a
            t[1] += b
        if tick.mode != "perf":
            return
        # by_thread counts every sample of the window, scaled by the window's period
        self.samples += sum(a + b for a, b in tick.by_thread.values()) // tick.period
        self.max_period = max(self.max_period, tick.period)
        for before, after, n in tick.by_transition:
            self.by_transition[(before, after)] = self.by_transition.get((before, after), 0) + n
        self.unattributed += result.unattributed
        for start, end, perms, kind, path, a, b in tick.by_mapping:
            key = identity(start, kind, path)
            row = self.by_vma.setdefault(key, [start, end, perms, 0, 0, kind, path])
            if end > row[1]:
                row[1], row[2] = end, perms
            row[0] = min(row[0], start)
            row[3] += a
            row[4] += b
        for sym, (a, b) in result.by_symbol_split.items():
            c = self.by_symbol.setdefault(sym, [0, 0])
            c[0] += a
            c[1] += b
        for sym, (a, b) in result.by_data_symbol_split.items():
            c = self.by_data.setdefault(sym, [0, 0])
            c[0] += a
            c[1] += b


class _StopRequest:
    """SIGINT and SIGTERM while sampling: interrupt the sleep between ticks, never a tick.

    A KeyboardInterrupt raised inside ``session.step()`` dropped the window being drained, so
    the report missed the last second's samples (e.g. 45k of 635k while the events counted
    all). During a tick the signal is only noted, and the loop ends after it."""

    def __init__(self) -> None:
        self.requested = False
        self.sleeping = False

    def __call__(self, _sig: int, _frame: object) -> None:
        self.requested = True
        if self.sleeping:
            raise KeyboardInterrupt

    def sleep(self, seconds: float) -> None:
        """Sleep, unless a stop was asked for; KeyboardInterrupt when one comes."""
        self.sleeping = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            time.sleep(seconds)
        finally:
            self.sleeping = False


def _sample(
    args: argparse.Namespace, session: LiveSession, res: _Result, stop: _StopRequest
) -> tuple[float, bool, str | None]:
    """Tick once a second until the duration, Ctrl+C or the process's end.
    Returns (elapsed s, interrupted, why the process ended or None)."""
    t0 = time.monotonic()
    deadline = t0 + args.duration if args.duration else None
    interrupted = False
    ended: str | None = None
    try:
        while True:
            now = time.monotonic()
            wait = 1.0 if deadline is None else min(1.0, deadline - now)
            if wait > 0:
                stop.sleep(wait)
            elif stop.requested:
                raise KeyboardInterrupt
            if deadline is not None and time.monotonic() >= deadline:
                break
            step = session.step()
            if step.faults is not None:
                res.add(step.faults)
            if step.ended is not None:
                ended = step.ended.message
                break
    except KeyboardInterrupt:
        interrupted = True
    return time.monotonic() - t0, interrupted, ended


def run(args: argparse.Namespace) -> int:
    from ..session import LiveSession

    # one collect at the start (exit 3 if there is no process); with --pages one every tick.
    # Another user's process: its map is unreadable, but /proc counters may still be.
    session = LiveSession(
        args.pid,
        pages=args.pages,
        period=args.period,
        collect_each_step=args.pages,
        need_snapshot=False,
        need_faults=True,
        fault_pages=args.pages,  # the faulted pages are listed only for --pages (their transitions)
        lock_budget=lock_budget(args.lock_budget),  # paces the --pages reads
        max_fault_rate=args.max_fault_rate or None,  # 0 (the default): every --period-th fault
    )
    prev_term, prev_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = _StopRequest()
    res = _Result()
    try:
        first = session.start()
        sampler = session.sampler
        assert sampler is not None  # need_faults: start() raised otherwise
        snap = first.snapshot
        c0 = sampler.start_counters
        if first.faults is not None:
            res.add(first.faults)
        if not args.json and sys.stderr.isatty() and args.duration is None:
            print(f"sampling page faults of {args.pid}: Ctrl+C to stop", file=sys.stderr)
        signal.signal(signal.SIGTERM, stop)
        if prev_int is not signal.SIG_IGN:  # started with SIGINT ignored (nohup, &): it stays so
            signal.signal(signal.SIGINT, stop)
        try:
            elapsed, interrupted, ended = _sample(args, session, res, stop)
            # the kernel's counters, then the events stopped, then the last of the rings:
            # both cover the same window (to within microseconds); a second Ctrl+C is noted only
            final = session.finish()
        finally:
            signal.signal(signal.SIGTERM, prev_term)
            signal.signal(signal.SIGINT, prev_int)
        c1, events, last = final.counters, final.events, final.step
        if last.faults is not None:
            res.add(last.faults)
        if ended is None and last.ended is not None:
            ended = last.ended.message
    finally:
        session.close()
    proc = None
    if c0 is not None and c1 is not None:
        proc = {"minor": c1[0] - c0[0], "major": c1[1] - c0[1]}
    doc = _document(args, sampler, snap, res, elapsed, proc, events, interrupted, ended)
    out = json.dumps(doc, indent=1) + "\n" if args.json else _render(doc, args.top)
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


def _document(
    args: argparse.Namespace,
    sampler: FaultSampler,
    snap: Snapshot | None,
    res: _Result,
    elapsed: float,
    proc: dict[str, int] | None,
    events: tuple[int, int] | None,
    interrupted: bool,
    ended: str | None,
) -> dict[str, Any]:
    import msgspec

    from ..faults.demangle import demangle
    from ..model.faults import (
        FaultsReport,
        MinorMajor,
        SymbolCount,
        ThreadFaults,
        TransitionCount,
        VmaFaults,
    )

    perf = sampler.mode == "perf"
    capped = perf and bool(args.max_fault_rate)
    # uncapped, minor and major are the samples; capped, the kernel's exact counts (faults.cap)
    samples = (res.samples if capped else res.minor + res.major) if perf else None
    # faults a second: capped, the exact counts; uncapped, samples times the period
    scale = 1 if capped or not perf else args.period
    by_vma = sorted(res.by_vma.values(), key=lambda r: (-(r[3] + r[4]), r[0]))
    by_sym = sorted(res.by_symbol.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))
    notes = list(sampler.notes)
    if snap is not None and not snap.vmas:
        notes.append("no address space: a kernel thread (or a zombie) has no VMAs to take page faults in")
    if ended:
        notes.append(f"{ended} after {elapsed:.2f} s: this is what was sampled until then")
    if interrupted:
        notes.append(f"interrupted after {elapsed:.2f} s")
    unsampled = None
    if perf and proc is not None and events is not None:
        # /proc was read before the events were stopped and counted: a lower bound
        unsampled = max(0, proc["minor"] + proc["major"] - events[0] - events[1])
        if unsampled:
            notes.append(
                f"{unsampled} faults the kernel counted were seen by no event (threads followed "
                f"per thread: {sampler.following == 'per-thread'}; faults taken on another's behalf, "
                "e.g. /proc/PID/mem or process_vm_readv, are never sampled)"
            )
    if res.unattributed:
        notes.append(
            f"{res.unattributed} sampled faults lie in no mapping any source saw (the memory map at "
            "the window's start and end, the kernel's mmap records between): mapped and unmapped "
            "within one window, their record lost"
        )
    if proc is None:
        notes.append("the kernel's counters could not be read at the end (the process exited)")
    if snap is not None:
        name = snap.process.name
    else:
        from ..errors import VmaInspectError

        try:
            name = sampler.reader.read("comm").decode("utf-8", "replace").strip()
        except (VmaInspectError, OSError):  # gone or refused (ProcReader's errors): the name is unknown
            name = "?"
    mm = MinorMajor
    report = FaultsReport(
        pid=args.pid,
        name=name,
        mode=cast('Literal["perf", "counters"]', sampler.mode),
        reason=sampler.reason,
        period=args.period if perf else None,
        duration_s=round(elapsed, 6),
        samples=samples,
        minor=res.minor if perf else None,
        major=res.major if perf else None,
        lost=res.lost if perf else None,
        faults_per_s=round((res.minor + res.major) * scale / elapsed, 1) if elapsed > 0 else None,
        event_counts=mm(events[0], events[1]) if events else None,
        unattributed=res.unattributed if perf else None,
        unsampled=unsampled,
        following=cast('Literal["per-cpu", "per-thread"]', sampler.following) if perf else None,
        by_vma=tuple(
            VmaFaults(start=s, end=e, perms=p, kind=kind, path=path, minor=mi, major=ma)
            for s, e, p, mi, ma, kind, path in by_vma
        ),
        by_symbol=tuple(SymbolCount(s, demangle(s), d, c[0] + c[1], c[0], c[1]) for (s, d), c in by_sym),
        by_data_symbol=tuple(
            SymbolCount(s, demangle(s), d, c[0] + c[1], c[0], c[1])
            for (s, d), c in sorted(res.by_data.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))
        ),
        by_transition=tuple(
            TransitionCount(cast("TransitionState", b), cast("TransitionState", a), n)
            for (b, a), n in sorted(res.by_transition.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        if args.pages
        else None,
        by_thread=tuple(
            ThreadFaults(t, c[0], c[1])
            for t, c in sorted(res.by_thread.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))
        ),
        proc_counters=None if proc is None else mm(proc["minor"], proc["major"]),
        notes=tuple(notes),
        max_fault_rate=args.max_fault_rate if capped else None,
        max_period=res.max_period if capped else None,
    )
    doc: dict[str, Any] = msgspec.to_builtins(report)
    return doc


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _render(doc: dict[str, Any], top: int) -> str:
    from ..safetext import printable
    from ..units import human_bytes

    out = []
    head = f"page faults of {doc['pid']} ({doc['name']}) over {doc['duration_s']:.2f} s"
    proc = doc["proc_counters"]
    kern = (
        f"kernel counters (/proc/{doc['pid']}/stat) over the same window: "
        f"{_n(proc['minor'])} minor, {_n(proc['major'])} major"
        if proc
        else "kernel counters: unavailable (the process exited)"
    )
    if doc["mode"] == "counters":
        out.append(f"{head}: /proc counters (not sampled)")
        out.append(f"  {doc['reason']}")
        total = (proc["minor"] + proc["major"]) if proc else None
        out.append(
            f"  {kern}"
            + (
                f"; {total / doc['duration_s']:,.0f} faults/s"
                if total is not None and doc["duration_s"] > 0
                else ""
            )
        )
    else:
        s, lost = doc["samples"], doc["lost"]
        lost_pct = f" ({100.0 * lost / (s + lost):.2f}%)" if s + lost else ""
        cap, top_period = doc.get("max_fault_rate"), doc.get("max_period") or doc["period"]
        if cap:
            period = (
                f", at most {cap:,} samples/s (--max-fault-rate): one in "
                + (f"{doc['period']} to {top_period}" if top_period > doc["period"] else f"{top_period}")
                + " sampled"
            )
        else:
            period = "" if doc["period"] == 1 else f", one in {doc['period']} sampled"
        out.append(f"{head}: sampled with perf_event_open{period}")
        counts = f"{_n(doc['minor'])} minor, {_n(doc['major'])} major"
        if cap:  # the kernel's counts; the figures per mapping, function and thread are estimates
            counts = f"faults {counts} (exact); per mapping, function and thread ~estimates"
        out.append(
            f"  {_n(s)} {'sample' if s == 1 else 'samples'}: {counts}; "
            f"{doc['faults_per_s']:,.0f} faults/s; lost {_n(lost)}{lost_pct}"
        )
        if cap:  # shares of the estimated faults, not of the samples
            s = doc["minor"] + doc["major"]
        out.append(f"  {kern}")
        if doc.get("unsampled") is not None:
            out.append(
                f"  not sampled: {doc['unsampled']:,} (kernel counters minus the events' own counts; "
                f"threads followed {doc.get('following') or '?'})"
            )
        if doc["by_vma"]:
            out.append("")
            out.append(f"top mappings ({min(top, len(doc['by_vma']))} of {len(doc['by_vma'])}):")
            out.append(
                f"  {'FAULTS':>10} {'SHARE':>6} {'MINOR':>10} {'MAJOR':>8}  {'ADDRESS':<29} PERMS {'SIZE':>7}  PATH"
            )
            for r in doc["by_vma"][:top]:
                c = r["minor"] + r["major"]
                size = human_bytes(r["end"] - r["start"])
                out.append(
                    f"  {c:>10,} {_pct(c, s):>6} {r['minor']:>10,} {r['major']:>8,}  "
                    f"{r['start']:012x}-{r['end']:012x}  {r['perms']:<5} {size:>7}  {r['path'] or '[anon]'}"
                )
            if doc["unattributed"]:
                c = doc["unattributed"]
                out.append(f"  {c:>10,} {_pct(c, s):>6} {'':>10} {'':>8}  [unattributed: in no mapping seen]")
        if doc["by_symbol"]:
            out.append("")
            out.append(f"top functions ({min(top, len(doc['by_symbol']))} of {len(doc['by_symbol'])}):")
            out.append(f"  {'FAULTS':>10} {'SHARE':>6} {'MINOR':>10} {'MAJOR':>8}  SYMBOL  (DSO)")
            for r in doc["by_symbol"][:top]:
                out.append(
                    f"  {r['count']:>10,} {_pct(r['count'], s):>6} {r['minor']:>10,} {r['major']:>8,}  "
                    f"{r['demangled'] or r['symbol']}  "
                    f"({os.path.basename(r['dso']) if r['dso'].startswith('/') else r['dso']})"
                )
        if doc["by_data_symbol"]:
            out.append("")
            out.append("faulting data in ELF images (.data, .bss, .rodata):")
            out.append(f"  {'FAULTS':>10} {'MINOR':>10} {'MAJOR':>8}  OBJECT  (DSO)")
            for r in doc["by_data_symbol"][:top]:
                out.append(
                    f"  {r['count']:>10,} {r['minor']:>10,} {r['major']:>8,}  {r['demangled'] or r['symbol']}  "
                    f"({os.path.basename(r['dso'])})"
                )
        if doc["by_transition"]:
            out.append("")
            out.append("faulted pages by page state, from one second to the next (pages, not faults):")
            out.append(f"  {'PAGES':>10}  BEFORE -> AFTER")
            for r in doc["by_transition"][:top]:
                out.append(f"  {r['pages']:>10,}  {r['before']} -> {r['after']}")
    threads = doc["by_thread"]
    if len(threads) > 1 or doc["mode"] == "counters":
        out.append("")
        label = "per thread (/proc/PID/task/TID/stat deltas)" if doc["mode"] == "counters" else "per thread"
        out.append(f"{label}:")
        out.append(f"  {'TID':>8} {'MINOR':>10} {'MAJOR':>8}")
        for r in threads[:top]:
            out.append(f"  {r['tid']:>8} {r['minor']:>10,} {r['major']:>8,}")
    for note in doc["notes"]:
        out.append(f"note: {note}")
    # names, paths and symbols come from the target: escape control characters
    return "\n".join(printable(line) for line in out) + "\n"
