"""`vmainspect cache`: page-cache state of files and trees, compared with the kernel."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import tempfile

import jsonschema
import pytest
from cli_helpers import run_cli
from dirty_target import ROOT, WRITTEN, dirty_target, measure_dirty
from kernel_cache import have_cachestat, kernel_cachestat

from vmainspect import schemas
from vmainspect.snapshot import cachetree

PAGE = mmap.PAGESIZE
pytestmark = pytest.mark.skipif(not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)")


def _write(path: str, pages: int, *, cached: bool) -> None:
    with open(path, "wb") as f:
        f.write(b"x" * pages * PAGE)
        f.flush()
        os.fsync(f.fileno())
        if not cached:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.fixture()
def tree():
    root = tempfile.mkdtemp(prefix="vmainspect-cache-", dir="/var/tmp")
    os.chmod(root, 0o755)
    os.makedirs(os.path.join(root, "a", "b"))
    _write(os.path.join(root, "hot"), 5, cached=True)
    _write(os.path.join(root, "a", "cold"), 7, cached=False)
    _write(os.path.join(root, "a", "b", "empty"), 0, cached=True)
    _write(os.path.join(root, "a", "b", "odd name\x1b[31m"), 2, cached=True)
    os.symlink("/usr/bin", os.path.join(root, "a", "link-out"))  # not followed
    os.mkfifo(os.path.join(root, "a", "fifo"))  # skipped, never opened for reading
    os.link(os.path.join(root, "hot"), os.path.join(root, "a", "hot-again"))  # measured once
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_tree_matches_the_kernel_file_by_file(tree):
    report, denied = cachetree.measure([tree])
    assert report.errors == () and not denied
    paths = [f.path for f in report.files]
    assert paths == [
        f"{tree}/hot",
        f"{tree}/a/cold",
        f"{tree}/a/b/empty",
        f"{tree}/a/b/odd name\x1b[31m",
    ]  # each directory's files, then its subdirectories, in name order; the hard link once
    for f in report.files:
        k = kernel_cachestat(f.path)
        assert (f.cached, f.dirty, f.writeback, f.evicted, f.recently_evicted) == (
            k["cache"],
            k["dirty"],
            k["writeback"],
            k["evicted"],
            k["recent"],
        )
        assert f.size == os.stat(f.path).st_size and f.pages == -(-f.size // PAGE)
    assert report.files[0].cached == 5 and report.files[1].cached == 0
    assert report.total.files == 4 and report.total.cached == sum(f.cached for f in report.files)


def test_cli_json_validates_and_unreadable_paths_are_one_line_each(tree):
    r = run_cli("cache", "--json", tree, "/nonexistent/x", os.path.join(tree, "a", "fifo"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("vmainspect: /nonexistent/x: ")
    assert "not a regular file" in lines[1]
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, schemas.load("vmainspect/cache@1"))
    assert doc["schema"] == "vmainspect/cache@1" and doc["total"]["files"] == 4
    assert len(doc["errors"]) == 2


def test_cli_text_escapes_names(tree):
    r = run_cli("cache", tree)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "odd name\\x1b[31m" in r.stdout
    assert "total: 4 files" in r.stdout


@pytest.mark.nobody
@pytest.mark.skipif(not ROOT, reason="needs root: runs vmainspect as nobody via setpriv")
def test_as_nobody_denied_is_exit_4_and_others_files_unknown(tree):
    secret = os.path.join(tree, "secret")
    _write(secret, 1, cached=True)
    os.chmod(secret, 0o600)
    r = run_cli("cache", "--json", tree, user="nobody")
    assert r.returncode == 4
    assert r.stderr.strip() == f"vmainspect: {secret}: Permission denied"
    doc = json.loads(r.stdout)
    assert all(f["cached"] is None for f in doc["files"])  # root's files: the kernel does not tell nobody
    assert doc["total"]["unknown"] == 4 and doc["total"]["cached"] is None and doc["notes"]


@pytest.mark.nobody
def test_written_pages_are_dirty_for_an_unprivileged_user():
    """The issue's check: 8 pages written through MAP_SHARED by a stopped process show dirty."""
    with dirty_target() as (t, path):
        r, before, after = measure_dirty(
            t, path, lambda: run_cli("cache", "--json", path, user="nobody" if ROOT else None)
        )
        assert r.returncode == 0, r.stderr
        (f,) = json.loads(r.stdout)["files"]
        assert before >= f["dirty"] >= after >= len(WRITTEN)
        assert f["cached"] == kernel_cachestat(path)["cache"]
