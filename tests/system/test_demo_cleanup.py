"""The demo workload: acts only when told, and never outlives vmainspect.

Every way out (close, exception, SIGHUP, SIGINT, vmainspect SIGKILLed) must
end the workload and its children and, except for SIGKILL, remove the temp
folder; a folder left by a SIGKILLed vmainspect is removed by the next demo.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from demo_procs import end, gone, temp_folders, workloads

from vmainspect.demo.control import PREFIX, DemoSession, WorkloadError, remove_stale
from vmainspect.snapshot.collect import collect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _wait_for(fn, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.01)
    raise TimeoutError


@pytest.fixture
def session():
    s = DemoSession()
    yield s
    s.close()


def test_workload_changes_nothing_on_its_own(session):
    r = session.request("anon", len=1 << 20)
    session.request("touch", addr=r["addr"], len=1 << 20, every=4)
    a = collect(session.pid, pages=True)
    time.sleep(0.3)
    b = collect(session.pid, pages=True)
    assert [(v.start, v.end, v.perms) for v in a.vmas] == [(v.start, v.end, v.perms) for v in b.vmas]
    assert (a.process.minor_faults, a.process.major_faults) == (
        b.process.minor_faults,
        b.process.major_faults,
    )
    va, vb = a.vma_at(r["addr"]), b.vma_at(r["addr"])
    assert va.pages.runs == vb.pages.runs and va.pages.counts.present == 64


def test_bad_commands_are_errors_and_the_workload_survives(session):
    with pytest.raises(WorkloadError, match="unknown op"):
        session.request("format-disk")
    with pytest.raises(WorkloadError, match="munmap"):
        session.request("munmap", addr=12345, len=4096)  # EINVAL: not page aligned
    assert session.request("anon", len=4096)["ok"]


def test_close_kills_workload_and_its_children_and_removes_the_folder():
    s = DemoSession()
    r = s.request("anon", len=1 << 16)
    child = s.request("fork", addr=r["addr"], len=1 << 16)["info"]["child"]
    folder, pid = s.dir, s.pid
    assert os.path.isdir(folder) and psutil.pid_exists(child)
    s.close()
    assert gone(pid) and gone(child)
    assert not os.path.exists(folder)
    s.close()  # idempotent


def test_exception_inside_the_session_still_cleans_up():
    with pytest.raises(RuntimeError), DemoSession() as s:
        folder, pid = s.dir, s.pid
        raise RuntimeError("boom")
    assert gone(pid) and not os.path.exists(folder)


DRIVER = textwrap.dedent("""
    import json, sys, time
    from vmainspect.demo.control import DemoSession
    s = DemoSession()
    r = s.request("anon", len=65536)
    kid = s.request("fork", addr=r["addr"], len=65536)["info"]["child"]
    print(json.dumps({"pid": s.pid, "child": kid, "dir": s.dir}), flush=True)
    time.sleep(60)
""")


def test_sigkill_of_vmainspect_kills_the_workload_and_the_next_demo_removes_the_folder():
    p = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        import json

        info = json.loads(p.stdout.readline())
        p.kill()
        p.wait()
        assert gone(info["pid"]) and gone(info["child"])  # PR_SET_PDEATHSIG
        assert os.path.isdir(info["dir"])  # nobody could remove it...
        removed = remove_stale(os.path.dirname(info["dir"]))
        assert info["dir"] in removed and not os.path.exists(info["dir"])  # ...until the next demo
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def test_remove_stale_keeps_folders_of_live_processes(tmp_path):
    mine = tmp_path / f"{PREFIX}{os.getpid()}-x"
    dead = tmp_path / f"{PREFIX}999999999-y"
    other = tmp_path / "vmainspect-other"
    for d in (mine, dead, other):
        d.mkdir()
    assert remove_stale(str(tmp_path)) == [str(dead)]
    assert mine.exists() and other.exists()


@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGHUP, 128 + signal.SIGHUP), (signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)],
)
def test_script_signal_ends_workload_and_removes_folder(sig, code):
    p = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "demo", "--script", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        proc = psutil.Process(p.pid)
        work = _wait_for(lambda: workloads(proc))[0]
        folders = temp_folders(p.pid)
        assert folders
        os.kill(p.pid, sig)
        p.wait(30)
        assert p.returncode == code, p.stderr.read()
        assert gone(work.pid)
        assert not temp_folders(p.pid)
        assert b"Traceback" not in p.stderr.read()
    finally:
        end(p)


def test_script_with_a_killed_workload_is_one_line_and_cleans_up():
    p = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "demo", "--script"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        work = _wait_for(lambda: workloads(psutil.Process(p.pid)))[0]
        # Stopped, the script can neither finish nor end the workload itself: the kill lands mid-run.
        os.kill(p.pid, signal.SIGSTOP)
        try:
            work.kill()
        finally:
            os.kill(p.pid, signal.SIGCONT)
        _, err = p.communicate(timeout=60)
        # 1: the workload's pipe broke; 3 (ProcessGone): a snapshot found it gone
        assert p.returncode in (1, 3), err
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "exited" in lines[0], lines
        assert not temp_folders(p.pid)
    finally:
        end(p)


def test_on_tmpfs_the_cold_read_claim_is_unknown_not_false(monkeypatch):
    """tmpfs pages cannot be evicted: no major faults to show, and the step says so."""
    from vmainspect.demo import control
    from vmainspect.demo.lesson import Lesson

    if control._fs_type("/dev/shm") != control.TMPFS_MAGIC:
        pytest.skip("/dev/shm is not tmpfs here")
    monkeypatch.setattr(control, "temp_root", lambda: "/dev/shm")
    with Lesson() as lesson:
        assert lesson.session.on_tmpfs and lesson.session.dir.startswith("/dev/shm/")
        results = [lesson.run_step() for _ in range(4)]
        folder = lesson.session.dir
    cold = results[3]
    assert cold.step.id == "cold-file-read"
    assert cold.holds is None and "tmpfs" in cold.reason
    assert cold.measured["tmpfs"] is True
    assert not os.path.exists(folder)
