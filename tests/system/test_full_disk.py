"""A full disk and a full or closed stdout: one line, exit code 5, nothing on disk lost.

The full disk is a 1 MiB tmpfs, filled, mounted in a private mount namespace
(`unshare -m`, root only) by full_disk_driver.py; stdout is /dev/full or closed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from cli_helpers import REPO, run_cli

from vmainspect.errors import EXIT_OUTPUT

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def target():
    p = subprocess.Popen(["sleep", "600"])
    yield p.pid
    p.kill()
    p.wait()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root to mount a tmpfs")
def test_full_disk(target, tmp_path):
    rec, snap = tmp_path / "rec.jsonl", tmp_path / "snap.json"
    assert run_cli("record", target, "-o", rec, "--duration", "0.2", "--interval", "0.1").returncode == 0
    assert run_cli("snapshot", target, "-o", snap).returncode == 0
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            os.path.join(HERE, "full_disk_driver.py"),
        ]
        + [str(mnt), str(target), str(rec), str(snap)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("snapshot_new", "snapshot_replace", "record_force", "record_new"):
        res = out[key]
        assert res["rc"] == EXIT_OUTPUT, (key, res)
        assert res["err"].count("\n") == 1 and "No space left on device" in res["err"], (key, res)
    assert out["old_rec_same"], "record --force on a full disk changed the old recording"
    assert out["old_snap_same"], "snapshot on a full disk changed the old snapshot"
    assert out["new_json"] is None
    # no temporary file left behind; new.jsonl holds what fitted (a killed recorder's rule)
    assert [f for f in out["files"] if f.startswith(".vmainspect-")] == []


@pytest.mark.parametrize(
    "cmd", [("snapshot",), ("maps",), ("faults", "--duration", "0.2"), ("--help",), ("--version",)]
)
def test_stdout_full_or_closed(target, cmd):
    args = [*cmd[:1], str(target), *cmd[1:]] if not cmd[0].startswith("--") else [cmd[0]]
    base = [sys.executable, "-m", "vmainspect", *args]
    env = dict(os.environ, PYTHONPATH=REPO)
    # stdout block-buffered as a user has it: PYTHONUNBUFFERED (set in some CI and dev shells)
    # made every write fail at once and hid a failure left to the interpreter's flush at exit
    env.pop("PYTHONUNBUFFERED", None)
    with open("/dev/full", "w") as full:
        r = subprocess.run(base, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert r.returncode == EXIT_OUTPUT and r.stderr == (
        "vmainspect: cannot write to standard output: No space left on device\n"
    ), r.stderr
    r = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *base], stderr=subprocess.PIPE, text=True, env=env, timeout=120
    )
    assert (
        r.returncode == EXIT_OUTPUT
        and r.stderr == "vmainspect: cannot write to standard output: it is closed\n"
    )


def test_diff_to_a_full_stdout(target, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for p in (a, b):
        assert run_cli("snapshot", target, "-o", p).returncode == 0
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "vmainspect", "diff", str(a), str(b)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO),
            timeout=120,
        )
    assert r.returncode == EXIT_OUTPUT and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
