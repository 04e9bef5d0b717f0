"""diff@1's files: mapped files' page-cache changes between two snapshots."""

from __future__ import annotations

import json

import jsonschema
from test_diff import P, snap, vma

from vmainspect import schemas
from vmainspect.model import MappedFile, PageCache, replace
from vmainspect.snapshot.diff import diff_snapshots, render_text, to_dict


def mf(inode, cached, dirty, path="/data/f", unknown=False):
    c = PageCache(
        cached=None if unknown else cached,
        dirty=None if unknown else dirty,
        writeback=None if unknown else 0,
        evicted=None if unknown else 0,
        recently_evicted=None if unknown else 0,
    )
    return MappedFile(
        path=path,
        dev="fe:01",
        inode=inode,
        size=40960,
        vmas=1,
        mapped_pages=10,
        page_cache=c,
        mapped_page_cache=c,
    )


def with_files(s, *files):
    v = vma(P, 10, path="/data/f", inode=7)
    return replace(s, vmas=(v,), files=files)


def test_file_changes_added_removed_and_unknown():
    a = with_files(snap(), mf(7, 10, 8), mf(8, 3, 0, "/data/gone"), mf(9, 5, 0, "/data/same"))
    b = with_files(snap(), mf(7, 10, 0), mf(9, 5, 0, "/data/same"), mf(10, 1, 0, "/data/new", unknown=True))
    d = diff_snapshots(a, b)
    assert not d.different  # the page cache alone does not make the snapshots different
    by = {f.path: f for f in d.files}
    assert set(by) == {"/data/f", "/data/gone", "/data/new"}  # the unchanged file is left out
    assert by["/data/f"].status == "changed" and by["/data/f"].counts["dirty"].delta == -8
    assert by["/data/gone"].status == "removed" and by["/data/gone"].counts["cached"].b == 0
    assert by["/data/new"].status == "added" and by["/data/new"].counts["dirty"].delta is None
    doc = to_dict(d)
    jsonschema.validate(json.loads(json.dumps(doc)), schemas.load("vmainspect/diff@1"))
    (f,) = [f for f in doc["files"] if f["path"] == "/data/f"]
    assert f["dirty"] == {"a": 8, "b": 0, "delta": -8}
    text = render_text(d)
    assert "page cache of mapped files" in text and "0 (-8)" in text


def test_snapshots_without_files_compare_none():
    a = replace(snap(), vmas=(vma(P, 10, path="/data/f", inode=7),))  # a file VMA, no files: not collected
    b = with_files(snap(), mf(7, 10, 0))
    d = diff_snapshots(a, b)
    assert d.files is None and to_dict(d)["files"] is None
    assert "page cache" not in render_text(d)
    assert diff_snapshots(snap(), snap()).files == ()  # no file mappings: known to be none
