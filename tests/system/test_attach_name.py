"""``attach --name`` and ``serve attach --name`` leave out the processes that launched vmainspect.

A launcher's command line holds vmainspect's, the pattern included (``sudo vmainspect attach
--name postgres``, ``timeout 60 ...``, ``sh -c '...'``): it matched every pattern, so a typo
attached to sudo, and ``serve attach --name`` refused two matches where there was one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cli_helpers import REPO

CODE = """
import json, sys
from vmainspect.commands.serve import _check_attach
from vmainspect.tui.proclist import list_processes, match
pattern = sys.argv[1]
print(json.dumps({
    "name": [r.pid for r in match(list_processes(), pattern)],
    "with_self": [r.pid for r in match(list_processes(include_self=True), pattern)],
    "serve": _check_attach(["--name", pattern], False)[0],
}))
"""


def test_the_launchers_of_vmainspect_are_not_candidates():
    target = subprocess.Popen(["sleep", "600.125"])  # an argument no other process has
    try:
        pattern = "sleep 600.125"
        # a shell that stays (not exec'd: "; true") and runs this code with the pattern in argv,
        # as `sudo vmainspect attach --name PATTERN` does
        launcher = subprocess.run(
            ["sh", "-c", '"$@"; true', "sh", sys.executable, "-c", CODE, pattern],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=REPO),
        )
    finally:
        target.kill()
        target.wait()
    assert launcher.returncode == 0, launcher.stderr
    got = json.loads(launcher.stdout)
    assert got["name"] == [target.pid]
    assert got["serve"] == str(target.pid)
    # the shell matched (its command line holds the pattern): left out only as a launcher
    assert target.pid in got["with_self"] and len(got["with_self"]) >= 2
