"""The JSON Schemas shipped in vmainspect/schemas/: valid Draft 2020-12, packaged, and matching real outputs.

Real outputs here are produced in-process from this test's own process (a
snapshot with pages, a perf fault tick, a recording, a diff); the system tests
of each command validate their CLI outputs (faults, crash, demo, diff,
record) against the same shipped files through tests/schema_check.py.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import mmap
import os
import tomllib

import jsonschema
import pytest
from schema_check import registry, shipped, validate, validate_recording, validator

from vmainspect import schemas as json_schemas

EXPECTED = {
    "snapshot-1.json",
    "recording-1.json",
    "diff-1.json",
    "faults-1.json",
    "demo-1.json",
    "crash-1.json",
    "cache-1.json",
    "wss-1.json",
}
PAGE = os.sysconf("SC_PAGE_SIZE")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_shipped_schema_is_a_valid_draft_2020_12_schema():
    schemas = shipped()
    assert set(schemas) >= EXPECTED
    for name, s in schemas.items():
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["$id"] == json_schemas.BASE_URI + name, name
        assert json_schemas.file_name(s["title"]) == name, name  # vmainspect/faults@1 <-> faults-1.json
        consts = [
            d["properties"]["schema"]["const"]
            for d in [s, *s.get("$defs", {}).values()]
            if isinstance(d, dict) and "const" in d.get("properties", {}).get("schema", {})
        ]
        assert consts == [s["title"]], name  # the document names its own schema


def test_every_ref_resolves():
    for name, s in shipped().items():
        resolver = registry().resolver(base_uri=s["$id"])
        for ref in set(_refs(s)):
            assert resolver.lookup(ref).contents is not None, (name, ref)  # Unresolvable otherwise


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_pyproject_ships_every_schema_file():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["vmainspect"]
    for name in shipped():
        assert any(fnmatch.fnmatch(f"schemas/{name}", p) for p in patterns), name


def test_json_schemas_load_by_schema_name_and_file_name():
    assert (
        json_schemas.load("vmainspect/faults@1")
        == json_schemas.load("faults-1.json")
        == shipped()["faults-1.json"]
    )
    assert json_schemas.file_name("vmainspect/recording@1") == "recording-1.json"
    assert set(json_schemas.names()) == set(shipped())
    with pytest.raises(ValueError):
        json_schemas.file_name("faults")
    from vmainspect.snapshot.diff import JSON_SCHEMA

    assert shipped()["diff-1.json"] == JSON_SCHEMA


# --- real outputs, in-process ------------------------------------------------


@pytest.fixture(scope="module")
def live():
    """Snapshots of this process before and after mapping and touching 32 pages, and a perf tick of it."""
    from vmainspect.faults.sampler import FaultSampler
    from vmainspect.snapshot.collect import collect

    before = collect(os.getpid(), pages=True)
    m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE)
    with FaultSampler(os.getpid(), recent=16, baseline=before) as sampler:
        for i in range(0, 32):
            m[i * PAGE] = 1
        after = collect(os.getpid(), pages=True)
        tick = sampler.tick(after).faults
    yield before, after, tick, m
    m.close()


def test_a_recording_of_this_process_validates_line_by_line(live, tmp_path):
    from vmainspect.recording.io import RecordingWriter

    before, after, tick, _m = live
    path = str(tmp_path / "self.jsonl")
    w = RecordingWriter.create(path)
    w.header(before, interval_s=0.5, pages=True, faults=True)
    w.note(0.0, "a note")
    w.frame(0.0, before, None)
    w.frame(0.5, after, tick)
    w.frame(1.0, after, tick)  # unchanged: {"{": {}}
    w.note(1.0, "stopped", end="interrupted")
    w.close()
    assert validate_recording(path, every_frame=True) == 3
    if tick.mode == "perf":
        assert tick.minor >= 32 and tick.recent  # the sampled tick is really in there


def test_recording_schema_rejects_what_the_reader_rejects(live, tmp_path):
    v = validator("vmainspect/recording@1")
    header = {
        "schema": "vmainspect/recording@1",
        "started_at": "2026-11-25T07:00:00Z",
        "interval_s": 0.5,
        "pid": 1,
        "name": "x",
        "cmdline": [],
        "create_time": None,
        "host": {"kernel": "6.18", "page_size": 4096, "hostname": "h"},
        "pages": False,
        "faults": False,
        "vmainspect": "0.1.0",
    }
    v.validate(header)
    for bad in (
        {**header, "interval_s": 0},
        {**header, "interval_s": "1"},
        {**header, "pid": "1"},
        {"t": 1.0, "patch": {"=": {}}, "faults": None},  # the root is an object patch
        {"t": 1.0, "patch": {"[": [0]}, "faults": None},
        {"t": 1.0, "patch": {"{": {"a": {"[": [0]}}}, "faults": None},  # op 0
        {"t": 1.0, "patch": {"{": {"a": 5}}, "faults": None},  # not a node
        {"t": 1.0, "note": "x", "end": "finished"},
        {"t": -1, "note": "x"},
    ):
        assert not v.is_valid(bad), bad


def test_diff_of_this_process_validates(live):
    from vmainspect.snapshot.diff import diff_snapshots, to_dict

    before, after, _tick, _m = live
    doc = json.loads(json.dumps(to_dict(diff_snapshots(before, after, label_a="before", label_b="after"))))
    validate(doc)
    assert doc["summary"]["added"] + doc["summary"]["changed"] >= 1
    bad = copy.deepcopy(doc)
    bad["vmas"][0]["status"] = "moved"
    assert not validator("vmainspect/diff@1").is_valid(bad)


def _faults_doc(**over):
    doc = {
        "schema": "vmainspect/faults@1",
        "pid": 7,
        "name": "x",
        "mode": "counters",
        "reason": "perf_event_open refused: showing /proc fault counters instead",
        "period": None,
        "duration_s": 0.3,
        "samples": None,
        "minor": None,
        "major": None,
        "lost": None,
        "faults_per_s": 0.0,
        "event_counts": None,
        "unattributed": None,
        "by_vma": [],
        "by_symbol": [],
        "by_data_symbol": [],
        "by_transition": None,
        "by_thread": [{"tid": 7, "minor": 0, "major": 0}],
        "proc_counters": {"minor": 0, "major": 0},
        "notes": [],
    }
    doc.update(over)
    return doc


def test_faults_schema_keeps_unknown_apart_from_zero():
    v = validator("vmainspect/faults@1")
    v.validate(_faults_doc())
    assert not v.is_valid(_faults_doc(samples=0))  # counters mode: not sampled is null, not 0
    assert not v.is_valid(_faults_doc(mode="perf"))  # perf mode: samples are counted
    assert not v.is_valid(_faults_doc(proc_counters={"minor": -1, "major": 0}))


def test_crash_and_demo_schemas_hold_their_invariants():
    case = {
        "mapping": "anonymous",
        "ending": "exit",
        "written_pages": 4,
        "dirty_before": 4,
        "in_file_after": None,
        "dirty_in_cache_after": None,
        "ended_by": "exit 0",
    }
    crash = {"schema": "vmainspect/crash@1", "root": True, "file_pages": 16, "cases": [case]}
    validate(crash)
    for over in (
        {"in_file_after": False},
        {"ended_by": "killed"},
        {"mapping": "shared", "in_file_after": None},
    ):
        assert not validator("vmainspect/crash@1").is_valid({**crash, "cases": [{**case, **over}]}), over
    step = {
        "id": "touch-pages",
        "title": "t",
        "claim": "c",
        "measured": {"present_after": 64},
        "holds": True,
        "seconds": 0.1,
    }
    demo = {"schema": "vmainspect/demo@1", "root": False, "steps": [step]}
    validate(demo)
    for over in ({"holds": False}, {"holds": None}, {"reason": "why"}, {"measured": {}}):
        assert not validator("vmainspect/demo@1").is_valid({**demo, "steps": [{**step, **over}]}), over
    validate({**demo, "steps": [{**step, "holds": None, "reason": "dirty: needs root"}]})


# --- the shipped files are what the classes generate --------------------------


def test_shipped_schemas_are_what_the_classes_generate():
    """Run scripts/gen_schemas.py after changing a model class."""
    from vmainspect.schemas import generate

    docs = generate.documents()
    assert docs
    for doc in docs:
        assert shipped()[doc.file] == generate.generate(doc), f"{doc.file}: run scripts/gen_schemas.py"
        with open(os.path.join(ROOT, "vmainspect", "schemas", doc.file), encoding="utf-8") as f:
            assert f.read() == generate.text(generate.generate(doc)), doc.file


# --- new output against the schemas published before the msgspec model --------

OLD = os.path.join(ROOT, "tests", "fixtures", "schemas-832f0ce")


@pytest.fixture(scope="module")
def old_registry():
    """The schema files as they were at commit 832f0ce (git show 832f0ce:vmainspect/schemas/...)."""
    from referencing import Registry, Resource

    docs = {}
    for name in os.listdir(OLD):
        with open(os.path.join(OLD, name), encoding="utf-8") as f:
            docs[name] = json.load(f)
    reg = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in docs.values())
    return docs, reg


def _old_validator(old_registry, name):
    docs, reg = old_registry
    return jsonschema.Draft202012Validator(docs[name], registry=reg)


def test_new_snapshots_validate_against_the_old_schema(live, old_registry):
    from vmainspect.snapshot import io as snapshot_io

    v = _old_validator(old_registry, "snapshot-1.json")
    before, after, _tick, _m = live
    for s in (before, after):
        v.validate(json.loads(snapshot_io.dumps(s)))
    for name in ("small.json", "small-nonroot.json", "python.json"):
        s = snapshot_io.load(os.path.join(ROOT, "tests", "fixtures", name))
        v.validate(json.loads(snapshot_io.dumps(s, indent=1)))


def test_new_recordings_validate_against_the_old_schema(live, old_registry, tmp_path):
    from vmainspect.model import ProcessVitals
    from vmainspect.recording.io import RecordingWriter

    before, after, tick, _m = live
    path = str(tmp_path / "self.jsonl")
    w = RecordingWriter.create(path)
    w.header(before, interval_s=0.5, pages=True, faults=True)
    w.frame(0.0, before, None)
    w.frame(0.5, after, tick)
    # a frame that keeps the map, with the counters read at its tick (added later: additive)
    p = after.process
    vitals = ProcessVitals("2026-12-04T15:00:00.000000Z", "S", p.threads, p.minor_faults + 9, 0, 1 << 20, 0)
    w.frame(0.75, after, None, vitals)
    w.note(1.0, "stopped", end="interrupted")
    w.close()
    v = _old_validator(old_registry, "recording-1.json")
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 5 and "vitals" in lines[3] and "vitals" not in lines[2]
    for line in lines:
        v.validate(line)


def test_old_outputs_validate_against_the_new_schemas():
    """Fixtures written before the model moved to msgspec stay valid."""
    for name in ("small.json", "small-nonroot.json", "python.json"):
        with open(os.path.join(ROOT, "tests", "fixtures", name), encoding="utf-8") as f:
            validate(json.load(f))
    assert validate_recording(os.path.join(ROOT, "tests", "fixtures", "recording-832f0ce.jsonl")) == 6
