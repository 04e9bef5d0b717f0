"""`vmainspect diff` of two snapshots of a spawned target, checked against the kernel's smaps;
recording without root; the recorder's progress line on a terminal; import hygiene."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import run_cli
from schema_check import validate as validate_schema
from schema_check import validate_recording
from targets import read_smaps_kb, spawn_target

from vmainspect.snapshot.collect import collect
from vmainspect.snapshot.io import save

PAGE = os.sysconf("SC_PAGE_SIZE")

# Stage 1: three private anonymous regions, partly touched.
# Stage 2: touch more of A; mprotect the first half of B read-only (a split);
#          unmap C; map D.
CHANGES = """
# regions inside a PROT_NONE reservation, with guard pages between them so the
# kernel cannot merge neighbours: A (32 pages), B (16), C (8)
base = libc.mmap(None, 128 * PAGE, 0, 0x22, -1, 0)
def fixed(off, n):
    return libc.mmap(base + off * PAGE, n * PAGE, 3, 0x32, -1, 0)
A, B, C = fixed(1, 32), fixed(40, 16), fixed(64, 8)
def touch(addr, first, n):
    ctypes.memset(addr + first * PAGE, 1, n * PAGE)
touch(A, 0, 4)
touch(B, 0, 16)
touch(C, 0, 8)
report.update(a=A, b=B, c=C)
checkpoint(report)
touch(A, 4, 16)                       # 16 more pages of A
libc.mprotect(B, 8 * PAGE, 1)         # B splits: read-only half + read-write half
libc.munmap(C, 8 * PAGE)              # C goes
D = fixed(80, 4)                      # D comes, half touched
touch(D, 0, 2)
report.update(d=D)
"""


def ranges(pid):
    return {(s, e): f for s, e, f in read_smaps_kb(pid)}


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("diff")
    with spawn_target(CHANGES) as t:
        k1 = ranges(t.pid)
        s1 = collect(t.pid, pages=True)
        t.resume_and_wait_stop()
        k2 = ranges(t.pid)
        s2 = collect(t.pid, pages=True)
        report = t.report
    save(s1, str(d / "a.json"))
    save(s2, str(d / "b.json"))
    return d / "a.json", d / "b.json", k1, k2, report


def test_diff_matches_the_kernel(two_snapshots):
    a, b, k1, k2, rep = two_snapshots
    res = run_cli("diff", str(a), str(b), "--json")
    assert res.returncode == 1, res.stderr
    d = json.loads(res.stdout)
    assert d["schema"] == "vmainspect/diff@1" and d["different"]
    validate_schema(d, "vmainspect/diff@1")  # the shipped schemas/diff-1.json
    by_b = {(v["b"]["start"], v["b"]["end"]): v for v in d["vmas"] if v["b"]}
    by_a = {(v["a"]["start"], v["a"]["end"]): v for v in d["vmas"] if v["a"] and not v["b"]}

    # every range the kernel shows only after (before) is reported added (removed) or as a resize
    only_after = set(k2) - set(k1)
    only_before = set(k1) - set(k2)
    reported_after = {r for r, v in by_b.items() if v["status"] == "added" or v["resized"]}
    reported_before = set(by_a) | {(v["a"]["start"], v["a"]["end"]) for v in by_b.values() if v["resized"]}
    assert only_after == reported_after
    assert only_before == reported_before

    # region A: same range, Rss grew by 16 pages, exactly as the kernel says; 16 absent -> anon
    ra = next(r for r in k2 if r[0] <= rep["a"] < r[1])
    va = by_b[ra]
    assert va["status"] == "changed" and not va["resized"]
    assert va["rss"]["delta"] == k2[ra]["Rss"] - k1[ra]["Rss"] == 16 * PAGE
    assert va["transitions"] == [{"from": "absent", "to": "anon", "pages": 16}]

    # region B: split by mprotect: the read-only half is a resized VMA with new permissions,
    # the other half an added VMA split from it; pages did not change state
    rb = next(r for r in k2 if r[0] <= rep["b"] < r[1])
    vb = by_b[rb]
    assert vb["resized"] and vb["perms_changed"] and vb["b"]["perms"] == "r--p"
    assert vb["rss"]["b"] == k2[rb]["Rss"] == 8 * PAGE
    assert vb["transitions"] == []

    # region C unmapped, D new: Rss as the kernel says
    rc = next(r for r in k1 if r[0] <= rep["c"] < r[1])
    assert by_a[rc]["status"] == "removed" and by_a[rc]["rss"]["delta"] == -k1[rc]["Rss"] == -8 * PAGE
    rd = next(r for r in k2 if r[0] <= rep["d"] < r[1])
    assert by_b[rd]["status"] == "added" and by_b[rd]["rss"]["b"] == k2[rd]["Rss"] == 2 * PAGE


def test_diff_table_and_identical(two_snapshots):
    a, b, *_ = two_snapshots
    res = run_cli("diff", str(a), str(b))
    assert res.returncode == 1 and "rw-p->r--p" in res.stdout and "absent->anon 16" in res.stdout
    same = run_cli("diff", str(a), str(a))
    assert same.returncode == 0 and "no differences" in same.stdout


def test_diff_bad_inputs(two_snapshots, tmp_path):
    a, *_ = two_snapshots
    (tmp_path / "junk").write_bytes(b"\x7fELF\x00\x00")
    (tmp_path / "cut.json").write_text(a.read_text()[:500])
    for args in (
        [str(a), str(tmp_path / "missing.json")],
        [str(a), str(tmp_path / "junk")],
        [str(a), str(tmp_path / "cut.json")],
        [str(a), f"{a}#2"],
    ):
        res = run_cli("diff", *args)
        assert res.returncode == 2, args
        assert res.stdout == "" and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


@pytest.mark.nobody
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start processes as nobody")
def test_record_without_root(nobody_dir):
    """As nobody, recording a process of nobody works; page flags are unknown (null), not zero."""
    out = nobody_dir / "nobody.jsonl"
    with spawn_target(CHANGES, user="65534") as t:  # numeric: Debian has no group "nobody"
        res = run_cli(
            "record",
            t.pid,
            "-o",
            out,
            "--interval",
            "0.1",
            "--duration",
            "0.3",
            "--pages",
            user="nobody",
            timeout=60,
        )
        kernel = ranges(t.pid)
    assert res.returncode == 0, res.stderr
    from vmainspect.recording.io import read_recording

    r = read_recording(str(out))
    assert validate_recording(str(out)) == len(r)  # nulls where root is needed: still valid
    s = r.snapshot(-1)
    assert not s.capabilities.root and s.capabilities.kpageflags in (False, None)
    v = s.vma_at(t.report["a"])
    assert v.smaps["rss"] == kernel[(v.start, v.end)]["Rss"] == 4 * PAGE  # the target is stopped
    assert v.pages is not None and v.pages.counts.dirty is None
    res = run_cli("diff", f"{out}#1", f"{out}#-1", "--json")
    assert res.returncode in (0, 1) and json.loads(res.stdout)["a"]["pages"] is True
    validate_schema(json.loads(res.stdout), "vmainspect/diff@1")


def test_progress_line_on_a_terminal(tmp_path):
    out = tmp_path / "tty.jsonl"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    master, slave = pty.openpty()
    try:
        rec = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vmainspect",
                "record",
                str(child.pid),
                "-o",
                str(out),
                "--interval",
                "0.1",
                "--no-faults",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        buf = b""
        deadline = time.monotonic() + 30
        while b"frames" not in buf or buf.count(b"\r") < 3:
            assert time.monotonic() < deadline, buf
            r, _, _ = select.select([master], [], [], 1.0)
            if r:
                buf += os.read(master, 4096)
        rec.send_signal(signal.SIGINT)
        assert rec.wait(30) == 0
        try:
            while True:
                r, _, _ = select.select([master], [], [], 0.5)
                if not r:
                    break
                buf += os.read(master, 4096)
        except OSError:
            pass
    finally:
        child.kill()
        child.wait()
        os.close(master)
    text = buf.decode(errors="replace")
    assert f"recording pid {child.pid}" in text and "Ctrl+C" in text
    assert "stopped by SIGINT" in text


def test_import_hygiene():
    """diff and the recording reader import neither textual nor the collector."""
    code = (
        "import sys\n"
        "from vmainspect import cli\n"
        "import vmainspect.recording.io, vmainspect.snapshot.diff, vmainspect.commands.diff\n"
        "cli.build_parser()\n"
        "bad = [m for m in ('textual', 'vmainspect.snapshot.collect') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
