"""Fixtures for the TUI tests (their helpers are in tui_helpers.py, which test
modules import by a name no other test folder uses).

``async def`` tests run under pytest-asyncio (``asyncio_mode = "auto"`` in
pyproject.toml), as Textual's testing guide recommends; each gets its own
event loop.
"""

from __future__ import annotations

import pytest
from tui_helpers import (  # noqa: F401  (re-exported for tests still importing conftest; use tui_helpers)
    fixed_describe,
    fixture_path,
    make_app,
    next_frame,
    wait_frames,
)

from vmainspect.snapshot import io as snapshot_io


@pytest.fixture(scope="session")
def small():
    return snapshot_io.load(fixture_path("small"))


@pytest.fixture(scope="session")
def small_nonroot():
    return snapshot_io.load(fixture_path("small-nonroot"))
