import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    skip_root = pytest.mark.skip(reason="needs root: /proc/kpageflags, /proc/kpagecount and PFNs are root-only")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip_root)
