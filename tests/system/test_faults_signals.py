"""faults and the signals that end it: SIGTERM ends the run with a report; a SIGINT that was
ignored when it started (nohup, a background job) stays ignored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from cli_helpers import REPO, faults_cli_sampling


def test_an_ignored_sigint_stays_ignored_sigterm_reports():
    target = subprocess.Popen(["sleep", "600"])
    cli = subprocess.Popen(
        [sys.executable, "-m", "vmainspect", "faults", str(target.pid), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        for _ in range(1200):  # bounded wait for the sampling loop
            if faults_cli_sampling(cli.pid) or cli.poll() is not None:
                break
            time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        # still sampling after the SIGINT: wait for a tick to pass (its sleep ends, a new one starts)
        for _ in range(200):
            if not faults_cli_sampling(cli.pid) or cli.poll() is not None:
                break
            time.sleep(0.02)
        for _ in range(1200):
            if faults_cli_sampling(cli.pid) or cli.poll() is not None:
                break
            time.sleep(0.05)
        assert cli.poll() is None, cli.stderr.read() if cli.stderr else ""
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        target.kill()
        target.wait()
    assert cli.returncode == 0, err
    doc = json.loads(out)
    assert any(n.startswith("interrupted after") for n in doc["notes"])
