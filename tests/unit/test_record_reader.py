"""Recordings read back: round trip, and every kind of bad file (no /proc needed)."""

import json

import pytest
from made_up import anon_vma

from vmainspect import cli
from vmainspect.errors import BadInput
from vmainspect.model import (
    Capabilities,
    FaultSample,
    FaultTick,
    HostInfo,
    ProcessInfo,
    Snapshot,
)
from vmainspect.recording.io import (
    SCHEMA,
    RecordingWriter,
    fault_tick_from_dict,
    fault_tick_to_dict,
    moment_index,
    read_recording,
    split_moment,
)

PS = 4096
P = 0x7F0000000000


def snapshot(k: int) -> Snapshot:
    """Frame k of a made-up process: VMA 2 gains a page per frame, VMA 3 appears at k >= 2."""
    vmas = [anon_vma(P, 4, 4), anon_vma(P + 0x10000, 16, min(k, 16))]
    if k >= 2:
        vmas.append(anon_vma(P + 0x40000, 2, 1, "r--p"))
    caps = Capabilities(True, True, True, True, True, True)
    proc = ProcessInfo(42, 1, "t", ("t", "x"), "/usr/bin/t", "root", 0, "S", 1, 10 + k, 0, 1000.0)
    return Snapshot(
        f"2026-11-25T07:00:{k:02d}Z",
        HostInfo("6.18", PS, "h"),
        proc,
        caps,
        {"rss": sum(x.smaps["rss"] for x in vmas)},
        tuple(vmas),
    )


TICK = FaultTick(
    "perf",
    0.5,
    3,
    1,
    0,
    {P: (3, 1)},
    (("main+0x1", "/usr/bin/t", 4),),
    (FaultSample(1, 42, 42, 0x1000, P, True, "main+0x1", "/usr/bin/t"),),
    None,
    {42: (3, 1)},
    (P,),
    (("absent", "anon", 1),),
)


def write(path, n=5, end="exited"):
    w = RecordingWriter.create(str(path), force=True)
    w.header(snapshot(0), interval_s=0.5, pages=True, faults=True)
    for k in range(n):
        w.frame(k * 0.5, snapshot(k), TICK if k else None)
    if end:
        w.note(n * 0.5, "process 42 exited", end=end)
    w.close()
    return path


@pytest.fixture
def rec(tmp_path):
    return write(tmp_path / "r.jsonl")


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_round_trip(rec):
    r = read_recording(str(rec))
    assert len(r) == 5 and r.times == [0.0, 0.5, 1.0, 1.5, 2.0]
    for k in range(5):
        assert r.snapshot(k) == snapshot(k)
    assert r.faults(0) is None and r.faults(3) == TICK
    assert r.end == "exited" and r.truncated_at_line is None and r.warning() is None
    assert r.frame(-1).gone and not r.frame(0).gone
    assert r.header["schema"] == SCHEMA and r.pid == 42
    from schema_check import validate_recording

    assert validate_recording(str(rec), every_frame=True) == 5  # the shipped recording-1.json


def test_delta_records_are_small(rec):
    ls = lines(rec)
    assert b'"snapshot"' in ls[1]
    assert all(b'"patch"' in x for x in ls[2:6])
    full = len(json.dumps(json.loads(ls[1])["snapshot"]))
    patch = json.loads(ls[2])["patch"]  # frame 1: one VMA gained a page
    assert len(json.dumps(patch)) < full / 3
    assert patch["{"]["vmas"]["["][0] == 1  # the unchanged first VMA: "keep 1"
    assert "host" not in patch["{"] and "capabilities" not in patch["{"]


def test_refuses_to_replace_a_file_without_force(rec):
    from vmainspect.errors import OutputError

    with pytest.raises(OutputError, match="--force"):
        RecordingWriter.create(str(rec))


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_truncated_file_loads_to_last_complete_record(rec, cut):
    data = rec.read_bytes()
    ls = lines(rec)
    keep = sum(len(x) for x in ls[:4])  # header + 3 frames
    rec.write_bytes(data[: keep + cut])
    r = read_recording(str(rec))
    assert len(r) == 3 and r.truncated_at_line == 5
    assert r.end is None
    assert "line 5" in r.warning() and "incomplete" in r.warning()
    assert r.snapshot(-1) == snapshot(2)


def test_corrupt_record_in_the_middle_stops_there(rec):
    ls = lines(rec)
    ls[3] = b'{"t": 1.0, "patch": {"[": [5]}}\n'  # a patch that does not fit
    rec.write_bytes(b"".join(ls))
    r = read_recording(str(rec))
    assert len(r) == 2 and r.truncated_at_line == 4 and "bad record" in r.truncation
    ls[3] = b"\x00\xff garbage\n"
    rec.write_bytes(b"".join(ls))
    r = read_recording(str(rec))
    assert len(r) == 2 and r.truncation == "not JSON"


def test_frame_that_is_not_a_valid_snapshot_names_its_line(rec):
    ls = lines(rec)
    ls[2] = b'{"t": 0.5, "patch": {"{": {"host": {"=": 7}}}}\n'
    rec.write_bytes(b"".join(ls))
    r = read_recording(str(rec))
    with pytest.raises(BadInput, match="line 3"):
        r.snapshot(1)


GOOD_HEADER = (
    b'{"schema": "vmainspect/recording@1", "started_at": "2026-11-25T07:00:00Z", "interval_s": 1, '
    b'"pid": 1, "name": "x", "cmdline": [], "create_time": null, '
    b'"host": {"kernel": "6.18", "page_size": 4096, "hostname": "h"}, "pages": false, "faults": false, '
    b'"vmainspect": "0.1.0"}\n'
)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"not json at all\n", "line 1 is not JSON"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"schema": "vmainspect/recording@2", "interval_s": 1, "pid": 1}\n', "reads @1"),
        (b'{"schema": "something/else@1"}\n', "not a vmainspect recording"),
        (b'{"schema": "vmainspect/recording@1", "interval_s": 1, "pid": 1}\n', "missing required field"),
        (GOOD_HEADER, "no frames"),
        (b'{"schema": "vmainspect/recording@1", "interval_s": "x", "pid": 1}\n', "malformed"),
        (
            GOOD_HEADER + b'{"t": 0, "patch": {}}\n',
            "line 2: bad record",
        ),
        (
            GOOD_HEADER + b'{"t": 0, "snapshot": {"schema": 1}}\n',
            "line 2",
        ),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(BadInput, match=message) as e:
        read_recording(str(p))
    assert "\n" not in str(e.value)


def test_a_snapshot_is_not_a_recording(tmp_path):
    from vmainspect.snapshot.io import save

    p = tmp_path / "s.json"
    save(snapshot(1), str(p))
    with pytest.raises(BadInput, match="snapshot, not a recording"):
        read_recording(str(p))


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="cannot read"):
        read_recording(str(tmp_path / "nope.jsonl"))


def test_moments(rec):
    r = read_recording(str(rec))
    assert split_moment(f"{rec}@1.2") == (str(rec), "@1.2")
    assert split_moment(str(rec)) == (str(rec), None)
    assert moment_index(r, "#1") == 0 and moment_index(r, "#-1") == 4 and moment_index(r, "#5") == 4
    assert moment_index(r, "@0") == 0 and moment_index(r, "@1.2") == 2 and moment_index(r, "@1.5s") == 3
    for bad in ("#0", "#6", "#x", "@-1", "@abc", "@99"):
        with pytest.raises(BadInput):
            moment_index(r, bad)


def test_fault_tick_round_trip_and_malformed():
    assert fault_tick_from_dict(json.loads(json.dumps(fault_tick_to_dict(TICK)))) == TICK
    with pytest.raises(BadInput):
        fault_tick_from_dict({"mode": "perf"})


def run_cli(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_diff_cli_on_recording_moments(rec, capsys):
    rc, out, err = run_cli(["diff", f"{rec}#1", f"{rec}#-1"], capsys)
    assert rc == 1 and "added" in out and err == ""
    rc, out, _ = run_cli(["diff", f"{rec}#2", f"{rec}@0.5", "--json"], capsys)
    assert rc == 0 and json.loads(out)["different"] is False


@pytest.mark.parametrize("content", [b"\x00\x01\x02 binary", b'{"schema": "vmainspect/recording@9"}\n', b"{"])
def test_diff_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, content):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    rc, out, err = run_cli(["diff", f"{p}#1", f"{p}#2"], capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vmainspect: ") and "Traceback" not in err


def test_diff_cli_truncated_recording_warns(rec, capsys):
    data = rec.read_bytes()
    rec.write_bytes(data[:-30])
    rc, _out, err = run_cli(["diff", f"{rec}#1", f"{rec}#-1"], capsys)
    assert rc == 1 and "warning" in err and "stopped at line" in err


def test_diff_cli_snapshot_file_against_a_recording_moment(rec, tmp_path, capsys):
    from vmainspect.snapshot.io import save

    snap = tmp_path / "s.json"
    save(snapshot(0), str(snap))
    rc, out, _ = run_cli(["diff", str(snap), f"{rec}#1"], capsys)
    assert rc == 0 and "no differences" in out
    rc, out, _ = run_cli(["diff", str(snap), f"{rec}@2"], capsys)
    assert rc == 1 and "absent->anon 4" in out
    rc, _, err = run_cli(["diff", f"{snap}#1", f"{rec}#1"], capsys)
    assert rc == 2 and "not a recording" in err


def test_fault_ticks_keep_page_state_transitions_and_read_older_records_without_them():
    d = json.loads(json.dumps(fault_tick_to_dict(TICK)))
    assert d["by_transition"] == [["absent", "anon", 1]]
    del d["by_transition"]  # a recording written before the field existed
    assert fault_tick_from_dict(d).by_transition == ()
