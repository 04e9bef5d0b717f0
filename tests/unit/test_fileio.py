"""fileio.write_text: the atomic write rules for every user file vmainspect writes."""

from __future__ import annotations

import errno
import os
import pwd
import stat
import subprocess
import sys
import threading

import pytest
from targets import AS_NOBODY

from vmainspect import fileio
from vmainspect.errors import OutputError

IS_ROOT = os.geteuid() == 0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n.startswith(".vmainspect-")]


def test_new_file_gets_umask_mode(tmp_path):
    p = tmp_path / "new.json"
    old = os.umask(0o027)
    try:
        assert fileio.write_text(str(p), "hello\n") == str(p)
    finally:
        os.umask(old)
    assert p.read_text() == "hello\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_replace_keeps_mode_and_is_a_new_inode(tmp_path):
    p = tmp_path / "snap.json"
    p.write_text("old contents, longer than the new ones\n")
    os.chmod(p, 0o604)
    ino = p.stat().st_ino
    fileio.write_text(str(p), "new\n")
    assert p.read_text() == "new\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o604
    assert p.stat().st_ino != ino  # renamed over, not rewritten in place
    assert leftovers(tmp_path) == []


@pytest.mark.root("writes a file another user owns")
def test_replace_keeps_the_owner_when_root_writes_a_users_file(tmp_path):
    nobody = pwd.getpwnam("nobody")
    p = tmp_path / "theirs.json"
    p.write_text("x")
    os.chown(p, nobody.pw_uid, nobody.pw_gid)
    fileio.write_text(str(p), "y")
    assert (p.stat().st_uid, p.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert p.read_text() == "y"


def test_dev_null_is_written_directly_not_replaced():
    before = os.stat("/dev/null")
    fileio.write_text("/dev/null", "discarded\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert after.st_mode == before.st_mode
    assert leftovers("/dev") == []


def test_dev_full_reports_no_space():
    with pytest.raises(OutputError, match="cannot write /dev/full: No space left on device"):
        fileio.write_text("/dev/full", "x" * 100_000)


def test_fifo_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    fileio.write_text(str(fifo), "through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert leftovers(tmp_path) == []


def test_symlink_target_is_replaced_and_the_link_kept(tmp_path):
    sub = tmp_path / "real"
    sub.mkdir()
    target = sub / "target.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.json"
    os.symlink("real/target.json", link)  # relative link
    fileio.write_text(str(link), "new")
    assert os.path.islink(link) and os.readlink(link) == "real/target.json"
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == [] and leftovers(sub) == []  # temp file made beside the target


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    os.symlink(tmp_path / "later.json", link)
    fileio.write_text(str(link), "made")
    assert os.path.islink(link) and (tmp_path / "later.json").read_text() == "made"


def test_symlink_loop_is_an_output_error(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(OutputError, match="cannot write"):
        fileio.write_text(str(a), "x")


def test_directory_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        fileio.write_text(str(tmp_path), "x")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/proc/version", "/sys/kernel/mm/transparent_hugepage/enabled"])
def test_a_kernel_file_is_not_a_regular_file(path):
    """/proc and /sys files stat as regular files; the error says what they are, not ENOENT/EACCES."""
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with open(path, "rb") as f:
        before = f.read()
    with pytest.raises(OutputError) as e:
        fileio.write_text(path, "x\n")
    assert str(e.value) == f"cannot write {path}: not a regular file (a {path.split('/')[1]}fs file)"
    with open(path, "rb") as f:
        assert f.read() == before


def test_missing_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="No such file or directory"):
        fileio.write_text(str(tmp_path / "no" / "such.json"), "x")


def test_stdout(capsysbinary):
    fileio.write_text("-", "to stdout \u00e9\n")
    assert capsysbinary.readouterr().out == "to stdout \u00e9\n".encode()


def test_unencodable_text_is_escaped_not_a_traceback(tmp_path):
    p = tmp_path / "s.txt"
    fileio.write_text(str(p), "bad \udcff byte")
    assert p.read_bytes() == b"bad \\udcff byte"


@pytest.mark.parametrize("fail", ["fsync", "replace", "write"])
def test_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch, fail):
    p = tmp_path / "snap.json"
    p.write_text("precious")

    def boom(*a, **k):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    if fail == "write":
        real_fdopen = os.fdopen

        class Broken:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])  # half the data, then the disk fails
                boom()

        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Broken(real_fdopen(fd, *a, **k)))
    else:
        monkeypatch.setattr(os, fail, boom)
    with pytest.raises(OutputError, match="Input/output error"):
        fileio.write_text(str(p), "replacement that never lands")
    monkeypatch.undo()
    assert p.read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_interrupt_mid_write_leaves_no_temp_file(tmp_path, monkeypatch):
    p = tmp_path / "snap.json"
    p.write_text("precious")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_text(str(p), "never")
    monkeypatch.undo()
    assert p.read_text() == "precious"
    assert leftovers(tmp_path) == []


@pytest.mark.nobody
@pytest.mark.root("runs the writer as nobody")
def test_unwritable_folder_as_nobody_keeps_the_old_file(tmp_path):
    """As `nobody`: the folder is root's (0755), the old file is world-writable.
    A rename cannot be done there, so nothing is written (no unsafe in-place
    fallback) and the old file stays as it was."""
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o755)
    old = folder / "snap.json"
    old.write_text("precious")
    os.chmod(old, 0o666)
    code = (
        "import sys\n"
        "from vmainspect import fileio\n"
        "from vmainspect.errors import OutputError\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        fileio.write_text(path, 'replaced')\n"
        "        print('written', path)\n"
        "    except OutputError as e:\n"
        "        print(e)\n"
    )
    r = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", code, str(old), str(folder / "new.json")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"},
        cwd="/",
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"cannot write {old}: Permission denied",
        f"cannot write {folder / 'new.json'}: Permission denied",
    ]
    assert old.read_text() == "precious"
    assert sorted(os.listdir(folder)) == ["snap.json"]
