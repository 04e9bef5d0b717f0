"""diff_snapshots on hand-built snapshots: pairing, deltas, page transitions, output."""

import json

import pytest

from vmainspect.model import Capabilities, HostInfo, PageCounts, PageInfo, PageRun, ProcessInfo, Snapshot, Vma
from vmainspect.snapshot.diff import DIFF_SCHEMA, diff_snapshots, page_transitions, render_text, to_dict

PS = 4096
P = 0x7F0000000000


def vma(start, npages, perms="rw-p", rss=0, dirty=0, swap=0, runs=None, path=None, inode=0):
    pages = None
    if runs is not None:
        out, first = [], 0
        for count, state in runs:
            out.append(PageRun(first, count, state))
            first += count
        assert first == npages
        pages = PageInfo(PageCounts(0, 0, 0, 0, 0, None, None, None, None, None), tuple(out))
    smaps = {"rss": rss, "private_dirty": dirty, "shared_dirty": 0, "swap": swap}
    return Vma(start, start + npages * PS, perms, 0, "00:00", inode, path, "anon-private", (), smaps, pages)


def snap(*vmas, pid=100, pages=None, totals=None):
    if pages is None:
        pages = any(v.pages is not None for v in vmas)
    caps = Capabilities(True, pages, None, None, None, None)
    proc = ProcessInfo(pid, 1, "t", ("t",), None, "root", 0, "S", 1, 0, 0, 1000.0)
    return Snapshot(
        "2026-11-25T07:00:00Z",
        HostInfo("6.18", PS),
        proc,
        caps,
        totals or {"rss": sum(v.smaps["rss"] for v in vmas)},
        tuple(vmas),
    )


def test_identical_snapshots_have_no_differences():
    s = snap(vma(P, 4, rss=8192), vma(P + 0x10000, 2))
    d = diff_snapshots(s, s)
    assert not d.different and d.unchanged == 2
    assert "no differences" in render_text(d)
    assert to_dict(d)["different"] is False


def test_added_removed_resized_and_perms():
    a = snap(vma(P, 4), vma(P + 0x10000, 4), vma(P + 0x20000, 4, perms="r--p"), vma(P + 0x40000, 4))
    b = snap(
        vma(P, 4),  # same
        vma(P + 0x10000, 8),  # grew at its end
        vma(P + 0x20000, 4, perms="rw-p"),  # mprotect
        vma(P + 0x3E000, 6),  # grew down (same end as old P+0x40000)
        vma(P + 0x90000, 1),
    )  # new
    d = diff_snapshots(a, b)
    by = {(c.status, (c.b or c.a).start): c for c in d.changes}
    assert by[("changed", P + 0x10000)].resized
    assert by[("changed", P + 0x20000)].perms_changed and not by[("changed", P + 0x20000)].resized
    assert by[("changed", P + 0x3E000)].resized and by[("changed", P + 0x3E000)].a.start == P + 0x40000
    assert ("added", P + 0x90000) in by
    assert d.count("added") == 1 and d.count("removed") == 0 and d.count("resized") == 2
    assert d.count("perms") == 1 and d.unchanged == 1
    a2 = snap(vma(P, 4), vma(P + 0x10000, 4))
    b2 = snap(vma(P, 4))
    d2 = diff_snapshots(a2, b2)
    assert [c.status for c in d2.changes] == ["removed"]


def test_metric_deltas():
    a = snap(vma(P, 4, rss=4096, dirty=0, swap=8192))
    b = snap(vma(P, 4, rss=16384, dirty=12288, swap=0))
    (c,) = diff_snapshots(a, b).changes
    assert c.metrics["rss"].delta == 12288
    assert c.metrics["dirty"].delta == 12288
    assert c.metrics["swap"].delta == -8192


def test_page_transitions_over_the_overlap():
    # a: 8 pages [absent x4, anon x4]; b starts 2 pages later, 8 pages: [anon x2, file x6]
    a = vma(P, 8, runs=[(4, "absent"), (4, "anon")])
    b = vma(P + 2 * PS, 8, runs=[(2, "anon"), (6, "file")])
    tr, n = page_transitions(a, b, PS)
    # overlap: pages 2..7 of a = [absent, absent, anon, anon, anon, anon]
    #          pages 0..5 of b = [anon,   anon,   file, file, file, file]
    assert n == 6
    assert {(f, t): k for f, t, k in tr} == {("absent", "anon"): 2, ("anon", "file"): 4}


def test_page_transitions_need_pages_on_both_sides():
    assert page_transitions(vma(P, 2, runs=[(2, "anon")]), vma(P, 2), PS) is None


def test_only_page_state_changed_is_a_difference():
    a = snap(vma(P, 4, runs=[(4, "file")]))
    b = snap(vma(P, 4, runs=[(2, "file"), (2, "file-dirty")]))
    d = diff_snapshots(a, b)
    assert d.different
    assert d.changes[0].transitions == (("file", "file-dirty", 2),)
    assert "file->file-dirty 2" in render_text(d)


def test_split_vma_is_compared_with_the_vma_it_came_from():
    a = snap(vma(P, 8, runs=[(8, "absent")]))
    b = snap(
        vma(P, 4, perms="r--p", runs=[(4, "absent")]), vma(P + 4 * PS, 4, runs=[(1, "anon"), (3, "absent")])
    )
    d = diff_snapshots(a, b)
    added = next(c for c in d.changes if c.status == "added")
    assert added.overlaps.start == P and added.transitions == (("absent", "anon", 1),)


def test_json_is_schema_tagged_and_serialisable():
    a = snap(vma(P, 4, rss=0))
    b = snap(vma(P, 4, rss=4096), vma(P + 0x10000, 1), pid=101)
    d = to_dict(diff_snapshots(a, b, label_a="x.json", label_b="y.json"))
    json.dumps(d)
    assert d["schema"] == DIFF_SCHEMA and d["different"] is True
    assert d["a"]["source"] == "x.json" and d["b"]["pid"] == 101
    assert d["summary"]["added"] == 1
    assert any("different processes" in n for n in d["notes"])
    ch = next(v for v in d["vmas"] if v["status"] == "changed")
    assert ch["rss"] == {"a": 0, "b": 4096, "delta": 4096}
    assert ch["transitions"] is None  # no pages: unknown, not "no transitions"


def test_unknown_metric_is_null_not_zero():
    v1 = vma(P, 1)
    v2 = Vma(v1.start, v1.end, v1.perms, 0, "00:00", 0, None, "anon-private", (), {"rss": 4096})
    (c,) = diff_snapshots(snap(v1), snap(v2)).changes
    assert c.metrics["swap"].delta is None
    assert "?" in render_text(diff_snapshots(snap(v1), snap(v2)))


def test_json_matches_its_schema():
    import jsonschema

    from vmainspect.snapshot.diff import JSON_SCHEMA

    a = snap(vma(P, 8, runs=[(8, "absent")]), vma(P + 0x40000, 2, rss=4096))
    b = snap(
        vma(P, 4, perms="r--p", runs=[(4, "absent")]),
        vma(P + 4 * PS, 4, runs=[(1, "anon"), (3, "absent")]),
        vma(P + 0x90000, 1),
    )
    for x, y in ((a, b), (b, a), (a, a)):
        doc = json.loads(json.dumps(to_dict(diff_snapshots(x, y))))
        jsonschema.validate(doc, JSON_SCHEMA)
    bad = json.loads(json.dumps(to_dict(diff_snapshots(a, b))))
    bad["vmas"][0]["rss"]["delta"] = "12"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, JSON_SCHEMA)
