"""Fixtures shared by the system tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from pages_target import MAIN, _cleanup, read_both, vmas_of
from targets import read_smaps_kb, spawn_target


@pytest.fixture(scope="module")
def main_target():
    """The stopped page-state target (pages_target.MAIN), one per test module."""
    t = spawn_target(MAIN)
    try:
        yield t
    finally:
        _cleanup(t)


@pytest.fixture(scope="module")
def main_view(main_target):
    """(vmas, scan result, pagemap result, smaps by start) of the stopped main target."""
    pid = main_target.pid
    vmas = vmas_of(pid)
    scan, plain = read_both(pid, vmas)
    smaps = {s: d for s, _, d in read_smaps_kb(pid)}
    return vmas, scan, plain, smaps


@pytest.fixture
def nobody_dir():
    """A folder nobody can write (pytest's tmp_path lives under a root-only folder)."""
    d = tempfile.mkdtemp(prefix="vmainspect-nobody-")
    os.chmod(d, 0o777)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def folder():
    """A fresh folder on a disk file system (/var/tmp: /tmp may be tmpfs, whose page cache is
    shmem) that every user can read."""
    d = tempfile.mkdtemp(prefix="vmainspect-files-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)
