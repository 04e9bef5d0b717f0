import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

IS_ROOT = os.geteuid() == 0


ROOT_ONLY_PAGES = "needs root: /proc/kpageflags, /proc/kpagecount and PFNs are root-only"


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.root`` (or ``root("why")``) tests skip when not root, saying why."""
    if IS_ROOT:
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
