"""Writing recordings (``vmainspect/recording@1``): one flushed line per record.

The lines are the Structs of ``model.recording``; ``recording.io`` is the
public face (it re-exports what is here) and holds the reader.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import IO, Any

import msgspec

from .. import __version__, fileio
from ..errors import BadInput, OutputError
from ..model import FaultSample, FaultTick, ProcessVitals, Snapshot
from ..model.recording import (
    FaultTickRecord,
    Header,
    Note,
    PatchFrame,
    SnapshotFrame,
)
from ..safetext import json_visible, printable
from ..units import now_iso
from .patch import EMPTY_PATCH, make_patch

FSYNC_EVERY_S = 2.0  # flush every line; fsync at most this often (and at the end)


# --- fault ticks --------------------------------------------------------------


def fault_tick_record(ft: FaultTick) -> FaultTickRecord:
    """A FaultTick as recorded (``model.recording.FaultTickRecord``)."""
    return FaultTickRecord(
        mode=ft.mode,  # type: ignore[arg-type]
        window_s=ft.window_s,
        minor=ft.minor,
        major=ft.major,
        lost=ft.lost,
        by_vma=tuple((start, mn, mj) for start, (mn, mj) in ft.by_vma.items()),
        by_symbol=ft.by_symbol,
        recent=tuple((s.time_ns, s.pid, s.tid, s.ip, s.addr, s.major, s.symbol, s.dso) for s in ft.recent),
        reason=ft.reason,
        by_thread=tuple((tid, mn, mj) for tid, (mn, mj) in ft.by_thread.items()),
        pages=ft.pages,
        by_transition=ft.by_transition,  # type: ignore[arg-type]
        period=ft.period,
    )


def fault_tick_from_record(r: FaultTickRecord) -> FaultTick:
    return FaultTick(
        r.mode,
        r.window_s,
        r.minor,
        r.major,
        r.lost,
        {start: (mn, mj) for start, mn, mj in r.by_vma},
        r.by_symbol,
        tuple(FaultSample(*x) for x in r.recent),
        r.reason,
        {tid: (mn, mj) for tid, mn, mj in r.by_thread},
        r.pages,
        r.by_transition,
        period=r.period,
    )


def fault_tick_to_dict(ft: FaultTick) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(fault_tick_record(ft))
    out.setdefault("by_transition", [])
    return out


def fault_tick_from_dict(d: Any) -> FaultTick:
    """Rebuild a FaultTick; BadInput (naming the JSON path) on a malformed one."""
    try:
        return fault_tick_from_record(msgspec.convert(d, FaultTickRecord))
    except (msgspec.ValidationError, RecursionError) as e:
        raise BadInput(f"malformed fault record: {printable(str(e))}") from None  # msgspec quotes the value


# --- writing -------------------------------------------------------------------


_ENCODER = msgspec.json.Encoder()


def _encode(obj: Any) -> bytes:
    try:
        out = _ENCODER.encode(obj)
    except UnicodeEncodeError:  # lone surrogates from os functions: see snapshot.io
        from ..snapshot.io import _text_only

        out = _ENCODER.encode(_text_only(msgspec.to_builtins(obj)))
    return bytes(json_visible(out))  # C1 controls and bidi marks as \uXXXX, as snapshot.io


class RecordingWriter:
    """Appends records to a recording file, one flushed line each. A new file is created
    under its own name (a killed recorder leaves what it wrote); replacing one (``force``)
    writes a temporary file that takes the old one's place at ``close()`` only."""

    def __init__(self, f: IO[bytes], *, fsync: bool = True, atomic: fileio.AtomicFile | None = None) -> None:
        self._f = f
        self._fsync = fsync
        self._atomic = atomic
        self._last_sync = time.monotonic()
        self._prev: dict[str, Any] | None = None  # the last frame's snapshot document
        self._prev_snapshot: Snapshot | None = None  # ... and the Snapshot it came from
        self.frames = 0
        self.bytes = 0
        self.closed = False

    @classmethod
    def create(cls, path: str, *, force: bool = False) -> RecordingWriter:
        """Open ``path`` for a new recording; refuses to replace a file unless ``force``."""
        new = fileio.create_new(path)
        if new is not None:
            return cls(new)
        # the name exists: a special file (FIFO, /dev/null) is written, a regular one replaced
        out = fileio.AtomicFile(path)
        if not out.special and not force:
            out.discard()
            raise OutputError(f"{path} exists; pass --force to replace it")
        return cls(out.file, fsync=not out.special, atomic=out)

    def _line(self, obj: Any) -> None:
        data = _encode(obj) + b"\n"
        try:
            self._f.write(data)
            self._f.flush()
            now = time.monotonic()
            if self._fsync and now - self._last_sync >= FSYNC_EVERY_S:
                os.fsync(self._f.fileno())
                self._last_sync = now
        except OSError as e:
            raise OutputError(f"cannot write the recording: {e.strerror}") from None
        self.bytes += len(data)

    def header(
        self,
        s: Snapshot,
        *,
        interval_s: float,
        pages: bool,
        faults: bool,
        started_at: str | None = None,
        working_set: bool = False,
    ) -> None:
        """Line 1: what is recorded (from the first snapshot) and how."""
        p = s.process
        self._line(
            Header(
                started_at=started_at or now_iso(),
                interval_s=interval_s,
                pid=p.pid,
                name=p.name,
                cmdline=p.cmdline,
                create_time=p.create_time,
                host=s.host,
                pages=pages,
                faults=faults,
                vmainspect=__version__,
                working_set=working_set,
            )
        )

    def frame(
        self,
        t: float,
        snapshot: Snapshot,
        faults: FaultTick | None = None,
        vitals: ProcessVitals | None = None,
    ) -> None:
        """One frame: ``snapshot`` (a patch against the last frame's; the same map kept is an
        empty patch), the faults of the tick, and the process-level counters read at it."""
        from ..snapshot.io import to_dict

        ft = None if faults is None else fault_tick_record(faults)
        t = round(t, 3)
        if self._prev is None:
            self._line(SnapshotFrame(t, snapshot, ft, vitals))
            d = to_dict(snapshot)
        elif snapshot is self._prev_snapshot:  # the map kept (a held tick): nothing to compare
            self._line(PatchFrame(t, EMPTY_PATCH, ft, vitals))
            d = self._prev
        else:
            d = to_dict(snapshot)
            self._line(PatchFrame(t, make_patch(self._prev, d) or EMPTY_PATCH, ft, vitals))
        self._prev, self._prev_snapshot = d, snapshot
        self.frames += 1

    def note(self, t: float, text: str, *, end: str | None = None) -> None:
        self._line(Note(round(t, 3), text, end))  # type: ignore[arg-type]

    def close(self, *, complete: bool = True) -> None:
        """Close the file. Replacing a file: the new one takes its place if ``complete``,
        else it is removed and the old file stays (raises OutputError if the rename fails)."""
        if self.closed:
            return
        self.closed = True
        if self._atomic is not None:  # commit: fsync, final mode, rename
            return self._atomic.commit() if complete else self._atomic.discard()
        with contextlib.suppress(OSError):
            self._f.flush()
            if self._fsync:
                os.fsync(self._f.fileno())
        with contextlib.suppress(OSError):
            self._f.close()
