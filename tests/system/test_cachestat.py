"""procfs/cachestat.py, procfs/mapped.py and procfs/meminfo.py against the kernel."""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys

import pytest
from kernel_cache import have_cachestat, kernel_cachestat, write_file

from vmainspect.procfs import cachestat as cs
from vmainspect.procfs.mapped import MappedFileUnavailable, open_mapped_file, parse_dev, same_file
from vmainspect.procfs.meminfo import parse_centisecs, parse_meminfo, read_writeback
from vmainspect.procfs.reader import ProcReader

PAGE = mmap.PAGESIZE
ROOT = os.geteuid() == 0
needs_cachestat = pytest.mark.skipif(
    not have_cachestat(), reason="this kernel has no cachestat (Linux < 6.5)"
)


def _dirty_pages(path: str, pages: list[int]) -> None:
    """Write one byte to each of ``pages`` through a MAP_SHARED mapping (then unmap)."""
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        for p in pages:
            m[p * PAGE] = ord("X")


@needs_cachestat
def test_dirty_pages_counted_like_the_kernel(folder):
    path = os.path.join(folder, "f")
    write_file(path, 32)
    for _attempt in range(5):  # a sync elsewhere on the machine may clean the pages between reads
        _dirty_pages(path, list(range(0, 32, 4)))
        before = kernel_cachestat(path)
        ours = cs.page_cache_of(path)
        after = kernel_cachestat(path)
        assert ours.source == cs.SOURCE_CACHESTAT
        assert before["dirty"] >= ours.dirty >= after["dirty"]  # nothing writes in between: only falls
        assert ours.cached == before["cache"] == after["cache"] == 32
        if after["dirty"] >= 8:
            assert ours.dirty >= 8
            break
    else:
        pytest.fail("the 8 written pages never stayed dirty for three reads")
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
    synced = cs.page_cache_of(path)
    assert synced.dirty == 0 and synced.writeback is not None and synced.cached == 32


@needs_cachestat
def test_a_range_and_eviction(folder):
    path = os.path.join(folder, "f")
    write_file(path, 16)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 8 * PAGE, os.POSIX_FADV_DONTNEED)
        whole = cs.page_cache(fd)
        first = cs.page_cache(fd, 0, 8 * PAGE)
        last = cs.page_cache(fd, 8 * PAGE, 8 * PAGE)
        k = kernel_cachestat(path)
        assert (whole.cached, whole.evicted) == (k["cache"], k["evicted"])
        assert first.cached + last.cached == whole.cached
        assert last.cached == kernel_cachestat(path, 8 * PAGE, 8 * PAGE)["cache"]
        assert first.evicted == kernel_cachestat(path, 0, 8 * PAGE)["evicted"]
        assert first + last == whole
    finally:
        os.close(fd)


def test_mincore_fallback_counts_residency_only(folder, monkeypatch):
    path = os.path.join(folder, "f")
    write_file(path, 16)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.pread(fd, 3 * PAGE, 4 * PAGE)  # pages 4..6 back in the cache (maybe with readahead)
        monkeypatch.setitem(cs._state, "have", False)  # as on a kernel without cachestat
        got = cs.page_cache(fd)
        assert got.source == cs.SOURCE_MINCORE
        assert (got.dirty, got.writeback, got.evicted, got.recently_evicted) == (None,) * 4
        monkeypatch.setitem(cs._state, "have", None)
        if have_cachestat():
            assert got.cached == kernel_cachestat(path)["cache"]
        assert got.cached >= 3
        assert cs.mincore_resident(fd, 4 * PAGE, PAGE) == 1
    finally:
        os.close(fd)


def test_syscall_numbers():
    assert cs.syscall_number("x86_64") == cs.syscall_number("aarch64") == 451
    assert cs.syscall_number("alpha") == 561
    assert cs.syscall_number("mips") is None  # three ABIs, three numbers: the fallback is used


def test_errors_are_oserrors(folder):
    with pytest.raises(OSError) as e:
        cs.page_cache(987654)
    assert e.value.errno == errno.EBADF


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(not ROOT, reason="needs root: runs as nobody via setpriv")
def test_as_nobody_refused_for_others_files_never_a_false_count(folder, nobody_pythonpath):
    """The kernel refuses cachestat on a file nobody neither owns nor may write; mincore
    would claim every page resident (docs/kernel-notes.md): both give EPERM, never a number."""
    mine = os.path.join(folder, "mine")
    write_file(mine, 4)
    os.chown(mine, 65534, 65534)
    theirs = os.path.join(folder, "theirs")
    write_file(theirs, 4)
    os.chmod(theirs, 0o644)
    os.posix_fadvise(os.open(theirs, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
    code = (
        "import errno, sys\n"
        "from vmainspect.procfs import cachestat as cs\n"
        "print(cs.page_cache_of(sys.argv[1]).cached)\n"
        "theirs = open(sys.argv[2], 'rb')\n"
        "for f in (lambda: cs.page_cache_of(sys.argv[2]), lambda: cs.mincore_resident(theirs.fileno())):\n"
        "    try:\n"
        "        f(); print('answered')\n"
        "    except OSError as e:\n"
        "        print(errno.errorcode[e.errno])\n"
    )
    r = subprocess.run(
        [*NOBODY, sys.executable, "-c", code, mine, theirs],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=nobody_pythonpath),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == str(kernel_cachestat(mine)["cache"])
    assert lines[1:] == ["EPERM", "EPERM"]


# -- mapped files ---------------------------------------------------------


def _maps_line(pid: int, path: str) -> tuple[int, int, str, int]:
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() == path:
                s, e = parts[0].split("-")
                return int(s, 16), int(e, 16), parts[3], int(parts[4])
    raise AssertionError(f"{path} not mapped")


def test_open_mapped_file_checks_device_and_inode(folder):
    path = os.path.join(folder, "f")
    write_file(path, 4)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as _m:
        start, end, dev, inode = _maps_line(os.getpid(), path)
        reader = ProcReader(os.getpid())
        fd, st = open_mapped_file(reader, start, end, dev, inode, path)
        try:
            assert os.fstat(fd).st_ino == os.stat(path).st_ino == st.st_ino
        finally:
            os.close(fd)
        # replaced at its path: the new file is not the mapped one
        os.rename(path, path + ".old")
        write_file(path, 4)
        if ROOT:  # map_files still reaches the mapped file
            fd, st = open_mapped_file(reader, start, end, dev, inode, path)
            assert st.st_ino == inode
            os.close(fd)
        else:
            with pytest.raises(MappedFileUnavailable, match="replaced"):
                open_mapped_file(reader, start, end, dev, inode, path)
        # a FIFO in its place is never opened (O_PATH first), only refused
        os.unlink(path)
        os.mkfifo(path)
        if not ROOT:
            with pytest.raises(MappedFileUnavailable, match="regular file"):
                open_mapped_file(reader, start, end, dev, inode, path)


def test_parse_dev_and_same_file(folder):
    assert parse_dev("fe:01") == (254, 1)
    assert parse_dev("103:0a") == (259, 10)
    assert parse_dev("junk") is None and parse_dev("zz:00") is None
    st = os.stat(folder)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    assert same_file(st, dev, st.st_ino)
    assert not same_file(st, dev, st.st_ino + 1)
    assert not same_file(st, "00:00", st.st_ino)


# -- meminfo ----------------------------------------------------------------


def test_parse_meminfo():
    raw = (
        b"MemTotal:       24683792 kB\nDirty:             1024 kB\nHugePages_Total:       3\nodd line\nX: y\n"
    )
    assert parse_meminfo(raw) == {"MemTotal": 24683792 * 1024, "Dirty": 1024 * 1024, "HugePages_Total": 3}
    assert parse_centisecs(b"3000\n") == 30.0
    assert parse_centisecs(b"-1\n") is None


def test_read_writeback_matches_proc():
    wb = read_writeback()
    with open("/proc/sys/vm/dirty_expire_centisecs") as f:
        assert wb.dirty_expire_s == int(f.read()) / 100
    with open("/proc/sys/vm/dirty_writeback_centisecs") as f:
        assert wb.dirty_writeback_s == int(f.read()) / 100
    assert wb.dirty is not None and wb.dirty % 1024 == 0 and wb.writeback is not None


def test_read_writeback_unreadable_is_none(tmp_path):
    wb = read_writeback(str(tmp_path))
    assert wb == type(wb)(None, None, None, None)
