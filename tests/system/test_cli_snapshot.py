"""`vmainspect snapshot` end to end: output, bad input, exit codes, privileges."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import jsonschema
import pytest
from cli_helpers import REPO, free_pid, one_line_error, run_cli
from targets import after_reading, spawn_target

from vmainspect.cli import main
from vmainspect.snapshot import io as snapshot_io

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: runs vmainspect as nobody via setpriv")


@pytest.fixture(scope="module")
def target():
    with spawn_target("buf = mmap.mmap(-1, 16 * PAGE, flags=mmap.MAP_PRIVATE); buf[0] = 1") as t:
        yield t


@pytest.fixture(scope="module")
def nobody_target():
    if not ROOT:
        pytest.skip("needs root to start a process as nobody")
    with spawn_target(
        "buf = mmap.mmap(-1, 16 * PAGE, flags=mmap.MAP_PRIVATE); buf[0] = 1", user="65534"
    ) as t:  # numeric: Debian has no group "nobody"
        yield t


@pytest.fixture()
def workdir():
    d = tempfile.mkdtemp(prefix="vmainspect-cli-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_stdout_is_valid_schema_checked_json(target):
    r = run_cli("snapshot", target.pid)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, snapshot_io.schema())
    assert doc["process"]["pid"] == target.pid
    assert doc["capabilities"]["pages"] is False and doc["capabilities"]["pfn_visible"] is None
    with open(f"/proc/{target.pid}/maps") as f:
        assert len(doc["vmas"]) == len(f.read().splitlines())
    snap = snapshot_io.loads(r.stdout)
    assert snap.process.pid == target.pid and len(snap.vmas) == len(doc["vmas"])


def test_indent_and_dash(target):
    r = run_cli("snapshot", target.pid, "--indent", "2", "-o", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{\n  ") and r.stdout.endswith("}\n")
    jsonschema.validate(json.loads(r.stdout), snapshot_io.schema())
    r = run_cli("snapshot", target.pid, "--indent", "99")
    assert r.returncode == 2 and "indent" in one_line_error(r)


def test_pages_as_root(target):
    r = run_cli("snapshot", target.pid, "--pages")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, snapshot_io.schema())
    assert doc["capabilities"]["pages"] is True
    assert all("pages" in v for v in doc["vmas"] if v["path"] != "[vsyscall]")


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "12x", ""])
def test_non_numeric_pid_exits_2(bad):
    r = run_cli("snapshot", bad)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "not a process id" in r.stderr


def test_nonexistent_pid_exits_3():
    pid = free_pid()
    r = run_cli("snapshot", pid)
    assert r.returncode == 3 and r.stdout == ""
    assert f"process {pid} does not exist" in one_line_error(r)


@pytest.mark.nobody
@needs_root
def test_process_of_another_user_exits_4(target):
    r = run_cli("snapshot", target.pid, user="nobody")  # nobody against a root-owned target
    assert r.returncode == 4 and r.stdout == ""
    line = one_line_error(r)
    assert "permission denied" in line and "smaps" in line
    assert "ptrace" in line and "root" in line  # names the missing privilege


def test_process_that_exits_while_being_read_exits_3(monkeypatch, capsys):
    t = spawn_target("")

    def kill():
        os.kill(t.pid, signal.SIGKILL)
        t.proc.wait()

    after_reading(monkeypatch, "smaps", kill)
    try:
        rc = main(["snapshot", str(t.pid)])
    finally:
        t.kill()
    out, err = capsys.readouterr()
    assert rc == 3 and out == ""
    assert err.strip().splitlines() == [
        f"vmainspect: process {t.pid} does not exist or has exited: it exited while being read"
    ]


def test_kernel_thread_is_an_empty_valid_snapshot():
    r = run_cli("snapshot", 2)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, snapshot_io.schema())
    assert doc["vmas"] == [] and doc["totals"] == {} and doc["process"]["name"] == "kthreadd"


def test_unwritable_output_exits_5(target, workdir):
    r = run_cli("snapshot", target.pid, "-o", os.path.join(workdir, "no such dir", "x.json"))
    assert r.returncode == 5 and "cannot write" in one_line_error(r)
    r = run_cli("snapshot", target.pid, "-o", workdir)  # a directory
    assert r.returncode == 5 and "directory" in one_line_error(r)
    assert os.listdir(workdir) == []  # no temporary left behind


@pytest.mark.nobody
@needs_root
def test_unwritable_output_leaves_the_old_file_untouched(nobody_target, workdir):
    old = os.path.join(workdir, "old.json")
    with open(old, "w") as f:
        f.write("previous snapshot\n")
    os.chmod(workdir, 0o755)  # root's directory: nobody may not create files in it
    os.chmod(old, 0o666)  # the file itself is writable, but rename needs the dir
    r = run_cli("snapshot", nobody_target.pid, "-o", old, user="nobody")
    assert r.returncode == 5 and "cannot write" in one_line_error(r)
    with open(old) as f:
        assert f.read() == "previous snapshot\n"
    assert os.listdir(workdir) == ["old.json"]


def test_output_file_is_written_atomically(target, workdir):
    out = os.path.join(workdir, "snap.json")
    with open(out, "w") as f:
        f.write("old")
    os.chmod(out, 0o640)
    r = run_cli("snapshot", target.pid, "-o", out)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    with open(out) as f:
        doc = json.load(f)
    assert doc["process"]["pid"] == target.pid
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640  # mode kept
    assert sorted(os.listdir(workdir)) == ["snap.json"]


def test_dev_null_is_written_not_replaced(target):
    r = run_cli("snapshot", target.pid, "-o", "/dev/null")
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_symlink_is_written_through(target, workdir):
    real = os.path.join(workdir, "real.json")
    with open(real, "w") as f:
        f.write("old")
    link = os.path.join(workdir, "link.json")
    os.symlink("real.json", link)
    r = run_cli("snapshot", target.pid, "-o", link)
    assert r.returncode == 0, r.stderr
    assert os.path.islink(link) and os.readlink(link) == "real.json"  # the link stays a link
    with open(real) as f:
        assert json.load(f)["process"]["pid"] == target.pid  # its target got the snapshot


@pytest.mark.nobody
@needs_root
def test_non_root_snapshot_marks_root_only_fields_unknown(nobody_target):
    r = run_cli("snapshot", nobody_target.pid, "--pages", user="nobody")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, snapshot_io.schema())
    caps = doc["capabilities"]
    assert caps["root"] is False and caps["pages"] is True
    assert caps["pfn_visible"] is False and caps["kpageflags"] is False and caps["kpagecount"] is False
    assert caps["notes"]
    assert doc["process"]["user"] == "nobody"
    counted = [v for v in doc["vmas"] if v.get("pages")]
    assert counted
    for v in counted:
        c = v["pages"]["counts"]
        assert c["thp"] is None and c["ksm"] is None and c["shared"] is None and c["dirty"] is None
        # PAGEMAP_SCAN reports the zero page without privileges; plain pagemap cannot
        assert (c["zero"] is None) == (not caps["pagemap_scan"])
        assert isinstance(c["present"], int)
    r = run_cli("snapshot", nobody_target.pid, user="nobody")  # and without --pages
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["capabilities"]["root"] is False


def test_snapshot_does_not_import_the_tui_or_heavy_libraries(target):
    code = (
        "import sys\n"
        "from vmainspect.cli import main\n"
        f"rc = main(['snapshot', '{target.pid}', '-o', '/dev/null'])\n"
        f"rc |= main(['maps', '{target.pid}'])\n"
        "bad = [m for m in ('textual', 'rich', 'psutil', 'elftools', 'numpy') if m in sys.modules]\n"
        "print(rc, bad)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO),
        timeout=120,
    )
    assert r.stdout.strip().splitlines()[-1] == "0 []", r.stdout + r.stderr
