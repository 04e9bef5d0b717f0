import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

IS_ROOT = os.geteuid() == 0

# A suite started in the background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT
# ignored, and so would every vmainspect it starts: the tests that press Ctrl+C on one would see
# it ignored. Catching SIGINT here gives the children the default disposition again (exec resets
# a caught signal, never an ignored one), as when the suite runs in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


ROOT_ONLY_PAGES = "needs root: /proc/kpageflags, /proc/kpagecount and PFNs are root-only"
NOBODY_CANNOT_READ = (
    "nobody cannot run this venv's Python on this checkout (a clone in a private home such as "
    "/root?): clone it where other users can read it to run the tests that run as nobody"
)


def nobody_can_run_this_python() -> bool:
    """As root: user nobody can run ``sys.executable`` and import the package and its
    dependencies from this checkout (not when the venv or the clone sits in a 0700 home)."""
    from targets import AS_NOBODY

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = [*AS_NOBODY, sys.executable, "-c", "import msgspec, textual, vmainspect"]
    env = dict(os.environ, PYTHONPATH=repo)
    return subprocess.run(probe, capture_output=True, cwd="/", env=env, timeout=60).returncode == 0


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.root`` (or ``root("why")``) tests skip when not root, saying why;
    ``@pytest.mark.nobody`` tests skip, as root, when nobody cannot run this Python here."""
    if IS_ROOT:
        marked = [item for item in items if item.get_closest_marker("nobody") is not None]
        if marked and not nobody_can_run_this_python():
            for item in marked:
                item.add_marker(pytest.mark.skip(reason=NOBODY_CANNOT_READ))
        return
    for item in items:
        marker = item.get_closest_marker("root")
        if marker is not None:
            why = f"needs root: {marker.args[0]}" if marker.args else ROOT_ONLY_PAGES
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def nobody_pythonpath():
    """A copy of the package that user nobody can read (a CI checkout may sit in a private home)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = tempfile.mkdtemp(prefix="vmainspect-pkg-")
    try:
        shutil.copytree(
            os.path.join(repo, "vmainspect"),
            os.path.join(root, "vmainspect"),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for d, _dirs, files in os.walk(root):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
