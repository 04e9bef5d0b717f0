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
  is seconds since the recording started (monotonic clock).
- a note: ``{"t": 12.0, "note": "text"}``; the last note of a finished
  recording also has ``"end": "exited" | "interrupted" | "duration" | "error"``.

Patch nodes (``{"=": v}``, ``{"{": {...}, "-": [...]}``, ``{"[": [op, ...]}``)
are described in ``record_patch``: lists of VMAs are aligned by their
``start`` address and lists of page runs by value, so an unchanged VMA costs a
few bytes and a VMA whose pages changed carries only the runs that changed.

The reader loads a truncated file up to its last complete record and says
where it stopped. It never needs /proc and never imports the collector.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from .. import __version__
from ..errors import BadInput, OutputError
from ..model import FaultSample, FaultTick, Frame, Snapshot
from .patch import PatchError, apply_patch, make_patch

SCHEMA = "vmainspect/recording@1"
_NAME, _, _MAJOR = SCHEMA.partition("@")

END_EXITED = "exited"
END_INTERRUPTED = "interrupted"
END_DURATION = "duration"
END_ERROR = "error"

FSYNC_EVERY_S = 2.0  # flush every line; fsync at most this often (and at the end)


# --- fault ticks --------------------------------------------------------------


def fault_tick_to_dict(ft: FaultTick) -> dict[str, Any]:
    return {
        "mode": ft.mode,
        "window_s": ft.window_s,
        "minor": ft.minor,
        "major": ft.major,
        "lost": ft.lost,
        "by_vma": [[start, mn, mj] for start, (mn, mj) in ft.by_vma.items()],
        "by_symbol": [list(x) for x in ft.by_symbol],
        "recent": [[s.time_ns, s.pid, s.tid, s.ip, s.addr, s.major, s.symbol, s.dso] for s in ft.recent],
        "reason": ft.reason,
        "by_thread": [[tid, mn, mj] for tid, (mn, mj) in ft.by_thread.items()],
        "pages": list(ft.pages),
        "by_transition": [list(x) for x in ft.by_transition],
    }


def fault_tick_from_dict(d: Any) -> FaultTick:
    """Rebuild a FaultTick; BadInput on a malformed one."""
    try:
        if type(d) is not dict or d["mode"] not in ("perf", "counters"):
            raise ValueError
        ints = (d["minor"], d["major"])
        if any(type(x) is not int for x in ints) or (d["lost"] is not None and type(d["lost"]) is not int):
            raise ValueError
        by_vma = {int(s): (int(mn), int(mj)) for s, mn, mj in d.get("by_vma", ())}
        by_symbol = tuple((str(s), str(dso), int(n)) for s, dso, n in d.get("by_symbol", ()))
        recent = tuple(
            FaultSample(
                int(t),
                int(p),
                int(tid),
                int(ip),
                int(addr),
                bool(mj),
                None if sym is None else str(sym),
                None if dso is None else str(dso),
            )
            for t, p, tid, ip, addr, mj, sym, dso in d.get("recent", ())
        )
        reason = d.get("reason")
        by_thread = {int(t): (int(mn), int(mj)) for t, mn, mj in d.get("by_thread", ())}
        pages = tuple(int(a) for a in d.get("pages", ()))
        by_transition = tuple((str(b), str(a), int(n)) for b, a, n in d.get("by_transition", ()))
        return FaultTick(
            d["mode"],
            float(d["window_s"]),
            d["minor"],
            d["major"],
            d["lost"],
            by_vma,
            by_symbol,
            recent,
            None if reason is None else str(reason),
            by_thread,
            pages,
            by_transition,
        )
    except (KeyError, TypeError, ValueError):
        raise BadInput("malformed fault record") from None


# --- writing -------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RecordingWriter:
    """Appends records to a recording file, one flushed line each."""

    def __init__(self, f: IO[str], *, fsync: bool = True) -> None:
        self._f = f
        self._fsync = fsync
        self._last_sync = time.monotonic()
        self._prev: dict | None = None
        self._enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
        self.frames = 0
        self.bytes = 0
        self.closed = False

    @classmethod
    def create(cls, path: str, *, force: bool = False) -> RecordingWriter:
        """Open ``path`` for a new recording; refuses to replace a file unless ``force``."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {path}: is a directory")
        regular = st is None or stat.S_ISREG(st.st_mode)
        if st is not None and regular and not force:
            raise OutputError(f"{path} exists; pass --force to replace it")
        try:
            f = open(path, "w", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        return cls(f, fsync=regular)

    def _line(self, obj: dict | str) -> None:
        text = (obj if isinstance(obj, str) else self._enc.encode(obj)) + "\n"
        try:
            self._f.write(text)
            self._f.flush()
            now = time.monotonic()
            if self._fsync and now - self._last_sync >= FSYNC_EVERY_S:
                os.fsync(self._f.fileno())
                self._last_sync = now
        except OSError as e:
            raise OutputError(f"cannot write the recording: {e.strerror}") from None
        self.bytes += len(text.encode("utf-8"))

    def header(
        self, s: Snapshot, *, interval_s: float, pages: bool, faults: bool, started_at: str | None = None
    ) -> None:
        """Line 1: what is recorded (from the first snapshot) and how."""
        self._line(
            {
                "schema": SCHEMA,
                "started_at": started_at or _now_iso(),
                "interval_s": interval_s,
                "pid": s.process.pid,
                "name": s.process.name,
                "cmdline": list(s.process.cmdline),
                "create_time": s.process.create_time,
                "host": {"kernel": s.host.kernel, "page_size": s.host.page_size, "hostname": s.host.hostname},
                "pages": pages,
                "faults": faults,
                "vmainspect": __version__,
            }
        )

    def frame(self, t: float, snapshot: Snapshot, faults: FaultTick | None = None) -> None:
        from ..snapshot.io import dumps, to_dict

        d = to_dict(snapshot)
        ft = None if faults is None else fault_tick_to_dict(faults)
        if self._prev is None:
            # snapshot_io's own serializer is much faster than encoding the dict (20k+ VMAs)
            self._line(
                f'{{"t":{round(t, 3)!r},"snapshot":{dumps(snapshot)},"faults":{self._enc.encode(ft)}}}'
            )
        else:
            self._line({"t": round(t, 3), "patch": make_patch(self._prev, d) or {"{": {}}, "faults": ft})
        self._prev = d
        self.frames += 1

    def note(self, t: float, text: str, *, end: str | None = None) -> None:
        rec: dict[str, Any] = {"t": round(t, 3), "note": text}
        if end is not None:
            rec["end"] = end
        self._line(rec)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._f.flush()
            if self._fsync:
                os.fsync(self._f.fileno())
        except OSError:
            pass
        finally:
            self._f.close()


# --- reading -------------------------------------------------------------------


@dataclass
class Recording:
    """A recording read back. Frames are rebuilt as Snapshots on demand."""

    path: str
    header: dict
    times: list[float]  # seconds since the start, per frame
    notes: list[tuple[float, str]]  # (t, text), in order
    end: str | None = None  # END_* of the last note, None if it never ended
    truncated_at_line: int | None = None  # first line not loaded (1-based), None if all loaded
    truncation: str | None = None  # why loading stopped there
    _docs: list[dict] = field(default_factory=list, repr=False)
    _faults: list[Any] = field(default_factory=list, repr=False)
    _lines: list[int] = field(default_factory=list, repr=False)
    _cache: OrderedDict[int, Snapshot] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def pid(self) -> int:
        return self.header.get("pid", 0)

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
        from ..snapshot.io import from_dict

        try:
            s = from_dict(self._docs[i])  # outside the lock: a prefetching thread may do the same
        except BadInput as e:
            raise BadInput(f"{self.path}: line {self._lines[i]}: {e}") from None
        with self._lock:
            self._cache[i] = s
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return s

    def cached(self, i: int) -> bool:
        return i % max(1, len(self.times)) in self._cache

    def faults(self, i: int) -> FaultTick | None:
        d = self._faults[i]
        if d is None:
            return None
        try:
            return fault_tick_from_dict(d)
        except BadInput as e:
            raise BadInput(f"{self.path}: line {self._lines[i % len(self._lines)]}: {e}") from None

    def frame(self, i: int) -> Frame:
        """Frame ``i`` as the TUI gets it; the last frame of a process that exited is ``gone``."""
        n = len(self.times)
        i %= n
        gone = i == n - 1 and self.end == END_EXITED
        msg = self.notes[-1][1] if gone and self.notes else None
        return Frame(self.snapshot(i), self.faults(i), gone=gone, message=msg)

    def series(self, key: str = "rss") -> list[int | None]:
        """``totals[key]`` of every frame (None where missing), without rebuilding Snapshots."""
        out: list[int | None] = []
        for d in self._docs:
            tot = d.get("totals")
            v = tot.get(key) if type(tot) is dict else None
            out.append(v if type(v) is int else None)
        return out

    def index_at(self, t: float) -> int:
        """The last frame taken at or before ``t`` seconds (the first frame if ``t`` is earlier)."""
        return max(0, bisect_right(self.times, t + 1e-9) - 1)


def _check_header(h: Any, path: str) -> dict:
    if type(h) is not dict:
        raise BadInput(f"{path}: not a vmainspect recording (line 1 is not a JSON object)")
    name = h.get("schema")
    if name == SCHEMA:
        iv = h.get("interval_s")
        if type(iv) not in (int, float) or not 0 < iv < 1e9 or type(h.get("pid")) is not int:
            raise BadInput(f"{path}: malformed recording header (interval_s, pid)")
        return h
    if type(name) is str:
        base = name.partition("@")[0]
        if base == _NAME:
            raise BadInput(f"{path}: this recording is {name}; this vmainspect reads @{_MAJOR}")
        if base == "vmainspect/snapshot":
            raise BadInput(f"{path}: is a snapshot, not a recording")
        raise BadInput(f"{path}: not a vmainspect recording (schema {name[:60]!r})")
    raise BadInput(f"{path}: not a vmainspect recording (no schema in line 1)")


def _parse_line(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_recording(path: str) -> Recording:
    """Read a recording; BadInput (one line) if it is not one or cannot be read.

    A file that ends early (a recorder killed mid-write) or has a damaged
    record loads up to the last good record: ``truncated_at_line`` names the
    first line not loaded and ``truncation`` says why.
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        first = f.readline()
        if not first.strip():
            raise BadInput(f"{path}: not a vmainspect recording (the file is empty)")
        try:
            header = _parse_line(first)
        except (ValueError, UnicodeDecodeError, RecursionError):
            if first.strip() == b"{" or b'"vmainspect/snapshot@' in first:
                raise BadInput(f"{path}: is a snapshot, not a recording") from None
            raise BadInput(f"{path}: not a vmainspect recording (line 1 is not JSON)") from None
        rec = Recording(path, _check_header(header, path), [], [])
        prev: dict | None = None
        lineno = 1
        for raw in f:
            lineno += 1
            problem = None
            try:
                r = _parse_line(raw)
                if type(r) is not dict or type(r.get("t")) not in (int, float):
                    problem = "not a record"
            except (ValueError, UnicodeDecodeError, RecursionError):
                problem = "not JSON" if raw.endswith(b"\n") else "incomplete last record"
            if problem is None:
                try:
                    if "snapshot" in r:
                        doc = r["snapshot"]
                        if type(doc) is not dict:
                            raise PatchError("snapshot is not an object")
                    elif "patch" in r:
                        if prev is None:
                            raise PatchError("a patch before the first snapshot")
                        doc = apply_patch(prev, r["patch"])
                        if type(doc) is not dict:
                            raise PatchError("patch result is not an object")
                    elif "note" in r:
                        rec.notes.append((float(r["t"]), str(r["note"])))
                        if "end" in r:
                            rec.end = str(r["end"])
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
            prev = doc
            rec._docs.append(doc)
            rec._faults.append(r.get("faults"))
            rec._lines.append(lineno)
            rec.times.append(float(r["t"]))
    if not rec.times:
        raise BadInput(f"{path}: the recording has no frames")
    if rec.times != sorted(rec.times):
        raise BadInput(f"{path}: frame times are not in order")
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
