"""The recording reader keeps an index and rebuilds frames on demand: any
order of access gives the frames that were written, and it holds one frame's
document (plus a few evenly spaced checkpoints), not all of them."""

from __future__ import annotations

import os
import random

import pytest

from vmainspect.errors import BadInput
from vmainspect.model import replace
from vmainspect.recording import io as recording_io
from vmainspect.recording.io import RecordingWriter, read_recording
from vmainspect.snapshot import io as snapshot_io

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def _frames(n: int):
    """``n`` snapshots of the small fixture: VMAs dropped, grown and restored in turn."""
    base = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    out = []
    rnd = random.Random(7)
    for k in range(n):
        vmas = list(base.vmas)
        for _ in range(k % 5):
            del vmas[rnd.randrange(len(vmas))]
        i = rnd.randrange(len(vmas))
        v = vmas[i]
        vmas[i] = replace(v, smaps={**v.smaps, "rss": v.smaps.get("rss", 0) + 4096 * k})
        out.append(replace(base, vmas=tuple(vmas), taken_at=f"2026-11-25T07:{k // 60:02d}:{k % 60:02d}.0Z"))
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    frames = _frames(75)
    path = str(tmp_path_factory.mktemp("rec") / "r.jsonl")
    w = RecordingWriter.create(path)
    w.header(frames[0], interval_s=0.5, pages=True, faults=False)
    for k, s in enumerate(frames):
        w.frame(k * 0.5, s)
        if k == 40:
            w.note(k * 0.5, "a note between frames")
    w.note(40.0, "done", end="duration")
    w.close()
    return path, frames


def test_any_order_gives_the_frames_written(written):
    path, frames = written
    rec = read_recording(path)
    assert len(rec) == len(frames) and rec.end == "duration" and len(rec.notes) == 2
    order = list(range(len(frames)))
    random.Random(1).shuffle(order)
    for i in [*order, 74, 0, 73, 1, 40, 39, 41]:
        assert rec.snapshot(i) == frames[i], i
    assert rec.series("rss") == [s.totals.get("rss") for s in frames]


def test_the_reader_holds_an_index_not_every_frame(written):
    path, frames = written
    rec = read_recording(path)
    every = recording_io.CHECKPOINT_EVERY
    last = len(frames) - 1  # kept too: diff REC#-1
    assert sorted(rec._checkpoints) == [*range(0, len(frames), every), last]
    assert len(rec._checkpoints) <= recording_io.MAX_CHECKPOINTS + 1
    for i in range(len(frames)):
        rec.snapshot(i)
    assert len(rec._cache) <= recording_io.CACHED_SNAPSHOTS
    assert sorted(rec._checkpoints) == [*range(0, len(frames), every), last]  # nothing added on the way


def test_checkpoints_stay_few_and_evenly_spaced(written, tmp_path, monkeypatch):
    """A long recording keeps at most MAX_CHECKPOINTS documents: every 4th frame,
    then every 8th, ... here (the limits made small), and still rebuilds every frame."""
    path, frames = written
    monkeypatch.setattr(recording_io, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(recording_io, "MAX_CHECKPOINTS", 3)
    rec = read_recording(path)
    assert sorted(rec._checkpoints) == [0, 32, 64, 74]  # 75 frames: every 4th, 8th, 16th, then 32nd; the last
    for i in (74, 10, 63, 64, 65, 0, 31, 33):
        assert rec.snapshot(i) == frames[i], i


def test_a_file_changed_under_the_reader_is_one_line(written, tmp_path):
    path, _ = written
    copy = tmp_path / "c.jsonl"
    copy.write_bytes(open(path, "rb").read())  # noqa: SIM115
    rec = read_recording(str(copy))
    copy.write_bytes(b"")
    with pytest.raises(BadInput) as e:
        rec.snapshot(5)
    assert "\n" not in str(e.value) and str(copy) in str(e.value)
