"""The snapshot's ``files``: page-cache state of each mapped file, against the kernel."""

from __future__ import annotations

import json
import mmap
import os
import sys

import pytest
from cli_helpers import run_cli
from dirty_target import ROOT, WRITTEN, dirty_target, measure_dirty
from kernel_cache import have_cachestat, kernel_cachestat, write_file
from targets import spawn_target

from vmainspect.snapshot import io as snapshot_io
from vmainspect.snapshot.collect import collect
from vmainspect.snapshot.files import DirtyClock, mapped_ranges

PAGE = mmap.PAGESIZE
pytestmark = pytest.mark.skipif(not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)")


def _by_path(doc: dict, path: str) -> dict:
    (f,) = [f for f in doc["files"] if f["path"] == path]
    return f


@pytest.mark.nobody
def test_written_pages_dirty_in_the_snapshot_for_an_unprivileged_user():
    """The issue's check: 8 pages written through MAP_SHARED show dirty in files[].page_cache."""
    with dirty_target() as (t, path):
        r, before, after = measure_dirty(
            t, path, lambda: run_cli("snapshot", t.pid, user="nobody" if ROOT else None)
        )
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        snapshot_io.from_dict(doc)  # validates
        f = _by_path(doc, path)
        st = os.stat(path)
        assert (f["inode"], f["size"], f["vmas"]) == (st.st_ino, st.st_size, 1)
        assert f["dev"] == f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
        assert before >= f["page_cache"]["dirty"] >= after >= len(WRITTEN)
        assert f["page_cache"]["cached"] == kernel_cachestat(path)["cache"]
        assert f["mapped_page_cache"] == f["page_cache"]  # the whole file is mapped
        assert f["mapped_pages"] == 16 and "unknown" not in f


@pytest.mark.nobody
@pytest.mark.skipif(not ROOT, reason="needs root: runs vmainspect as nobody via setpriv")
def test_other_users_files_are_unknown_with_the_reason():
    with spawn_target("pass", user="65534") as t:
        r = run_cli("snapshot", t.pid, user="nobody")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
    f = _by_path(doc, os.path.realpath(sys.executable))  # root's file, mapped by nobody's process
    assert f["page_cache"] == dict.fromkeys(("cached", "dirty", "writeback", "evicted", "recently_evicted"))
    assert f["size"] == os.path.getsize(sys.executable)  # opened: only its page cache is withheld
    assert "EPERM" in f["unknown"]
    assert any(n.startswith("page cache of") and "EPERM" in n for n in doc["capabilities"]["notes"])


def test_a_partly_mapped_file_and_a_deleted_one(folder):
    part, gone = (os.path.join(folder, n) for n in ("part", "gone"))
    for p in (part, gone):
        write_file(p, 32, drop_cache=True)
    code = f"""
f = open({part!r}, "rb")
m = mmap.mmap(f.fileno(), 8 * PAGE, prot=mmap.PROT_READ, offset=4 * PAGE)  # pages 4..11
m[0]; m[3 * PAGE]  # two page faults: readahead decides how much is cached
g = open({gone!r}, "rb"); mg = mmap.mmap(g.fileno(), 0, prot=mmap.PROT_READ)
"""
    with spawn_target(code) as t:
        os.unlink(gone)
        snap = collect(t.pid)
        by = {f.path: f for f in snap.files}
        p = by[part]
        assert p.mapped_pages == 8 and p.size == 32 * PAGE
        k = kernel_cachestat(part)
        assert p.page_cache.cached == k["cache"] > 0
        assert p.mapped_page_cache.cached == kernel_cachestat(part, 4 * PAGE, 8 * PAGE)["cache"]
        g = by[gone + " (deleted)"]
        if ROOT:  # map_files reaches it
            assert g.page_cache.cached == 0 and g.unknown is None and g.size == 32 * PAGE
        else:
            assert g.page_cache.cached is None and "deleted" in g.unknown and g.size is None
            assert any("deleted" in n for n in snap.capabilities.notes)
        assert collect(t.pid, files=False).files == ()


def test_mapped_ranges_merge():
    class V:
        def __init__(self, offset, size):
            self.offset, self.start, self.end = offset, 0, size

    assert mapped_ranges([V(8192, 4096), V(0, 4096), V(4096, 4096), V(0, 100)]) == [(0, 12288)]
    assert mapped_ranges([V(0, 4096), V(8192, 4096)]) == [(0, 4096), (8192, 12288)]


def test_dirty_clock():
    from vmainspect.model import MappedFile, PageCache

    def f(dirty):
        c = PageCache(cached=5, dirty=dirty, writeback=0, evicted=0, recently_evicted=0)
        return MappedFile(
            path="/f", dev="fe:00", inode=1, size=1, vmas=1, mapped_pages=1, page_cache=c, mapped_page_cache=c
        )

    clock = DirtyClock()
    clock.update([f(0)], 10.0)
    assert clock.dirty_for(f(0), 10.0) is None
    clock.update([f(3)], 11.0)
    clock.update([f(5)], 12.0)  # more pages dirtied: the oldest still counts
    assert clock.dirty_for(f(5), 14.5) == 3.5
    clock.update([f(None)], 13.0)  # unknown: the clock keeps running
    assert clock.dirty_for(f(5), 13.0) == 2.0
    clock.update([f(0)], 15.0)  # written back
    assert clock.dirty_for(f(0), 15.0) is None
    clock.update([f(2)], 16.0)
    clock.update([], 17.0)  # unmapped
    assert clock.dirty_for(f(2), 17.0) is None
