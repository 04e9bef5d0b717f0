"""A mapped file whose name ends in " (deleted)" is not a deleted file: the
kind comes from the inode (procfs.mapped.file_unlinked), compared here with
what the kernel shows independently (map_files' link count, stat of the path)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from vmainspect.model import KIND_DELETED, KIND_FILE_PRIVATE
from vmainspect.snapshot.collect import collect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGET = r"""
import json, mmap, os, sys
d = sys.argv[1]
named = os.path.join(d, "real (deleted)")      # a real file with the kernel's suffix in its name
gone = os.path.join(d, "gone")                  # a file unlinked after mapping
maps = {}
for path in (named, gone):
    with open(path, "wb") as f:
        f.write(b"x" * mmap.PAGESIZE)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), mmap.PAGESIZE, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    m[0]
    maps[path] = m
os.unlink(gone)
addr = {p: int(open("/proc/self/maps").read().split(p)[0].rsplit("\n", 1)[-1].split("-")[0], 16) for p in maps}
print(json.dumps({"pid": os.getpid(), "named": addr[named], "gone": addr[gone]}), flush=True)
os.kill(os.getpid(), 19)  # SIGSTOP: the test reads a still process
"""


@pytest.fixture
def shared_dir():
    """A directory nobody can write into (pytest's tmp_path is root's alone)."""
    d = tempfile.mkdtemp(prefix="vmainspect-deleted-")
    os.chmod(d, 0o777)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _spawn(tmp_path, user: list[str]):
    d = str(tmp_path)
    p = subprocess.Popen([*user, sys.executable, "-c", TARGET, d], stdout=subprocess.PIPE, text=True)
    info = json.loads(p.stdout.readline())
    while open(f"/proc/{info['pid']}/stat").read().rsplit(")", 1)[1].split()[0] != "T":  # noqa: SIM115
        pass
    return p, info


def _kinds(snap, info):
    by_start = {v.start: v for v in snap.vmas}
    return by_start[info["named"]], by_start[info["gone"]]


def _check(named, gone, tmp_path):
    assert (
        named.path == str(tmp_path / "real (deleted)") and gone.path == str(tmp_path / "gone") + " (deleted)"
    )
    # the kernel's own view: the named file is still linked, the other one is not
    assert os.stat(named.path).st_ino == named.inode
    assert not os.path.exists(str(tmp_path / "gone"))
    assert named.kind == KIND_FILE_PRIVATE
    assert gone.kind == KIND_DELETED


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read map_files")
def test_as_root_from_map_files(shared_dir):
    tmp_path = shared_dir
    p, info = _spawn(tmp_path, [])
    try:
        nlinks = {
            k: os.stat(f"/proc/{info['pid']}/map_files/{info[k]:x}-{info[k] + PAGE:x}").st_nlink
            for k in ("named", "gone")
        }
        assert nlinks == {"named": 1, "gone": 0}
        _check(*_kinds(collect(info["pid"]), info), tmp_path)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
READ_AS_NOBODY = r"""
import json, sys
from vmainspect.snapshot.collect import collect
s = collect(int(sys.argv[1]))
print(json.dumps({v.start: v.kind for v in s.vmas}))
"""


@pytest.mark.nobody
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the target and the reader as nobody")
def test_as_nobody_from_the_path(shared_dir):
    p, info = _spawn(shared_dir, NOBODY)
    try:
        out = subprocess.run(
            [*NOBODY, sys.executable, "-c", READ_AS_NOBODY, str(info["pid"])],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": REPO},
            check=True,
        )
        kinds = {int(k): v for k, v in json.loads(out.stdout).items()}
        assert kinds[info["named"]] == KIND_FILE_PRIVATE
        assert kinds[info["gone"]] == KIND_DELETED
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
