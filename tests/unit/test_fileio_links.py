"""Writes that cannot be redirected: links and files planted by another user in a
sticky, world-writable directory (as /tmp) are refused when root writes there.

The planting is done as `nobody` (setpriv), as an attacker would. The kernel's
fs.protected_symlinks / protected_regular are not relied on (they are 0 on some
machines, this one included): fileio applies their rules itself.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from vmainspect import fileio
from vmainspect.errors import OutputError

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: the victim is root, the attacker nobody")


def as_nobody(*cmd: str) -> None:
    subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd], check=True, cwd="/"
    )


@pytest.fixture
def sticky():
    """A sticky world-writable directory (like /tmp) and a private 0700 root directory with a 0600 secret."""
    d = tempfile.mkdtemp(prefix="vmainspect-sticky-", dir="/tmp")
    os.chmod(d, 0o1777)
    private = tempfile.mkdtemp(prefix="vmainspect-private-")
    os.chmod(private, 0o700)
    secret = os.path.join(private, "secret")
    with open(secret, "w") as f:
        f.write("precious")
    os.chmod(secret, 0o600)
    try:
        yield d, private, secret
    finally:
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


@needs_root
def test_link_planted_by_another_user_is_not_followed(sticky):
    d, _private, secret = sticky
    link = os.path.join(d, "x.json")
    as_nobody("ln", "-s", secret, link)
    with pytest.raises(OutputError, match=r"refusing to follow the symbolic link 'x\.json', owned by uid"):
        fileio.write_text(link, "root's snapshot")
    with open(secret) as f:
        assert f.read() == "precious"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert os.path.islink(link)  # left as it was
    assert [n for n in os.listdir(d) if n != "x.json"] == []  # no temporary file left


@needs_root
def test_dangling_link_planted_by_another_user_creates_nothing(sticky):
    d, private, _secret = sticky
    link = os.path.join(d, "y.json")
    as_nobody("ln", "-s", os.path.join(private, "created-by-root"), link)
    with pytest.raises(OutputError, match="refusing to follow"):
        fileio.write_text(link, "x")
    assert os.listdir(private) == ["secret"]


@needs_root
def test_planted_folder_link_is_not_followed(sticky):
    d, private, _secret = sticky
    as_nobody("ln", "-s", private, os.path.join(d, "sub"))
    with pytest.raises(OutputError, match="refusing to follow the symbolic link 'sub'"):
        fileio.write_text(os.path.join(d, "sub", "z.json"), "x")
    assert os.listdir(private) == ["secret"]


@needs_root
def test_file_planted_by_another_user_is_not_replaced(sticky):
    """nobody pre-creates the name (0666): root writing there would hand nobody the data."""
    d, _private, _secret = sticky
    path = os.path.join(d, "snap.json")
    as_nobody("sh", "-c", f"echo mine > {path} && chmod 666 {path}")
    with pytest.raises(OutputError, match="refusing to write a file owned by uid"):
        fileio.write_text(path, "root's data")
    with open(path) as f:
        assert f.read() == "mine\n"
    fifo = os.path.join(d, "fifo")
    as_nobody("mkfifo", "-m", "666", fifo)
    with pytest.raises(OutputError, match="refusing to write"):
        fileio.write_text(fifo, "root's data")  # would block until nobody reads it, then leak


@needs_root
def test_recording_into_a_planted_link_is_refused(sticky):
    from vmainspect.recording.io import RecordingWriter

    d, _private, secret = sticky
    link = os.path.join(d, "rec.jsonl")
    as_nobody("ln", "-s", secret, link)
    for force in (False, True):
        with pytest.raises(OutputError):
            RecordingWriter.create(link, force=force)
    with open(secret) as f:
        assert f.read() == "precious"


def test_own_links_are_followed_even_in_a_sticky_directory(sticky):
    """A link that belongs to us (or to the directory's owner) is trusted, as the kernel does."""
    d, _private, _secret = sticky
    mine = tempfile.mkdtemp(prefix="vmainspect-mine-")
    try:
        target = os.path.join(mine, "t.json")
        link = os.path.join(d, "mine.json")
        os.symlink(target, link)
        fileio.write_text(link, "through my own link")
        with open(target) as f:
            assert f.read() == "through my own link"
        assert os.path.islink(link)
    finally:
        shutil.rmtree(mine)


def test_new_files_are_created_0600_then_given_their_mode(tmp_path, monkeypatch):
    """While being written the temporary file is 0600 (nobody else can open it)."""
    seen = []
    real = os.fsync

    def spy(fd):
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append(stat.S_IMODE(st.st_mode))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old = os.umask(0o022)
    try:
        fileio.write_text(str(tmp_path / "n.json"), "x")
    finally:
        os.umask(old)
    monkeypatch.undo()
    assert seen and seen[0] == 0o600
    assert stat.S_IMODE((tmp_path / "n.json").stat().st_mode) == 0o644


def test_dev_stdout_into_a_pipe():
    """/dev/stdout -> /proc/self/fd/1 -> pipe:[N]: written through the kernel's link, nothing created."""
    code = "from vmainspect import fileio; fileio.write_text('/dev/stdout', 'via the pipe\\n')"
    env = dict(
        os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "via the pipe\n"
