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
    # maps: the smaps header lines (collect opens it to prove the read was complete)
    headers = [ln for ln in read("known_smaps").splitlines(keepends=True) if b"-" in ln.split(b" ")[0]]
    (d / "maps").write_bytes(b"".join(headers))
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


def _set_stat_field(path, index, value):
    """Rewrite field ``index`` (0 = the state, field 3 of proc(5)) after the last ')'."""
    raw = path.read_bytes()
    head, _, rest = raw.rpartition(b")")
    f = rest.split()
    f[index] = value
    path.write_bytes(head + b") " + b" ".join(f) + b"\n")


def test_exiting_after_smaps_is_not_a_snapshot(tree, monkeypatch):
    # SIGKILL mid-read: the state still reads R, but PF_EXITING is set before the mm is released
    root, pid = tree
    stat = root / str(pid) / "stat"

    def exiting():
        flags = int(stat.read_bytes().rpartition(b")")[2].split()[6])
        _set_stat_field(stat, 6, str(flags | 0x4).encode())
        _set_stat_field(stat, 0, b"R")

    after_reading(monkeypatch, "smaps", exiting)
    with pytest.raises(ProcessGone, match="exited while being read"):
        collect(pid, proc_root=str(root))


def test_released_mm_after_smaps_is_not_a_snapshot(tree, monkeypatch):
    # the kernel ends reads of a released mm with EOF: an empty maps probe, a live-looking stat
    root, pid = tree
    after_reading(monkeypatch, "smaps", lambda: (root / str(pid) / "maps").write_bytes(b""))
    with pytest.raises(ProcessGone, match="memory map was released"):
        collect(pid, proc_root=str(root))


def test_zombie_at_the_start_is_a_snapshot_without_vmas(tree):
    root, pid = tree
    _set_stat_field(root / str(pid) / "stat", 0, b"Z")
    for name in ("smaps", "maps", "smaps_rollup"):
        (root / str(pid) / name).write_bytes(b"")
    s = collect(pid, proc_root=str(root))
    assert s.vmas == () and s.process.state == "Z"
