"""The vmainspect/snapshot@1 contract: round trips, the JSON Schema, bad input.

Real snapshots come from tests/fixtures/ (captured by scripts/capture_fixtures.py)
and from live collect() calls on this test process. Every bad document must
end in BadInput (one line), never another exception.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmainspect import model
from vmainspect.errors import BadInput, OutputError
from vmainspect.model import (
    Capabilities,
    HostInfo,
    PageCounts,
    PageInfo,
    PageRun,
    ProcessInfo,
    Snapshot,
    Vma,
)
from vmainspect.snapshot import io as snapshot_io

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
FIXTURE_NAMES = ("small.json", "small-nonroot.json", "python.json")
VALIDATOR = jsonschema.Draft202012Validator(snapshot_io.schema())


def fixture_path(name: str) -> str:
    return os.path.join(FIXTURES, name)


def fixture_doc(name: str = "small.json") -> dict:
    with open(fixture_path(name), encoding="utf-8") as f:
        return json.load(f)


def small_doc() -> dict:
    """small.json cut to a handful of VMAs of different kinds (fast to fuzz)."""
    d = fixture_doc()
    seen, keep = set(), []
    for v in d["vmas"]:
        key = (v["kind"], len(v["pages"]["runs"]) > 1)
        if key not in seen and len(v["pages"]["runs"]) <= 4:
            seen.add(key)
            keep.append(v)
    d["vmas"] = keep[:5]
    d["vmas"][0]["smaps"] = dict(list(d["vmas"][0]["smaps"].items())[:6])
    for v in d["vmas"][1:]:
        v["smaps"] = {"rss": v["smaps"]["rss"]}
    return d


def one_line_bad(fn, *args) -> str:
    with pytest.raises(BadInput) as ei:
        fn(*args)
    msg = str(ei.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def strict(schema: object) -> object:
    """The schema with additionalProperties: false wherever properties are listed:
    the collector must not emit fields the contract does not document."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(x) for x in schema]
    return schema


STRICT_VALIDATOR = jsonschema.Draft202012Validator(strict(snapshot_io.schema()))


@pytest.fixture(scope="module")
def live():
    from vmainspect.snapshot.collect import collect

    return {False: collect(os.getpid()), True: collect(os.getpid(), pages=True)}


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_round_trip(name):
    s = snapshot_io.load(fixture_path(name))
    assert s.schema == snapshot_io.SCHEMA
    for indent in (None, 1, 2):
        assert snapshot_io.loads(snapshot_io.dumps(s, indent=indent)) == s
    assert snapshot_io.from_dict(snapshot_io.to_dict(s)) == s
    # the file is exactly what save() writes (one VMA per line, trailing newline)
    with open(fixture_path(name), encoding="utf-8") as f:
        assert f.read() == snapshot_io.dumps(s, indent=1) + "\n"


@pytest.mark.parametrize("pages", [False, True])
def test_live_round_trip(live, pages):
    s = live[pages]
    assert len(s.vmas) > 10
    assert all((v.pages is not None) == pages for v in s.vmas)
    text = snapshot_io.dumps(s)
    assert snapshot_io.loads(text) == s
    assert snapshot_io.loads(text.encode()) == s
    assert snapshot_io.loads(snapshot_io.dumps(s, indent=1)) == s


def test_fixtures_show_what_root_could_see():
    root = snapshot_io.load(fixture_path("small.json"))
    nobody = snapshot_io.load(fixture_path("small-nonroot.json"))
    assert root.capabilities.root and root.capabilities.pfn_visible and root.capabilities.kpageflags
    assert not nobody.capabilities.root and nobody.capabilities.pfn_visible is False
    assert nobody.capabilities.notes
    for v in nobody.vmas:
        c = v.pages.counts
        assert c.dirty is None and c.thp is None and c.ksm is None and c.shared is None
        assert v.pages.shared_runs is None
        assert {r.state for r in v.pages.runs} <= {"absent", "swapped", "file", "anon", "zero"}
    for v in root.vmas:
        assert None not in msgspec.structs.astuple(v.pages.counts)
    # and the JSON says null, not 0
    d = fixture_doc("small-nonroot.json")
    assert d["vmas"][0]["pages"]["counts"]["dirty"] is None
    assert '"dirty":null' in Path(fixture_path("small-nonroot.json")).read_text()


def test_fixture_small_has_the_workload_mappings():
    """The fixture really holds what capture_fixtures.py's workload built."""
    s = snapshot_io.load(fixture_path("small.json"))
    kinds = {v.kind for v in s.vmas}
    assert {
        "heap",
        "stack",
        "guard",
        "file-private",
        "file-shared",
        "anon-private",
        "anon-shared",
        "deleted",
        "shm",
        "vdso",
        "vvar",
        "vsyscall",
    } <= kinds
    (anon,) = [
        v
        for v in s.vmas
        if v.kind == "anon-private" and v.size == 64 * 4096 and v.pages.runs[0] == PageRun(0, 8, "anon")
    ]
    runs = [(r.first, r.count, r.state) for r in anon.pages.runs]
    assert runs == [
        (0, 8, "anon"),
        (8, 12, "absent"),
        (20, 1, "anon"),
        (21, 19, "absent"),
        (40, 4, "anon"),
        (44, 16, "absent"),
        (60, 1, "zero"),
        (61, 3, "absent"),
    ]
    shared = [v for v in s.vmas if v.kind == "file-shared" and v.path.endswith("/data.bin")]
    assert shared and any(r.state == "file-dirty" for r in shared[0].pages.runs)


def test_cli_output_loads_and_validates(tmp_path):
    """`vmainspect snapshot --pages -o FILE` end to end: the file loads, validates
    against the strict schema, and describes the process asked for."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "snap.json"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "vmainspect",
                "snapshot",
                str(child.pid),
                "--pages",
                "--indent",
                "1",
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        s = snapshot_io.load(str(out))
        STRICT_VALIDATOR.validate(json.loads(out.read_text()))
        assert s.process.pid == child.pid and s.capabilities.pages
        assert any(v.kind == "heap" for v in s.vmas)
    finally:
        child.kill()
        child.wait()


def test_import_hygiene():
    """The contract module is stdlib only: no textual, no collector."""
    import subprocess
    import sys

    code = (
        "import sys, vmainspect.snapshot.io as m; m.loads(open(sys.argv[1]).read()); "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('textual', 'psutil', 'elftools')"
        " or n in ('vmainspect.snapshot.collect', 'vmainspect.procfs')]; print(bad)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, fixture_path("small.json")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_empty_snapshot_round_trip():
    """A kernel thread: no VMAs, no totals; still a valid document."""
    s = make_snapshot(vmas=(), totals={})
    for indent in (None, 1, 4):
        text = snapshot_io.dumps(s, indent=indent)
        VALIDATOR.validate(json.loads(text))
        assert snapshot_io.loads(text) == s


def make_snapshot(vmas=None, totals=None, pages=False) -> Snapshot:
    if vmas is None:
        vmas = (
            Vma(
                0x1000,
                0x5000,
                "rw-p",
                0,
                "00:00",
                0,
                None,
                "anon-private",
                ("rd", "wr"),
                {"rss": 8192, "pss": 8192},
                PageInfo(
                    PageCounts(2, 0, 0, 2, 2, None, 0, None, None, None),
                    (PageRun(0, 2, "anon"), PageRun(2, 2, "absent")),
                    None,
                )
                if pages
                else None,
            ),
        )
    return Snapshot(
        taken_at="2026-11-25T07:40:25.123456Z",
        host=HostInfo("6.18.0", 4096, "box"),
        process=ProcessInfo(42, 1, "kworker/0:1", (), None, "root", 0, "I", 1, 0, 0, 1764000000.5),
        capabilities=Capabilities(True, pages, None, None, None, None, ("a note",)),
        totals={"rss": 0} if totals is None else totals,
        vmas=vmas,
    )


def test_odd_strings_survive():
    path = '/tmp/we"ird\\ pa%th\n\t\u00e9\u4e2d\U0001f600 (deleted)'
    v = Vma(0x1000, 0x2000, "r--p", 0x3000, "fe:01", 77, path, "deleted", ("rd", "m%d"), {"rss": 4096})
    s = make_snapshot(vmas=(v,))
    for indent in (None, 2):
        text = snapshot_io.dumps(s, indent=indent)
        assert snapshot_io.loads(text) == s
        assert json.loads(text)["vmas"][0]["path"] == path


def test_lone_surrogates_are_written_as_backslash_escapes():
    """os.readlink() returns bytes that are not UTF-8 as lone surrogates; JSON
    text cannot carry them, so they are written as \\xNN, as procfs.parse does."""
    v = Vma(0x1000, 0x2000, "r--p", 0, "fe:01", 77, "/x\udcff (deleted)", "deleted", (), {"rss": 4096})
    s = make_snapshot(vmas=(v,))
    for indent in (None, 2):
        back = snapshot_io.loads(snapshot_io.dumps(s, indent=indent))
        assert back.vmas[0].path == "/x\\xff (deleted)"
        assert back.process == s.process


def test_encoder_equals_the_json_module():
    s = snapshot_io.load(fixture_path("small.json"))
    generic = json.loads(json.dumps(snapshot_io.to_dict(s)))
    assert json.loads(snapshot_io.dumps(s)) == generic
    assert json.loads(snapshot_io.dumps(s, indent=3)) == generic
    assert json.loads(snapshot_io.encode(s)) == generic


def _anon_vmas(info: PageInfo, npages: int, count: int = 3) -> tuple[Vma, ...]:
    """``count`` adjacent private anonymous VMAs of ``npages`` pages each, sharing one
    PageInfo (as the collector shares equal ones)."""
    size = npages * 4096
    return tuple(
        Vma(
            0x10000 + k * size,
            0x10000 + (k + 1) * size,
            "rw-p",
            0,
            "00:00",
            0,
            None,
            "anon-private",
            ("rd",),
            {"rss": 4096},
            info,
        )
        for k in range(count)
    )


@pytest.mark.parametrize("nruns", [1, 64, 65, 1000])
@pytest.mark.parametrize("null_counts", [False, True])
def test_many_runs_and_shared_page_infos(nruns, null_counts):
    """Many page runs, and a PageInfo shared by several VMAs, as the collector makes them."""
    states = [model.PAGE_STATES[i % len(model.PAGE_STATES)] for i in range(nruns)]
    runs = tuple(PageRun(i * 2, 2, st_) for i, st_ in enumerate(states))
    n = 2 * nruns
    counts = PageCounts(2, 0, 1, 1, 2, *([None] * 5 if null_counts else [1, 0, 0, 0, 2]))
    info = PageInfo(counts, runs, None if null_counts else ((0, 1),) if n < 5 else ((0, 2), (4, 1)))
    s = make_snapshot(vmas=_anon_vmas(info, n), pages=True)
    text = snapshot_io.dumps(s)
    assert json.loads(text) == json.loads(json.dumps(snapshot_io.to_dict(s)))
    assert snapshot_io.loads(text) == s


@pytest.mark.parametrize("bad", [True, 1.0, "1", [1]])
def test_repeated_pages_are_each_checked(bad):
    """Equal "pages" objects are each checked: one that equals a valid one in
    Python (true == 1.0 == 1) or looks alike but has the wrong JSON type must
    fail, naming its own VMA."""
    info = PageInfo(
        PageCounts(1, 0, 0, 1, 1, 1, 0, 0, 0, 0), (PageRun(0, 1, "anon"), PageRun(1, 1, "absent")), ()
    )
    s = make_snapshot(vmas=_anon_vmas(info, 2), pages=True)
    loaded = snapshot_io.loads(snapshot_io.dumps(s))
    assert loaded == s
    d = json.loads(snapshot_io.dumps(s))
    d["vmas"][2]["pages"]["counts"]["present"] = bad
    msg = one_line_bad(snapshot_io.loads, json.dumps(d))
    assert msg.endswith("at `$.vmas[2].pages.counts.present`"), msg
    d = json.loads(snapshot_io.dumps(s))
    d["vmas"][1]["pages"]["runs"][0][1] = bad
    msg = one_line_bad(snapshot_io.loads, json.dumps(d))
    assert "at `$.vmas[1].pages.runs[0]" in msg, msg


def test_indent_layout_one_vma_per_line():
    s = snapshot_io.load(fixture_path("python.json"))
    text = snapshot_io.dumps(s, indent=2)
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1] == '  "schema": "vmainspect/snapshot@1",'
    vma_lines = [ln for ln in lines if ln.startswith('    {"start":')]
    assert len(vma_lines) == len(s.vmas)
    for ln, v in zip(vma_lines, s.vmas):
        assert json.loads(ln.rstrip(","))["start"] == v.start
    assert "\n" not in snapshot_io.dumps(s)


_CACHE = model.PageCache(cached=3, dirty=1, writeback=0, evicted=2, recently_evicted=None)
SOME_FILE = model.MappedFile(
    path="/x/y.dat",
    dev="fe:01",
    inode=12,
    size=20000,
    vmas=2,
    mapped_pages=4,
    page_cache=_CACHE,
    mapped_page_cache=_CACHE,
    unknown="why not",
)


def test_to_dict_maps_every_model_field():
    """A field added to the model without a place in the JSON fails here."""
    s = model.replace(snapshot_io.load(fixture_path("small.json")), files=(SOME_FILE,))
    d = snapshot_io.to_dict(s)
    assert set(d) == {"schema", *Snapshot.__struct_fields__}
    assert set(d["files"][0]) == set(model.MappedFile.__struct_fields__)
    assert set(d["files"][0]["page_cache"]) == set(model.PageCache.__struct_fields__)
    assert snapshot_io.loads(snapshot_io.dumps(s, indent=1)) == s
    STRICT_VALIDATOR.validate(json.loads(snapshot_io.dumps(s)))
    assert set(d["host"]) == set(HostInfo.__struct_fields__)
    assert set(d["process"]) == set(ProcessInfo.__struct_fields__)
    assert set(d["capabilities"]) == set(Capabilities.__struct_fields__)
    v = d["vmas"][0]
    assert set(v) == set(Vma.__struct_fields__)
    assert set(v["pages"]) == set(PageInfo.__struct_fields__)
    assert tuple(v["pages"]["counts"]) == PageCounts.__struct_fields__
    assert set(snapshot_io.COUNT_FIELDS) == set(v["pages"]["counts"])
    # no pages collected: the key is left out (documented), and loads accepts null too
    d2 = snapshot_io.to_dict(make_snapshot())
    assert "pages" not in d2["vmas"][0]
    d2["vmas"][0]["pages"] = None
    assert snapshot_io.from_dict(d2) == make_snapshot()


def test_from_dict_does_not_share_the_callers_dicts():
    d = small_doc()
    s = snapshot_io.from_dict(d)
    d["vmas"][0]["smaps"]["rss"] = 123456789
    d["totals"]["rss"] = 1
    assert s.vmas[0].smaps["rss"] != 123456789 and s.totals["rss"] != 1


def test_save_and_load(tmp_path):
    s = snapshot_io.load(fixture_path("small.json"))
    out = tmp_path / "snap.json"
    assert snapshot_io.save(s, str(out)) == str(out)
    text = out.read_text()
    assert text.endswith("}\n")
    assert snapshot_io.load(str(out)) == s
    with pytest.raises(OutputError):
        snapshot_io.save(s, str(tmp_path / "missing-dir" / "x.json"))


# ---------------------------------------------------------------- schema


def test_schema_is_valid_draft_2020_12():
    sch = snapshot_io.schema()
    jsonschema.Draft202012Validator.check_schema(sch)
    assert sch["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert sch["properties"]["schema"]["const"] == snapshot_io.SCHEMA == model.SNAPSHOT_SCHEMA
    assert sorted(sch["$defs"]["vma"]["properties"]["kind"]["enum"]) == sorted(model.VMA_KINDS)
    assert sch["$defs"]["pages"]["properties"]["runs"]["items"] == {"$ref": "#/$defs/run"}
    states = sch["$defs"]["run"]["prefixItems"][2]["enum"]
    assert sorted(states) == sorted(model.PAGE_STATES)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixtures_validate_against_the_strict_schema(name):
    STRICT_VALIDATOR.validate(fixture_doc(name))


@pytest.mark.parametrize("pages", [False, True])
def test_live_snapshots_validate_against_the_strict_schema(live, pages):
    STRICT_VALIDATOR.validate(json.loads(snapshot_io.dumps(live[pages])))


def test_schema_rejects_what_the_loader_rejects():
    for bad in (
        lambda d: d.update(schema="vmainspect/snapshot@2"),
        lambda d: d["vmas"][0].update(kind="weird"),
        lambda d: d["vmas"][0]["pages"]["runs"][0].__setitem__(2, "dirty"),
        lambda d: d["process"].update(pid="1"),
        lambda d: d["vmas"][0]["smaps"].update(Rss=1),
        lambda d: d["capabilities"].pop("root"),
    ):
        d = small_doc()
        bad(d)
        assert not VALIDATOR.is_valid(d)
        one_line_bad(snapshot_io.from_dict, d)


# ---------------------------------------------------------------- bad input


def test_not_json_empty_truncated(tmp_path):
    assert "empty" in one_line_bad(snapshot_io.loads, "")
    assert "empty" in one_line_bad(snapshot_io.loads, b"  \n")
    assert "invalid JSON" in one_line_bad(snapshot_io.loads, "hello")
    assert "invalid JSON" in one_line_bad(snapshot_io.loads, "{'a': 1}")
    assert "UTF-8" in one_line_bad(snapshot_io.loads, b'{"schema": "\xff"}')
    text = Path(fixture_path("small.json")).read_text()
    for cut in (1, 100, len(text) // 2, len(text) - 3, len(text) - 2):
        msg = one_line_bad(snapshot_io.loads, text[:cut])
        assert "truncated" in msg, msg
    p = tmp_path / "half.json"
    p.write_text(text[: len(text) // 3])
    msg = one_line_bad(snapshot_io.load, str(p))
    assert msg.startswith(str(p) + ": ") and "truncated" in msg


def test_not_an_object_or_another_schema():
    assert "Expected `object`" in one_line_bad(snapshot_io.loads, "[1, 2]")
    assert 'no "schema"' in one_line_bad(snapshot_io.loads, '{"vmas": []}')
    d = small_doc()
    d["schema"] = "vmainspect/snapshot@2"
    assert (
        one_line_bad(snapshot_io.from_dict, d)
        == "this file is vmainspect/snapshot@2; this vmainspect reads @1"
    )
    d["schema"] = "vmainspect/recording@1"
    assert one_line_bad(snapshot_io.from_dict, d) == (
        "not a vmainspect snapshot: this is a recording (vmainspect/recording@1)"
    )
    d["schema"] = "vmainspect/diff@1"
    assert (
        one_line_bad(snapshot_io.from_dict, d) == "not a vmainspect snapshot: this file is vmainspect/diff@1"
    )
    d["schema"] = 1
    assert "schema" in one_line_bad(snapshot_io.from_dict, d)


def test_load_refuses_endless_and_huge_files(tmp_path, monkeypatch):
    assert "does not start with '{'" in one_line_bad(snapshot_io.load, "/dev/zero")
    assert "does not start with '{'" in one_line_bad(snapshot_io.load, "/dev/urandom")
    assert "empty" in one_line_bad(snapshot_io.load, "/dev/null")
    monkeypatch.setattr(snapshot_io, "MAX_FILE", 70_000)
    msg = one_line_bad(snapshot_io.load, fixture_path("small.json"))
    assert "larger than 70,000 bytes" in msg


def test_a_bom_is_accepted():
    data = Path(fixture_path("python.json")).read_bytes()
    s = snapshot_io.loads(data)
    assert snapshot_io.loads(b"\xef\xbb\xbf" + data) == s
    assert snapshot_io.loads("\ufeff" + data.decode()) == s


def test_load_unreadable_files(tmp_path):
    missing = str(tmp_path / "nope.json")
    msg = one_line_bad(snapshot_io.load, missing)
    assert msg.startswith(f"cannot read {missing}") and "No such file" in msg
    assert "directory" in one_line_bad(snapshot_io.load, str(tmp_path)).lower()


def _paths(d, prefix=()):
    """Every (path, value) in a document: dict keys and list indexes."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        yield prefix + (k,), v
        yield from _paths(v, prefix + (k,))


def _set(d, path, value=..., delete=False):
    for k in path[:-1]:
        d = d[k]
    if delete:
        del d[path[-1]]
    else:
        d[path[-1]] = value


OPTIONAL = {("host", "hostname"), ("capabilities", "notes"), ("pages", "shared_runs")}


def test_every_missing_field_is_named():
    base = small_doc()
    checked = 0
    for path, _ in list(_paths(base)):
        if (
            not isinstance(path[-1], str)
            or path[-2:] in OPTIONAL
            or "smaps" in path
            or "totals" in path
            or path[-1] == "pages"
        ):
            continue
        d = copy.deepcopy(base)
        _set(d, path, delete=True)
        msg = one_line_bad(snapshot_io.from_dict, d)
        assert f"missing required field `{path[-1]}`" in msg or path == ("schema",), (path, msg)
        checked += 1
    assert checked > 100


WRONG = ["1", 1.5, True, None, [], {}, -1, 2**70]


def test_wrong_types_everywhere():
    """Every scalar replaced by values of other types: BadInput or a valid Snapshot
    that the schema also accepts (e.g. null where null means unknown)."""
    base = small_doc()
    rejected = 0
    for path, value in list(_paths(base)):
        if isinstance(value, (dict, list)):
            continue
        for w in WRONG:
            if type(w) is type(value) and w == value:
                continue
            d = copy.deepcopy(base)
            _set(d, path, w)
            try:
                snapshot_io.from_dict(d)
            except BadInput as e:
                assert "\n" not in str(e)
                rejected += 1
            else:
                assert VALIDATOR.is_valid(d), (path, w)
    assert rejected > 500


def _mutate_runs(fn):
    d = small_doc()
    v = next(v for v in d["vmas"] if len(v["pages"]["runs"]) >= 3)
    fn(v["pages"]["runs"])
    return d


@pytest.mark.parametrize(
    "fn,words",
    [
        (lambda r: r.pop(), "cover"),  # too short
        (lambda r: r.append([r[-1][0] + r[-1][1], 1, "anon"]), "past"),  # too long
        (lambda r: r.pop(1), "expected"),  # a gap
        (lambda r: r[1].__setitem__(0, r[1][0] - 1), "expected"),  # overlap
        (lambda r: r.reverse(), "expected"),  # out of order
        (lambda r: r.insert(1, [r[1][0], 0, "anon"]), "Expected `int` >= 1"),  # empty run
        (lambda r: r[0].__setitem__(2, "dirty"), "Invalid enum value 'dirty'"),
        (lambda r: r[0].append(1), "Expected `array` of at most length 3"),
        (lambda r: r.__setitem__(0, {"first": 0}), "Expected `array`, got `object`"),
    ],
)
def test_runs_must_cover_the_vma_exactly(fn, words):
    assert words in one_line_bad(snapshot_io.from_dict, _mutate_runs(fn))


def test_structural_rules():
    d = small_doc()
    d["vmas"][1]["start"] = d["vmas"][0]["start"]
    assert "address order" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["vmas"][0]["end"] = d["vmas"][0]["start"]
    assert "not below" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["vmas"][0]["end"] += 1
    assert "aligned" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["capabilities"]["pages"] = False
    assert "capabilities.pages" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["host"]["page_size"] = 3000
    assert "page_size" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["taken_at"] = "2026-02-30T00:00:00Z"
    assert "taken_at" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["vmas"][0]["pages"]["shared_runs"] = [[0, 1], [0, 1]]
    assert "shared_runs" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["vmas"][0]["smaps"]["Bad Key"] = 1
    assert "snake_case" in one_line_bad(snapshot_io.from_dict, d)
    d = small_doc()
    d["totals"][5] = 1  # plain data from Python code, not JSON
    assert "Expected `str`, got `int` - at `key` in `$.totals`" in one_line_bad(snapshot_io.from_dict, d)


def test_hostile_json():
    one_line_bad(snapshot_io.loads, "[" * 200_000 + "]" * 200_000)
    one_line_bad(snapshot_io.loads, '{"a":' * 100_000 + "1" + "}" * 100_000)
    one_line_bad(
        snapshot_io.loads, '{"schema": "vmainspect/snapshot@1", "x":' + "[" * 200_000 + "]" * 200_000 + "}"
    )
    d = small_doc()
    text = json.dumps(d)
    for bad in ("NaN", "Infinity", "-Infinity", "1e999", "9" * 5000):
        t = text.replace('"pid": %d' % d["process"]["pid"], '"pid": ' + bad)
        one_line_bad(snapshot_io.loads, t)
    t = text.replace('"create_time": ', '"create_time": 1e999, "x": ')
    assert "create_time" in one_line_bad(snapshot_io.loads, t)
    # deep nesting inside an otherwise valid document
    d["vmas"][0]["smaps"]["rss"] = json.loads("[" * 500 + "]" * 500)
    assert "at `$.vmas[0].smaps[...]`" in one_line_bad(snapshot_io.from_dict, d)
    # unknown fields are ignored (additive fields keep @1)
    d = small_doc()
    d["future"] = {"x": 1}
    d["vmas"][0]["future"] = [1]
    assert snapshot_io.from_dict(d) == snapshot_io.from_dict(small_doc())


# ---------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(list(model.PAGE_STATES) + list(model.VMA_KINDS)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
BASE = small_doc()
BASE_PATHS = [p for p, _ in _paths(BASE)]


def _check(text_or_doc) -> None:
    try:
        s = (
            snapshot_io.loads(text_or_doc)
            if isinstance(text_or_doc, (str, bytes))
            else snapshot_io.from_dict(text_or_doc)
        )
    except BadInput as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(s, Snapshot)
    # whatever loads accepts, the schema accepts, and it survives another round trip
    doc = json.loads(snapshot_io.dumps(s))
    assert VALIDATOR.is_valid(doc)
    assert snapshot_io.loads(snapshot_io.dumps(s, indent=1)) == s


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(BASE_PATHS), st.sampled_from(["set", "del", "dup"]), json_values),
        min_size=1,
        max_size=3,
    )
)
def test_fuzz_document_mutations(edits):
    d = copy.deepcopy(BASE)
    for path, op, value in edits:
        try:
            parent = d
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            if op == "set":
                parent[key] = value
            elif op == "del":
                del parent[key]
            elif isinstance(parent, list):
                parent.insert(key, copy.deepcopy(parent[key]))
            else:
                parent[key + "_"] = copy.deepcopy(parent[key])
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit removed or replaced this path
    _check(d)
    if VALIDATOR.is_valid(d) is False:
        with pytest.raises(BadInput):
            snapshot_io.from_dict(d)


BASE_TEXT = snapshot_io.dumps(snapshot_io.from_dict(BASE), indent=1)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(BASE_TEXT)),
            st.integers(0, 8),
            st.text(alphabet='{}[]",:0123456789-.truefalsn \\ae', max_size=4),
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, len(BASE_TEXT)),
)
def test_fuzz_text_mutations(splices, cut):
    text = BASE_TEXT
    for pos, n, ins in splices:
        text = text[:pos] + ins + text[pos + n :]
    _check(text)
    _check(text[:cut])
    _check(text.encode()[:cut] + b"\xc3")


def test_states_and_kinds_are_the_models():
    for state in model.PAGE_STATES:
        d = _mutate_runs(lambda r, state=state: r[0].__setitem__(2, state))
        snapshot_io.from_dict(d)
    for kind in model.VMA_KINDS:
        d = small_doc()
        d["vmas"][0]["kind"] = kind
        assert snapshot_io.from_dict(d).vmas[0].kind == kind
    assert re.fullmatch(r"[a-z]+/snapshot@\d+", snapshot_io.SCHEMA)


# ---------------------------------------------------------------- generated snapshots

texts = st.text(max_size=12)  # any Unicode, including quotes, %, controls, surrogates
page_states = st.sampled_from(model.PAGE_STATES)


@st.composite
def page_infos(draw, npages: int):
    cuts = sorted(draw(st.sets(st.integers(1, npages - 1), max_size=6))) if npages > 1 else []
    bounds = [0] + cuts + [npages]
    runs = tuple(PageRun(a, b - a, draw(page_states)) for a, b in itertools.pairwise(bounds))
    nullable = st.none() | st.integers(0, npages)
    counts = PageCounts(
        *[draw(st.integers(0, npages)) for _ in range(5)], *[draw(nullable) for _ in range(5)]
    )
    shared = draw(st.none() | st.just(()) | st.just(((0, 1),)))
    return PageInfo(counts, runs, shared)


@st.composite
def snapshots(draw):
    pages = draw(st.booleans())
    keys = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), max_size=5, unique=True))
    addr, vmas = draw(st.integers(0, 1 << 40)) * 4096, []
    for _ in range(draw(st.integers(0, 5))):
        addr += draw(st.integers(0, 4)) * 4096
        n = draw(st.integers(1, 40))
        vmas.append(
            Vma(
                start=addr,
                end=addr + n * 4096,
                perms=draw(st.sampled_from(["rw-p", "r--s", "---p", "r-xp"])),
                offset=draw(st.integers(0, (1 << 64) - 1)),
                dev=draw(st.sampled_from(["00:00", "fe:01", "103:2a"])),
                inode=draw(st.integers(0, (1 << 64) - 1)),
                path=draw(st.none() | texts),
                kind=draw(st.sampled_from(model.VMA_KINDS)),
                flags=tuple(draw(st.lists(texts, max_size=3))),
                smaps={k: draw(st.integers(0, (1 << 64) - 1)) for k in keys},
                pages=draw(page_infos(n)) if pages else None,
            )
        )
        addr += n * 4096
    return Snapshot(
        taken_at=draw(st.sampled_from(["2026-11-25T07:40:25.123456Z", "2026-01-01T00:00:00+00:00"])),
        host=HostInfo(draw(texts), 4096, draw(texts)),
        process=ProcessInfo(
            draw(st.integers(0, 1 << 22)),
            draw(st.none() | st.integers(0, 1 << 22)),
            draw(texts),
            tuple(draw(st.lists(texts, max_size=3))),
            draw(st.none() | texts),
            draw(st.none() | texts),
            draw(st.none() | st.integers(0, (1 << 32) - 1)),
            draw(st.sampled_from("RSDTtZI")),
            draw(st.integers(0, 9999)),
            draw(st.integers(0, 1 << 40)),
            draw(st.integers(0, 1 << 40)),
            draw(st.none() | st.floats(0, 4e9)),
        ),
        capabilities=Capabilities(
            draw(st.booleans()),
            pages,
            *[draw(st.none() | st.booleans()) for _ in range(4)],
            tuple(draw(st.lists(texts, max_size=2))),
        ),
        totals={k: draw(st.integers(0, 1 << 50)) for k in keys},
        vmas=tuple(vmas),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), st.sampled_from([None, 0, 1, 3]))
def test_any_snapshot_round_trips(s, indent):
    """Whatever the model can hold (odd strings, 64-bit values, nulls) survives
    dumps -> loads, the text is ASCII JSON, equal to what the json module makes
    of to_dict, and it validates against the schema."""
    text = snapshot_io.dumps(s, indent=indent)
    doc = json.loads(text)
    assert doc == json.loads(json.dumps(snapshot_io.to_dict(s)))
    assert VALIDATOR.is_valid(doc)
    assert snapshot_io.loads(text) == s


def test_a_recording_written_before_the_msgspec_model_still_loads():
    """tests/fixtures/recording-832f0ce.jsonl was written by `vmainspect record
    --pages` of the code at commit 832f0ce (hand-written encoder)."""
    from vmainspect.recording.io import read_recording

    rec = read_recording(fixture_path("recording-832f0ce.jsonl"))
    assert len(rec) == 6 and rec.end == "exited" and rec.warning() is None
    frames = [rec.frame(i) for i in range(len(rec))]
    assert all(f.snapshot.capabilities.pages for f in frames)
    assert frames[-1].gone and frames[2].faults is not None and frames[2].faults.by_transition
    assert len({len(f.snapshot.vmas) for f in frames}) > 1  # the target mapped and unmapped
    for f in frames:
        assert snapshot_io.loads(snapshot_io.dumps(f.snapshot)) == f.snapshot


def test_an_error_quoting_a_bad_value_is_one_line():
    """msgspec quotes the value that did not validate: a newline in it was a second line
    (found by test_fuzz_text_mutations: a schema "\\nspect/snapshot@1" in a document cut short)."""
    for text in ('{"schema":"\\nspect/snapshot@1","taken_at":', '{"schema":"\\u001b[31m\\n"'):
        with pytest.raises(BadInput) as e:
            snapshot_io.loads(text)
        assert "\n" not in str(e.value) and "\x1b" not in str(e.value), str(e.value)
