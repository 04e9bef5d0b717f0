"""A process that wrote 8 pages of a file through MAP_SHARED and stopped.

Used by the page-cache tests (cache, snapshot files, TUI). As root the
process runs as nobody (the checks are meant for an unprivileged user); the
file lives in a folder on a disk-backed file system, owned by that user.
Each checkpoint writes the 8 pages again, so a test that saw a sync clean
them (a concurrent test may run sync) can re-dirty them and measure again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from kernel_cache import kernel_cachestat
from targets import spawn_target

ROOT = os.geteuid() == 0
NOBODY = 65534
FILE_PAGES = 16
WRITTEN = (0, 1, 2, 3, 8, 9, 10, 11)

CODE = r"""
path = PATH
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, NPAGES * PAGE)
os.fsync(fd)
m = mmap.mmap(fd, NPAGES * PAGE, flags=mmap.MAP_SHARED)
os.close(fd)
report["path"] = path
report["addr"] = addr_of(m)
report["pages"] = NPAGES
round_ = 0
while True:
    round_ += 1
    for p in WRITTEN:
        m[p * PAGE] = 65 + round_ % 26
    report["round"] = round_
    checkpoint(report)
"""


@contextlib.contextmanager
def dirty_target():
    """(target, path): the target is stopped right after writing the 8 pages."""
    folder = tempfile.mkdtemp(prefix="vmainspect-dirty-", dir="/var/tmp")
    try:
        os.chmod(folder, 0o755)
        if ROOT:
            os.chown(folder, NOBODY, NOBODY)
        path = os.path.join(folder, "written.dat")
        code = CODE.replace("PATH", repr(path)).replace("NPAGES", str(FILE_PAGES))
        code = code.replace("WRITTEN", repr(WRITTEN))
        with spawn_target(code, user=str(NOBODY) if ROOT else None) as t:
            yield t, path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure_dirty(target, path: str, measure, attempts: int = 5):
    """Run ``measure()`` between two kernel reads of ``path``'s dirty count; return
    (result, dirty_before, dirty_after) from the first attempt in which the kernel still
    counted all 8 written pages dirty after ``measure`` (re-dirtying between attempts)."""
    for _ in range(attempts):
        before = kernel_cachestat(path)["dirty"]
        result = measure()
        after = kernel_cachestat(path)["dirty"]
        if after >= len(WRITTEN):
            return result, before, after
        target.resume_and_wait_stop()
    raise AssertionError("the written pages were cleaned (sync?) during every attempt")
