"""`vmainspect maps`: the table against the kernel's maps and smaps_rollup."""

from __future__ import annotations

import os
import re

import pytest
from cli_helpers import free_pid, one_line_error, run_cli
from targets import spawn_target

from vmainspect.units import human_bytes

ROOT = os.geteuid() == 0

CODE = """
buf = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE)
for i in range(0, 64, 2):
    buf[i * PAGE] = 1
report["big"] = addr_of(buf)
guard = libc.mmap(None, 3 * PAGE, 0, 0x22, -1, 0)
report["guard"] = guard
"""


@pytest.fixture(scope="module")
def target():
    with spawn_target(CODE) as t:
        yield t


@pytest.fixture(scope="module")
def table(target):
    r = run_cli("maps", target.pid)
    assert r.returncode == 0, r.stderr
    return r.stdout


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[name] = int(rest.split()[0]) * 1024
    return out


def rows(text):
    """The VMA rows: start and end in hex (any width: a non-PIE executable sits at 0x400000), then perms."""
    return [
        line for line in text.splitlines() if re.match(r"^ *[0-9a-f]+ +[0-9a-f]+ [r-][w-][x-][ps] ", line)
    ]


def test_one_row_per_vma_in_address_order(target, table):
    with open(f"/proc/{target.pid}/maps") as f:
        maps = f.read().splitlines()
    got = rows(table)
    assert len(got) == len(maps)
    for line, m in zip(got, maps):
        start, end, perms = line.split()[:3]
        rng, mperms = m.split()[:2]
        assert (int(start, 16), int(end, 16), perms) == tuple([int(x, 16) for x in rng.split("-")] + [mperms])
        path = m.split(None, 5)[5] if len(m.split(None, 5)) == 6 else ""
        assert line.endswith("  " + path) if path else True


def test_big_region_row(target, table):
    addr = target.report["big"]
    line = next(r for r in rows(table) if int(r.split()[0], 16) == addr)
    f = line.split()
    assert f[3] == "anon-private"
    assert f[4] == human_bytes(64 * 4096) == "256K"
    assert f[5] == human_bytes(32 * 4096) == "128K"  # RSS: every other page written
    assert f[7] == "128K"  # dirty


def test_totals_line_is_smaps_rollup(target, table):
    total = [line for line in table.splitlines() if line.startswith("total")]
    assert len(total) == 1
    f = total[0].split()
    k = rollup(target.pid)
    assert f[2] == human_bytes(k["Rss"])
    assert f[4] == human_bytes(k["Shared_Dirty"] + k["Private_Dirty"])
    assert f[5] == human_bytes(k["Swap"])
    assert f"{len(rows(table))} VMAs (smaps_rollup)" in total[0]


def test_sort_and_kind_filter(target):
    r = run_cli("maps", target.pid, "--sort", "size")
    assert r.returncode == 0
    sizes = [int(r2.split()[1], 16) - int(r2.split()[0], 16) for r2 in rows(r.stdout)]
    assert sizes == sorted(sizes, reverse=True)
    r = run_cli("maps", target.pid, "--kind", "guard")
    assert r.returncode == 0
    got = rows(r.stdout)
    assert got and all(line.split()[3] == "guard" for line in got)
    assert any(int(line.split()[0], 16) <= target.report["guard"] < int(line.split()[1], 16) for line in got)
    r = run_cli("maps", target.pid, "--kind", "file,anon")
    kinds = {line.split()[3] for line in rows(r.stdout)}
    assert kinds and kinds <= {"file-private", "file-shared", "anon-private", "anon-shared"}
    assert "shown" in r.stdout


def test_bad_input():
    r = run_cli("maps", "xyz")
    assert r.returncode == 2
    assert (
        one_line_error(r)
        == "vmainspect maps: argument PID: not a process id: 'xyz' (see 'vmainspect maps --help')"
    )
    r = run_cli("maps", free_pid())
    assert r.returncode == 3 and "does not exist" in one_line_error(r)
    r = run_cli("maps", "1", "--kind", "bogus")
    assert r.returncode == 2 and "unknown kind" in one_line_error(r)


def test_kernel_thread():
    r = run_cli("maps", 2)
    assert r.returncode == 0, r.stderr
    assert "no VMAs" in r.stdout and "kernel thread" in r.stdout


@pytest.mark.nobody
@pytest.mark.skipif(not ROOT, reason="needs root: runs vmainspect as nobody via setpriv")
def test_not_root_note_and_denied(target):
    r = run_cli("maps", target.pid, user="nobody")
    assert r.returncode == 4 and "permission denied" in one_line_error(r)
    with spawn_target(CODE, user="65534") as mine:
        r = run_cli("maps", mine.pid, user="nobody")
        assert r.returncode == 0, r.stderr
        assert len(rows(r.stdout)) > 5
        assert r.stderr == ""  # the not-root note only with -v
        r = run_cli("maps", mine.pid, "-v", user="nobody")
        assert r.returncode == 0 and "not root" in one_line_error(r)
