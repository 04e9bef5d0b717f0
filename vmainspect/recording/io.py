"""Recordings: a time series of snapshots in one append-only file (stdlib only).

Format ``vmainspect/recording@1``: JSON Lines, one JSON object per line, each
line flushed as soon as it is written, so a recorder that is killed loses at
most the line it was writing. Plain text, not gzip: a half-written gzip
stream is much harder to salvage than a half-written last line.

Line 1, the header::

    {"schema": "vmainspect/recording@1", "started_at": "2026-...Z",
     "interval_s": 0.5, "pid": 1234, "name": "python3", "cmdline": [...],
     "host": {"kernel": ..., "page_size": 4096, "hostname": ...},
     "pages": true, "faults": true, "vmainspect": "0.1.0"}

Then one line per record:

- a frame: ``{"t": 0.0, "snapshot": {...}, "faults": {...} | null}`` for the
  first frame (a whole ``vmainspect/snapshot@1`` document), and
  ``{"t": 0.5, "patch": {...}, "faults": ...}`` for each later one: the
  snapshot as a patch against the previous frame's snapshot document. ``t``
  is seconds since the recording started (monotonic clock). A frame may also
  have ``"vitals"``: the process's state, threads, fault counts, RSS and swap
  read at that tick without the mmap lock (``model.ProcessVitals``), which
  move on while a frame keeps the previous map.
- a note: ``{"t": 12.0, "note": "text"}``; the last note of a finished
  recording also has ``"end": "exited" | "interrupted" | "duration" | "error"``.

Patch nodes (``{"=": v}``, ``{"{": {...}, "-": [...]}``, ``{"[": [op, ...]}``)
are described in ``record_patch``: lists of VMAs are aligned by their
``start`` address and lists of page runs by value, so an unchanged VMA costs a
few bytes and a VMA whose pages changed carries only the runs that changed.

Each line is one of the Structs in ``model.recording`` (the format's one
definition; the shipped schema is generated from them).

The reader loads a truncated file up to its last complete record and says
where it stopped. It never needs /proc and never imports the collector. It
keeps an index (each frame's file offset, time and totals) and one frame's
snapshot document at a time, plus the last frame's and at most
``MAX_CHECKPOINTS`` evenly spaced ones to seek from (every 32nd frame, then every 64th, ... as the file
grows), and rebuilds other frames on demand by applying the patches from the
nearest of those: memory grows with a frame (times a constant) plus the
index, not with frames x VMAs.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from typing import IO, Any

import msgspec

from ..errors import BadInput
from ..model import FaultTick, Frame, ProcessVitals, Snapshot
from ..model.recording import (
    RECORDING_SCHEMA,
    Header,
    Line,
)
from ..safetext import printable
from .patch import EMPTY_PATCH, PatchError, apply_patch
from .writer import (  # noqa: F401 (the public face of recordings)
    FSYNC_EVERY_S,
    RecordingWriter,
    fault_tick_from_dict,
    fault_tick_from_record,
    fault_tick_record,
    fault_tick_to_dict,
)

SCHEMA = RECORDING_SCHEMA
_NAME, _, _MAJOR = SCHEMA.partition("@")

END_EXITED = "exited"
END_INTERRUPTED = "interrupted"
END_DURATION = "duration"
END_ERROR = "error"

CHECKPOINT_EVERY = 32  # the reader keeps every 32nd frame's document to seek from ...
MAX_CHECKPOINTS = 4  # ... and at most this many (then every 64th, 128th, ...)
CACHED_SNAPSHOTS = 4  # rebuilt Snapshots kept (the TUI prefetches the next frames)


# --- reading -------------------------------------------------------------------

_LINE = msgspec.json.Decoder(Line)


class Recording:
    """A recording read back: an index of its frames; each frame is rebuilt
    (as a Snapshot) on demand. Safe to use from several threads."""

    def __init__(self, path: str, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.times: list[float] = []  # seconds since the start, per frame
        self.notes: list[tuple[float, str]] = []  # (t, text), in order
        self.end: str | None = None  # END_* of the last note, None if it never ended
        self.truncated_at_line: int | None = None  # first line not loaded (1-based), None if all loaded
        self.truncation: str | None = None  # why loading stopped there
        self._offsets: list[int] = []  # file offset of each frame's line
        self._lines: list[int] = []  # its line number
        self._totals: list[Any] = []  # its snapshot's "totals" object
        self._vitals: list[Any] = []  # its "vitals" object (the counters of its tick), None if absent
        self._checkpoints: dict[int, dict[str, Any]] = {}  # frame -> snapshot document
        self._cursor: tuple[int, dict[str, Any]] | None = None  # the last document rebuilt
        self._cache: OrderedDict[int, Snapshot] = OrderedDict()
        self._read_at: dict[int, int] = {}  # frame -> the frame whose map it shows (``map_of``)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.times)

    @property
    def pid(self) -> int:
        pid = self.header.get("pid", 0)
        return pid if type(pid) is int else 0

    @property
    def duration(self) -> float:
        return self.times[-1] if self.times else 0.0

    def warning(self) -> str | None:
        """One line about an incomplete file, or None."""
        if self.truncated_at_line is None:
            return None
        return (
            f"{self.path}: stopped at line {self.truncated_at_line} ({self.truncation}); "
            f"loaded {len(self)} frames up to t={self.duration:.1f}s"
        )

    def _read(self, f: IO[bytes], i: int) -> Line:
        f.seek(self._offsets[i])
        try:
            return _LINE.decode(f.readline())
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            raise BadInput(f"{self.path}: line {self._lines[i]}: changed since it was read") from None

    def _doc(self, i: int) -> dict[str, Any]:
        """Frame ``i``'s snapshot document, from the nearest checkpoint or the
        last frame rebuilt (the caller holds the lock)."""
        start = max(k for k in self._checkpoints if k <= i)  # frame 0 is always one
        doc = self._checkpoints[start]
        if self._cursor is not None and start <= self._cursor[0] <= i:
            start, doc = self._cursor
        if start < i:
            try:
                with open(self.path, "rb") as f:
                    for j in range(start + 1, i + 1):
                        doc = apply_patch(doc, self._read(f, j).patch)
            except OSError as e:
                raise BadInput(f"cannot read {self.path}: {e.strerror or e}") from None
            except (PatchError, RecursionError) as e:
                raise BadInput(f"{self.path}: changed since it was read ({e})") from None
            self._cursor = (i, doc)
        return doc

    def snapshot(self, i: int) -> Snapshot:
        """Frame ``i`` (0-based; negative counts from the end) as a Snapshot."""
        n = len(self.times)
        if not -n <= i < n:
            raise BadInput(f"{self.path}: no frame {i} (the recording has {n})")
        i %= n
        with self._lock:
            s = self._cache.get(i)
            if s is not None:
                self._cache.move_to_end(i)
                return s
            doc = self._doc(i)
        from ..snapshot.io import from_dict

        try:
            s = from_dict(doc)  # outside the lock: a prefetching thread may do the same
        except BadInput as e:
            raise BadInput(f"{self.path}: line {self._lines[i]}: {e}") from None
        with self._lock:
            self._cache[i] = s
            while len(self._cache) > CACHED_SNAPSHOTS:
                self._cache.popitem(last=False)
        return s

    def cached(self, i: int) -> bool:
        return i % max(1, len(self.times)) in self._cache

    def faults(self, i: int) -> FaultTick | None:
        i %= len(self.times)
        try:
            with open(self.path, "rb") as f:
                d = self._read(f, i).faults
        except OSError as e:
            raise BadInput(f"cannot read {self.path}: {e.strerror or e}") from None
        if d is None:
            return None
        try:
            return fault_tick_from_dict(d)
        except BadInput as e:
            raise BadInput(f"{self.path}: line {self._lines[i]}: {e}") from None

    def vitals(self, i: int) -> ProcessVitals | None:
        """The process-level counters recorded with frame ``i`` (None: not recorded), from
        the index read at load (``series`` uses it too): no second read of the line."""
        i %= len(self.times)
        d = self._vitals[i]
        if d is None:
            return None
        try:
            return msgspec.convert(d, ProcessVitals)
        except (msgspec.ValidationError, RecursionError) as e:
            raise BadInput(
                f"{self.path}: line {self._lines[i]}: malformed vitals: {printable(str(e))}"
            ) from None

    def map_of(self, i: int) -> int:
        """The frame whose map frame ``i`` shows: an earlier one when ``i`` and the frames
        between have empty patches (the recorder kept the previous map: its lock budget held
        the read back, or the map could not be read a moment; a map read again always
        differs, in its taken_at at least)."""
        i %= len(self.times)
        j = i
        try:
            with open(self.path, "rb") as f:
                while j > 0 and j not in self._read_at and self._read(f, j).patch == EMPTY_PATCH:
                    j -= 1
        except OSError as e:
            raise BadInput(f"cannot read {self.path}: {e.strerror or e}") from None
        j = self._read_at.get(j, j)
        self._read_at[i] = j
        return j

    def frame(self, i: int) -> Frame:
        """Frame ``i`` as the TUI gets it; the last frame of a process that exited is ``gone``;
        one that repeats an earlier map says how old it is (``Frame.held``)."""
        n = len(self.times)
        i %= n
        gone = i == n - 1 and self.end == END_EXITED
        msg = self.notes[-1][1] if gone and self.notes else None
        wss = self.times[i] - self.times[i - 1] if i and self.header.get("working_set") else None
        held = None
        if (j := self.map_of(i)) < i:
            held = (
                f"map {self.times[i] - self.times[j]:.1f} s old: recorded at t {self.times[j]:.1f} s, "
                "kept by the recorder (lock budget, or map unreadable)"
            )
        snap, faults, vitals = self.snapshot(i), self.faults(i), self.vitals(i)
        return Frame(snap, faults, gone=gone, message=msg, wss_interval=wss, held=held, vitals=vitals)

    def series(self, key: str = "rss") -> list[int | None]:
        """``totals[key]`` of every frame (None where missing), without rebuilding Snapshots;
        for "rss" and "swap" the frame's ``vitals`` when it has them (read at its tick, also
        when the frame kept an earlier map: what the header shows)."""
        out: list[int | None] = []
        for tot, vit in zip(self._totals, self._vitals, strict=True):
            v = vit.get(key) if key in ("rss", "swap") and type(vit) is dict else None
            if type(v) is not int:
                v = tot.get(key) if type(tot) is dict else None
            out.append(v if type(v) is int else None)
        return out

    def index_at(self, t: float) -> int:
        """The last frame taken at or before ``t`` seconds (the first frame if ``t`` is earlier)."""
        return max(0, bisect_right(self.times, t + 1e-9) - 1)


def _check_header(h: Any, path: str) -> dict[str, Any]:
    if type(h) is not dict:
        raise BadInput(f"{path}: not a vmainspect recording (line 1 is not a JSON object)")
    name = h.get("schema")
    if name == SCHEMA:
        try:
            msgspec.convert(h, Header)
        except (msgspec.ValidationError, RecursionError) as e:
            raise BadInput(f"{path}: malformed recording header: {printable(str(e))}") from None
        return h
    if type(name) is str:
        base = name.partition("@")[0]
        if base == _NAME:
            raise BadInput(f"{path}: this recording is {name}; this vmainspect reads @{_MAJOR}")
        if base == "vmainspect/snapshot":
            raise BadInput(f"{path}: is a snapshot, not a recording")
        raise BadInput(f"{path}: not a vmainspect recording (schema {name[:60]!r})")
    raise BadInput(f"{path}: not a vmainspect recording (no schema in line 1)")


def read_recording(path: str) -> Recording:
    """Read a recording; BadInput (one line) if it is not one or cannot be read.

    A file that ends early (a recorder killed mid-write) or has a damaged
    record loads up to the last good record: ``truncated_at_line`` names the
    first line not loaded and ``truncation`` says why.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        first = f.readline()
        if not first.strip():
            raise BadInput(f"{path}: not a vmainspect recording (the file is empty)")
        try:
            header = msgspec.json.decode(first)
        except (msgspec.DecodeError, RecursionError):
            if first.strip() == b"{" or b'"vmainspect/snapshot@' in first:
                raise BadInput(f"{path}: is a snapshot, not a recording") from None
            raise BadInput(f"{path}: not a vmainspect recording (line 1 is not JSON)") from None
        rec = Recording(path, _check_header(header, path))
        prev: dict[str, Any] | None = None
        lineno = 1
        offset = len(first)
        every = CHECKPOINT_EVERY
        for raw in f:
            lineno += 1
            at, offset = offset, offset + len(raw)
            problem = None
            try:
                r = _LINE.decode(raw)
            except msgspec.ValidationError:
                problem = "not a record"
            except (msgspec.DecodeError, RecursionError):
                problem = "not JSON" if raw.endswith(b"\n") else "incomplete last record"
            if problem is None:
                try:
                    if r.snapshot is not None:
                        doc = r.snapshot
                        if type(doc) is not dict:
                            raise PatchError("snapshot is not an object")
                    elif r.patch is not None:
                        if prev is None:
                            raise PatchError("a patch before the first snapshot")
                        doc = apply_patch(prev, r.patch)
                        if type(doc) is not dict:
                            raise PatchError("patch result is not an object")
                    elif r.note is not None:
                        rec.notes.append((r.t, str(r.note)))
                        if r.end is not None:
                            rec.end = str(r.end)
                        continue
                    else:
                        raise PatchError("unknown record")
                except (PatchError, RecursionError) as e:
                    problem = f"bad record: {e}"
            if problem is not None:
                if not rec.times:
                    raise BadInput(f"{path}: line {lineno}: {problem}")
                rec.truncated_at_line = lineno
                rec.truncation = problem
                break
            k = len(rec.times)
            if k % every == 0:
                rec._checkpoints[k] = doc
                if len(rec._checkpoints) > MAX_CHECKPOINTS:  # keep them evenly spaced, and few
                    every *= 2
                    rec._checkpoints = {j: d for j, d in rec._checkpoints.items() if j % every == 0}
            prev = doc
            rec._offsets.append(at)
            rec._lines.append(lineno)
            rec._totals.append(doc.get("totals"))
            rec._vitals.append(r.vitals)
            rec.times.append(r.t)
    if not rec.times or prev is None:
        raise BadInput(f"{path}: the recording has no frames")
    if rec.times != sorted(rec.times):
        raise BadInput(f"{path}: frame times are not in order")
    rec._checkpoints[len(rec.times) - 1] = prev  # the last frame too: `diff REC#1 REC#-1` wants it
    # The first frame must be a valid snapshot: catch a wrong file early.
    rec.snapshot(0)
    return rec


def sniff(path: str) -> str:
    """ "recording", "snapshot" or "unknown", from the file's first line; BadInput if unreadable."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 16)
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    if b'"vmainspect/recording@' in first:
        return "recording"
    if b'"vmainspect/snapshot@' in first or first.strip() in (b"{", b""):
        return "snapshot"
    return "unknown"


# --- naming a moment of a recording: FILE@T (seconds) or FILE#N (frame) ------


def split_moment(spec: str) -> tuple[str, str | None]:
    """Split "rec.jsonl@12.5" / "rec.jsonl#3" into (path, "@12.5" / "#3").

    A path that exists as given is never split (names may contain @ or #).
    """
    if os.path.exists(spec):
        return spec, None
    cut = max(spec.rfind("@"), spec.rfind("#"))
    if cut <= 0:
        return spec, None
    return spec[:cut], spec[cut:]


def moment_index(rec: Recording, moment: str) -> int:
    """Frame index (0-based) for "@T" (the last frame at or before T seconds) or "#N" (1-based, -1 = last)."""
    kind, text = moment[0], moment[1:]
    n = len(rec)
    if kind == "#":
        try:
            k = int(text)
        except ValueError:
            raise BadInput(f"{rec.path}{moment}: a frame is #N (1 = first, -1 = last)") from None
        if k == 0 or not -n <= k <= n:
            raise BadInput(f"{rec.path}{moment}: no such frame (the recording has {n}: #1..#{n})")
        return k - 1 if k > 0 else n + k
    t = text[:-1] if text.endswith("s") else text
    try:
        secs = float(t)
    except ValueError:
        raise BadInput(f"{rec.path}{moment}: a time is @SECONDS, e.g. @12.5") from None
    if not secs >= 0 or secs == float("inf"):
        raise BadInput(f"{rec.path}{moment}: a time is @SECONDS, e.g. @12.5")
    if secs > rec.duration + max(1.0, float(rec.header.get("interval_s", 1))):
        raise BadInput(f"{rec.path}{moment}: the recording ends at {rec.duration:.1f}s")
    return rec.index_at(secs)
