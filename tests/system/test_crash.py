"""`vmainspect crash`: the whole matrix, measured, against the expected truth table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from demo_procs import end, temp_folders
from schema_check import validate as validate_schema

from vmainspect.demo.control import PREFIX, temp_root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAPPINGS = ["shared", "shared+msync", "private", "anonymous"]
ENDINGS = ["sigkill", "sigsegv", "abort", "exit"]
ENDED_BY = {"sigkill": "SIGKILL", "sigsegv": "SIGSEGV", "abort": "SIGABRT", "exit": "exit 0"}


def _run(*args: str, user: str | None = None, path: str = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "vmainspect", "crash", *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/")


def _no_leftovers() -> bool:
    return not [
        n
        for n in os.listdir(temp_root())
        if n.startswith(PREFIX)
        and "-crash-" in n
        and not os.path.exists(f"/proc/{n[len(PREFIX) :].split('-')[0]}")
    ]


@pytest.mark.root
def test_whole_matrix_as_root_matches_the_truth_table():
    p = _run("--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    validate_schema(doc, "vmainspect/crash@1")  # against the shipped schemas/crash-1.json
    assert doc["schema"] == "vmainspect/crash@1" and doc["root"] is True
    cases = {(c["mapping"], c["ending"]): c for c in doc["cases"]}
    assert list(cases) == [(m, e) for m in MAPPINGS for e in ENDINGS]
    for (mapping, ending), c in cases.items():
        w = c["written_pages"]
        assert w == 8
        assert c["ended_by"] == ENDED_BY[ending], c
        if mapping == "shared":
            # the page cache has the bytes: a crash loses nothing, but they are not on disk yet
            assert c["in_file_after"] is True, c
            assert c["dirty_before"] >= w and c["dirty_in_cache_after"] >= w, c
        elif mapping == "shared+msync":
            assert c["in_file_after"] is True and c["dirty_before"] == 0, c
            assert c["dirty_in_cache_after"] == 0, c
        elif mapping == "private":
            # copy-on-write copies are anonymous memory: dirty by nature, never in the file
            assert c["in_file_after"] is False and c["dirty_before"] == w, c
            assert c["dirty_in_cache_after"] == 0, c
        else:
            assert c["in_file_after"] is None and c["dirty_in_cache_after"] is None, c
            assert c["dirty_before"] == w, c
    assert _no_leftovers()


@pytest.mark.nobody
@pytest.mark.root("runs vmainspect crash as nobody")
def test_without_root_the_page_cache_is_measured_and_the_process_unknown(nobody_pythonpath):
    """dirty_before needs kpageflags (root); dirty_in_cache_after comes from cachestat on the
    experiment's own files, which works for any user."""
    p = _run(
        "--json",
        "--mapping",
        "shared",
        "--mapping",
        "private",
        "--ending",
        "sigkill",
        user="nobody",
        path=nobody_pythonpath,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    validate_schema(doc, "vmainspect/crash@1")
    assert doc["root"] is False
    by = {c["mapping"]: c for c in doc["cases"]}
    assert set(by) == {"shared", "private"}
    for c in by.values():
        assert c["dirty_before"] is None
    assert by["shared"]["in_file_after"] is True and by["private"]["in_file_after"] is False
    assert by["shared"]["dirty_in_cache_after"] >= by["shared"]["written_pages"]  # not yet on disk
    assert by["private"]["dirty_in_cache_after"] == 0  # the writes never reached the file


def test_readable_report_explains_and_usage_errors():
    p = _run("--mapping", "anonymous", "--ending", "exit")
    assert p.returncode == 0, p.stderr
    assert "anonymous" in p.stdout and "exit 0" in p.stdout
    assert "power loss" in p.stdout and "msync(MS_SYNC)" in p.stdout
    bad = _run("--mapping", "weird")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


def test_in_a_folder_it_does_not_own_it_removes_only_its_own_files(tmp_path):
    from vmainspect.demo import crash

    keep = tmp_path / "shared.dat"
    keep.write_bytes(b"the lecture's own file")
    res = crash.run_matrix(["shared", "anonymous"], ["exit"], folder=str(tmp_path))
    assert [(r.mapping, r.ended_by, r.in_file_after) for r in res] == [
        ("shared", "exit 0", True),
        ("anonymous", "exit 0", None),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.dat"]


@pytest.mark.parametrize("sig, code", [(2, 130), (15, 143)])
def test_interrupted_experiment_leaves_no_children_and_no_files(sig, code):
    import time

    import psutil

    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "crash"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        proc = psutil.Process(p.pid)
        deadline = time.monotonic() + 30
        kids: list = []
        while len(kids) < 2 and time.monotonic() < deadline:
            kids = proc.children()
            time.sleep(0.01)
        assert kids, "no case started"
        p.send_signal(sig)
        p.wait(30)
        assert p.returncode == code
        assert b"Traceback" not in p.stderr.read()
        _gone, alive = psutil.wait_procs(kids, timeout=30)
        assert not alive
        assert not temp_folders(p.pid)
    finally:
        end(p)
