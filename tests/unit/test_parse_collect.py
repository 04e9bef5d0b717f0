"""collect() on a fixture /proc tree (proc_root): the captured files become a Snapshot."""

from __future__ import annotations

import os
import shutil

import pytest
from targets import after_reading

from vmainspect.errors import BadInput, ProcessGone
from vmainspect.procfs.parse import parse_smaps, parse_smaps_fields
from vmainspect.snapshot.collect import collect

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


def read(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


@pytest.fixture()
def tree(tmp_path):
    pid = int(read("known_stat").split()[0])
    d = tmp_path / str(pid)
    d.mkdir()
    for name in ("smaps", "smaps_rollup", "stat", "status", "cmdline"):
        (d / name).write_bytes(read(f"known_{name}"))
    (tmp_path / "stat").write_bytes(b"cpu  1 2 3\nbtime 1700000000\n")
    os.symlink("/usr/bin/python3-fixture", d / "exe")
    return tmp_path, pid


def test_snapshot_from_a_fixture_tree(tree):
    root, pid = tree
    s = collect(pid, proc_root=str(root))
    assert list(s.vmas) == parse_smaps(read("known_smaps"))
    assert dict(s.totals) == parse_smaps_fields(read("known_smaps_rollup"))
    p = s.process
    assert (p.pid, p.name, p.state, p.exe, p.uid) == (pid, "odd) (name", "T", "/usr/bin/python3-fixture", 0)
    ticks = int(read("known_stat").rsplit(b")", 1)[1].split()[19])
    assert p.create_time == pytest.approx(1700000000 + ticks / os.sysconf("SC_CLK_TCK"))
    assert s.capabilities.pages is False and s.capabilities.pfn_visible is None


def test_missing_process_and_corrupt_files(tree):
    root, pid = tree
    with pytest.raises(ProcessGone):
        collect(pid + 1, proc_root=str(root))
    (root / str(pid) / "stat").write_bytes(b"garbage")
    with pytest.raises(BadInput):
        collect(pid, proc_root=str(root))


def test_vanishing_process_during_read(tree, monkeypatch):
    root, pid = tree

    def vanish():
        shutil.rmtree(root / str(pid))

    after_reading(monkeypatch, "smaps", vanish)
    with pytest.raises(ProcessGone, match="exited while being read"):
        collect(pid, proc_root=str(root))
