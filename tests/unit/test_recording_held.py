"""Frames that repeat an earlier map (the recorder's lock budget held the read back) say so.

``record`` writes such a tick as an empty patch. The reader finds the frame
whose map each frame shows, in any order of asking, and ``frame()`` marks a
repeated one with ``Frame.held`` (how old the map is, when it was recorded);
the replay's status line shows it as the live view does. A map read again
always differs from the last (its taken_at at least), so an empty patch
means a kept map.
"""

from __future__ import annotations

import os

from vmainspect.model import replace
from vmainspect.recording.io import RecordingWriter, read_recording
from vmainspect.snapshot import io as snapshot_io

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
# which map each tick shows: a new one (its own index), or the one before (kept)
READ = [0, 0, 0, 3, 4, 4, 6, 6, 6, 6]


def _written(tmp_path) -> str:
    base = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    path = str(tmp_path / "held.jsonl")
    w = RecordingWriter.create(path)
    w.header(base, interval_s=0.5, pages=True, faults=False)
    snap = base
    for k, src in enumerate(READ):
        if src == k:  # a read: a new taken_at
            snap = replace(base, taken_at=f"2026-11-25T07:00:{k:02d}.0Z")
        w.frame(k * 0.5, snap)
    w.note(5.0, "done", end="duration")
    w.close()
    return path


def test_each_frame_knows_the_frame_whose_map_it_shows(tmp_path):
    path = _written(tmp_path)
    forwards = read_recording(path)
    assert [forwards.map_of(i) for i in range(len(READ))] == READ
    backwards = read_recording(path)  # nothing remembered from earlier frames
    assert [backwards.map_of(i) for i in reversed(range(len(READ)))] == READ[::-1]
    assert backwards.map_of(-1) == 6


def test_a_repeated_frame_says_how_old_its_map_is(tmp_path):
    rec = read_recording(_written(tmp_path))
    for i, src in enumerate(READ):
        frame = rec.frame(i)
        assert frame.snapshot.taken_at == f"2026-11-25T07:00:{src:02d}.0Z"
        if src == i:
            assert frame.held is None
        else:
            assert frame.held is not None
            assert frame.held.startswith(f"map {(i - src) * 0.5:.1f} s old: recorded at t {src * 0.5:.1f} s")


def test_the_counters_of_each_tick_are_read_back_and_the_rss_series_follows_them(tmp_path):
    """A frame that keeps the map carries the counters of its own tick (``vitals``); the
    replay's header and its RSS timeline show those, not the kept map's."""
    from vmainspect.model import ProcessVitals

    base = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    rss0 = base.totals["rss"]
    path = str(tmp_path / "vitals.jsonl")
    w = RecordingWriter.create(path)
    w.header(base, interval_s=0.5, pages=True, faults=False)
    w.frame(0.0, base)  # no counters: as a recorder before they were added
    for k in (1, 2):
        v = ProcessVitals(f"2026-11-25T07:00:0{k}.0Z", "R", 1, 1000 * k, 0, rss0 + k * 4096, 0)
        w.frame(k * 0.5, base, None, v)
    w.note(1.5, "done", end="duration")
    w.close()
    rec = read_recording(path)
    assert rec.vitals(0) is None and rec.frame(0).vitals is None
    assert [rec.frame(k).vitals.minor_faults for k in (1, 2)] == [1000, 2000]
    assert rec.frame(2).held is not None and rec.frame(2).snapshot.totals["rss"] == rss0
    assert rec.series("rss") == [rss0, rss0 + 4096, rss0 + 8192]
    assert rec.series("pss") == [base.totals["pss"]] * 3  # only rss and swap have counters


def test_a_kept_map_is_the_same_empty_patch_whether_or_not_it_is_the_same_object(tmp_path):
    """The writer skips comparing a frame's Snapshot with the last one when it is the very same
    object (a held tick); a distinct but equal one is compared, and comes out the same."""
    base = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    path = str(tmp_path / "kept.jsonl")
    w = RecordingWriter.create(path)
    w.header(base, interval_s=0.5, pages=True, faults=False)
    w.frame(0.0, base)
    w.frame(0.5, base)  # the same object
    w.frame(1.0, replace(base, taken_at=base.taken_at))  # an equal copy
    w.frame(1.5, replace(base, taken_at="2026-11-25T07:00:59.0Z"))  # a map read again
    w.close()
    with open(path, "rb") as f:
        lines = f.read().splitlines()[2:]
    assert b'"patch":{"{":{}}' in lines[0] and lines[1] == lines[0].replace(b'"t":0.5', b'"t":1.0')
    assert b"07:00:59" in lines[2]
    rec = read_recording(path)
    assert [rec.map_of(i) for i in range(4)] == [0, 0, 0, 3]


def test_malformed_counters_are_a_one_line_error_naming_the_line(tmp_path):
    import pytest

    from vmainspect.errors import BadInput

    base = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    path = str(tmp_path / "bad-vitals.jsonl")
    w = RecordingWriter.create(path)
    w.header(base, interval_s=0.5, pages=True, faults=False)
    w.frame(0.0, base)
    w.frame(0.5, base)
    w.close()
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    bad = b'"vitals":{"taken_at":"2026-11-25T07:00:01.0Z","state":"R\\n","threads":-1}'
    lines[2] = lines[2][:-1] + b"," + bad + b"}"
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    rec = read_recording(path)
    with pytest.raises(BadInput) as e:
        rec.frame(1)
    assert "line 3" in str(e.value) and "vitals" in str(e.value) and "\n" not in str(e.value)
