"""vmainspect record PID -o FILE: a time series of snapshots, for replay and diff elsewhere."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from ..faults.cap import DEFAULT_MAX_RATE
from .argtypes import add_lock_budget, add_max_fault_rate, lock_budget, output_arg, pid_arg, seconds_arg

if TYPE_CHECKING:
    from ..model import FaultTick
    from ..session import Step

HELP = "record a process's memory over time into a file (replay with open, compare with diff)"
DESCRIPTION = """Record snapshots of a process every --interval seconds (with --pages, its
per-page state too) and the page faults of each interval, into an append-only
JSON Lines file (vmainspect/recording@1). Each record is flushed as it is
written: killing the recorder loses at most the record being written.

The recording ends at --duration, on Ctrl+C (the file is complete; exit 0),
or when the process exits (the last record says so).

Reading the memory map holds the process's mmap lock: --lock-budget (default
1%) spaces the reads out on a process where they take long. A tick held back
records a frame with the previous map (an empty patch; the snapshot's
taken_at says when it was read) and the tick's own faults.

examples:
  vmainspect record 1234 -o run.jsonl --interval 0.5 --duration 60 --pages
  vmainspect open run.jsonl                 # replay with a timeline
  vmainspect diff run.jsonl#1 run.jsonl#-1  # first vs last frame"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pid", type=pid_arg, metavar="PID", help="process to record")
    p.add_argument(
        "-o", "--output", type=output_arg, required=True, metavar="FILE", help="recording file to write"
    )
    p.add_argument(
        "--interval",
        type=seconds_arg(0.001, 1e9),
        default=1.0,
        metavar="S",
        help="seconds between snapshots (default 1)",
    )
    p.add_argument(
        "--duration",
        type=seconds_arg(0.001, 1e9),
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl+C or the process exits)",
    )
    p.add_argument(
        "--pages", action="store_true", help="record per-page state too (page runs are delta-encoded)"
    )
    p.add_argument("--no-faults", action="store_true", help="do not sample page faults")
    add_lock_budget(p)
    add_max_fault_rate(p, DEFAULT_MAX_RATE)
    p.add_argument(
        "--wss",
        action="store_true",
        help="working set: reset the process's referenced bits after each frame, so each frame's "
        "smaps referenced is what it touched since the previous one (reclaim then sees its memory "
        "as idle: opt-in)",
    )
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")


class _Stop:
    """Signal handlers that ask the loop to stop between records (never mid-write)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        self.reason = signal.Signals(signum).name

    def __enter__(self) -> _Stop:
        for s in self.SIGNALS:
            self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)  # type: ignore[arg-type]

    def sleep_until(self, deadline: float) -> None:
        while self.reason is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


def _faults(step: Step) -> FaultTick | None:
    return step.faults.faults if step.faults is not None else None


def run(args: argparse.Namespace) -> int:
    from ..errors import VmaInspectError
    from ..recording.io import END_DURATION, END_ERROR, END_EXITED, END_INTERRUPTED, RecordingWriter
    from ..safetext import printable
    from ..session import LiveSession
    from ..units import human_bytes

    pid = args.pid
    if args.wss:
        from ..snapshot.wss import WARNING
        from ..snapshot.wss import reset as wss_reset

        print(f"vmainspect: {WARNING}", file=sys.stderr)
    t0 = time.monotonic()
    session = LiveSession(
        pid,
        pages=args.pages,
        faults=not args.no_faults,
        lock_budget=lock_budget(args.lock_budget),
        max_fault_rate=args.max_fault_rate or None,  # 0: every fault
    )
    # no such process / a zombie / no access: fail before creating FILE
    step = session.start()
    assert step.snapshot is not None
    snapshot = step.snapshot
    taken = 0.0  # when the snapshot's collect started (s since t0)
    try:
        writer = RecordingWriter.create(args.output, force=args.force)
    except BaseException:
        session.close()
        raise
    tty = sys.stderr.isatty()
    end, end_note, error = END_INTERRUPTED, "", None

    def progress(final: bool = False) -> None:
        if not tty:
            return
        t = time.monotonic() - t0
        limit = f" / {args.duration:g}s" if args.duration else ""
        held = f" ({session.held_steps} held back by the lock budget)" if session.held_steps else ""
        line = (
            f"recording pid {pid} ({printable(snapshot.process.name)}) to {printable(args.output)}: "
            f"{writer.frames} frames{held}, {human_bytes(writer.bytes)}, {t:.1f}s{limit}  (Ctrl+C stops)"
        )
        sys.stderr.write("\r\x1b[K" + ("" if final else line))  # the final summary replaces it
        sys.stderr.flush()

    try:
        with _Stop() as stop:
            sampling = session.sampler is not None
            writer.header(
                snapshot, interval_s=args.interval, pages=args.pages, faults=sampling, working_set=args.wss
            )
            if not args.no_faults and not sampling:
                writer.note(0.0, f"page faults not recorded: {session.faults_note}")
            for note in session.sampler.notes if session.sampler is not None else []:
                writer.note(0.0, note)
            if session.sampler is not None and session.sampler.reason:
                writer.note(0.0, f"page faults from /proc counters: {session.sampler.reason}")
            k = 0
            while True:
                # a tick held back by the lock budget (or one that could not read the map) records
                # the previous map again, an empty patch, with this tick's faults and process counters
                writer.frame(taken, snapshot, _faults(step), step.vitals)
                if args.wss and step.fresh:  # reset after a map read only: its referenced bits count
                    wss_reset(pid)
                progress()
                k += 1
                if args.duration is not None and k * args.interval > args.duration + 1e-9:
                    end, end_note = END_DURATION, f"duration of {args.duration:g}s reached"
                    break
                # next slot on the grid t0 + k*interval; skip slots a slow collect overran
                now = time.monotonic()
                while t0 + k * args.interval < now:
                    k += 1
                if args.duration is not None and k * args.interval > args.duration + 1e-9:
                    end, end_note = END_DURATION, f"duration of {args.duration:g}s reached"
                    break
                stop.sleep_until(t0 + k * args.interval)
                if stop.reason:
                    end, end_note = END_INTERRUPTED, f"stopped by {stop.reason}"
                    break
                taken = time.monotonic() - t0
                step = session.step()
                if step.ended is not None:  # the last frame written is the last complete one
                    end, end_note = END_EXITED, step.ended.message
                    break
                if not step.fresh:  # no new map (held back by the lock budget, access lost a moment)
                    continue
                assert step.snapshot is not None
                snapshot = step.snapshot
                if stop.reason:  # signalled during the collect: keep what we have, then stop
                    end, end_note = END_INTERRUPTED, f"stopped by {stop.reason}"
                    writer.frame(taken, snapshot, _faults(step), step.vitals)
                    break
    except VmaInspectError as e:
        end, end_note, error = END_ERROR, str(e), e
    finally:
        session.close()
        try:
            if not writer.closed:
                if session.held_steps:
                    writer.note(time.monotonic() - t0, _held_note(session.held_steps, writer.frames, args))
                writer.note(time.monotonic() - t0, end_note or "recording stopped", end=end)
        except VmaInspectError:
            pass
        # replacing a file (--force): only a recording that did not fail takes its place
        writer.close(complete=error is None)
        progress(final=True)
    if error is not None:
        raise error
    if not tty:
        return 0
    size = human_bytes(os.path.getsize(args.output)) if os.path.isfile(args.output) else "?"
    held = f"; {_held_note(session.held_steps, writer.frames, args)}" if session.held_steps else ""
    print(
        f"vmainspect: {end_note}; {writer.frames} frames in {printable(args.output)} ({size}){held}",
        file=sys.stderr,
    )
    return 0


def _held_note(held: int, frames: int, args: argparse.Namespace) -> str:
    pct = f"{args.lock_budget:g}%"
    return (
        f"{held} of {frames} frames kept the previous map: reading it holds the process's mmap lock, "
        f"and the lock budget ({pct}, --lock-budget) held those reads back"
    )
