"""collect() against the kernel: a stopped target with known mappings, compared with
the kernel's own smaps (read naively by tests/targets.read_smaps_kb) and smaps_rollup."""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from known_mappings import KNOWN_MAPPINGS
from targets import after_reading, read_smaps_kb, spawn_target

from vmainspect.errors import ProcessGone
from vmainspect.model import (
    ANON,
    KIND_ANON_PRIVATE,
    KIND_ANON_SHARED,
    KIND_DELETED,
    KIND_FILE_PRIVATE,
    KIND_FILE_SHARED,
    KIND_GUARD,
    KIND_SHM,
)
from vmainspect.procfs.vmflags import VMFLAG_MEANINGS
from vmainspect.snapshot.collect import collect

PAGE = mmap.PAGESIZE

# The kernel's field names, spelled out here (not taken from the code under test).
KERNEL_NAMES = {
    "Size": "size",
    "KernelPageSize": "kernel_page_size",
    "MMUPageSize": "mmu_page_size",
    "Rss": "rss",
    "Pss": "pss",
    "Pss_Dirty": "pss_dirty",
    "Pss_Anon": "pss_anon",
    "Pss_File": "pss_file",
    "Pss_Shmem": "pss_shmem",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty",
    "Referenced": "referenced",
    "Anonymous": "anonymous",
    "KSM": "ksm",
    "LazyFree": "lazy_free",
    "AnonHugePages": "anon_huge_pages",
    "ShmemPmdMapped": "shmem_pmd_mapped",
    "FilePmdMapped": "file_pmd_mapped",
    "Shared_Hugetlb": "shared_hugetlb",
    "Private_Hugetlb": "private_hugetlb",
    "Swap": "swap",
    "SwapPss": "swap_pss",
    "Locked": "locked",
    "THPeligible": "thp_eligible",
    "ProtectionKey": "protection_key",
}


def kernel_vmas(pid):
    return [(s, e, {KERNEL_NAMES[k]: v for k, v in f.items()}) for s, e, f in read_smaps_kb(pid)]


def kernel_rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[KERNEL_NAMES[name]] = int(parts[0]) * 1024
    return out


def kernel_vmflags(pid):
    with open(f"/proc/{pid}/smaps") as f:
        return [tuple(line.split()[1:]) for line in f if line.startswith("VmFlags:")]


@pytest.fixture(scope="module")
def target():
    work = tempfile.mkdtemp(prefix="vmainspect test ")
    t = spawn_target(f"WORKDIR = {work!r}\n" + KNOWN_MAPPINGS)
    try:
        yield t
    finally:
        t.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def snap(target):
    return collect(target.pid)


def vma_at(snap, addr):
    v = snap.vma_at(addr)
    assert v is not None, hex(addr)
    return v


PSS_KEYS = ("pss", "pss_dirty", "pss_anon", "pss_file", "pss_shmem", "swap_pss")


def settled(read_both, tries=10):
    """Read ours and the kernel's until they agree, return the last pair.

    The target is stopped, but the PSS of *shared* pages (libc, libpython)
    moves whenever any other process maps or unmaps them, and two reads of
    /proc cannot be atomic. Agreement on one of a few tries is the usual
    outcome; ``without_racy_pss`` handles a machine too busy for that.
    """
    for _ in range(tries):
        ours, theirs = read_both()
        if ours == theirs:
            break
    return ours, theirs


def without_racy_pss(fields: dict, other: dict | None = None) -> dict:
    """The fields, minus what other processes change where the kernel reports
    shared pages: PSS (private + shared / mapcount) and the shared/private split
    (a library page is private until another process maps it). Clean and dirty
    totals (shared + private) stay compared; one smaps read is compared field by
    field, with no race, in test_every_field_of_one_smaps_read_exactly."""

    def shared(f: dict) -> int:
        return f.get("shared_clean", 0) + f.get("shared_dirty", 0)

    if shared(fields) == 0 and (other is None or shared(other) == 0):
        return dict(fields)
    out = {k: v for k, v in fields.items() if k not in PSS_KEYS}
    for kind in ("clean", "dirty"):
        out[kind] = out.pop(f"shared_{kind}", 0) + out.pop(f"private_{kind}", 0)
    return out


def naive_smaps(raw: bytes) -> list[tuple[int, int, dict[str, int]]]:
    """The simplest reading of smaps text (like targets.read_smaps_kb, from bytes)."""
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        head, _, rest = line.partition(" ")
        if "-" in head and not head.endswith(":"):
            s, e = head.split("-")
            out.append((int(s, 16), int(e, 16), {}))
        elif head.endswith(":") and head != "VmFlags:":
            parts = rest.split()
            out[-1][2][KERNEL_NAMES[head[:-1]]] = int(parts[0]) * (1024 if parts[-1] == "kB" else 1)
    return out


def test_every_field_of_one_smaps_read_exactly(target):
    """One read of the kernel's smaps, parsed by vmainspect and naively: no race at all."""
    from vmainspect.procfs.parse import parse_smaps

    with open(f"/proc/{target.pid}/smaps", "rb") as f:
        raw = f.read()
    assert [(v.start, v.end, dict(v.smaps)) for v in parse_smaps(raw)] == naive_smaps(raw)


def test_every_vma_and_every_field_equals_the_kernels(target):
    def both():
        s = collect(target.pid)
        return ([(v.start, v.end, dict(v.smaps)) for v in s.vmas], kernel_vmas(target.pid))

    ours, theirs = settled(both)
    assert [(a, b) for a, b, _ in ours] == [(a, b) for a, b, _ in theirs]
    for (start, _, fields), (_, _, kernel) in zip(ours, theirs):
        assert without_racy_pss(fields, kernel) == without_racy_pss(kernel, fields), hex(start)


def test_vmflags_equal_the_kernels(target, snap):
    assert [v.flags for v in snap.vmas] == kernel_vmflags(target.pid)


def test_totals_equal_smaps_rollup(target):
    def both():
        s = collect(target.pid)
        return dict(s.totals), kernel_rollup(target.pid)

    ours, theirs = settled(both)
    assert without_racy_pss(ours, theirs) == without_racy_pss(theirs, ours)
    s = collect(target.pid)
    assert s.totals["rss"] == sum(v.smaps["rss"] for v in s.vmas)  # RSS does not depend on others


def test_maps_header_fields_equal_proc_maps(target, snap):
    with open(f"/proc/{target.pid}/maps") as f:
        lines = f.read().splitlines()
    assert len(lines) == len(snap.vmas)
    for v, line in zip(snap.vmas, lines):
        _rng, perms, off, dev, ino, *rest = line.split(None, 5)
        assert (v.perms, v.offset, v.dev, v.inode) == (perms, int(off, 16), dev, int(ino))
        assert v.path == (rest[0] if rest else None)


def test_anonymous_private_pages_touched(target, snap):
    addr, n, touched = target.report["anon"]
    v = vma_at(snap, addr)
    assert (v.start, v.size, v.perms, v.kind, v.path) == (addr, n * PAGE, "rw-p", KIND_ANON_PRIVATE, None)
    assert v.smaps["rss"] == v.smaps["anonymous"] == v.smaps["private_dirty"] == len(touched) * PAGE
    assert {"rd", "wr", "mr", "mw", "me", "ac"} <= set(v.flags)


def test_private_file_mapping_with_written_pages(target, snap):
    addr, n, written, path = target.report["file_private"]
    v = vma_at(snap, addr)
    assert (v.start, v.size, v.perms, v.kind, v.path) == (addr, n * PAGE, "rw-p", KIND_FILE_PRIVATE, path)
    assert v.inode == os.stat(path).st_ino
    assert v.smaps["rss"] == n * PAGE  # every page was read
    assert v.smaps["anonymous"] == len(written) * PAGE  # written pages were copied (COW)
    assert v.smaps["private_dirty"] == len(written) * PAGE  # the file was fsynced: its cache is clean


def test_shared_file_mapping_with_a_written_page(target, snap):
    addr, n, _written, path = target.report["file_shared"]
    v = vma_at(snap, addr)
    assert (v.size, v.perms, v.kind, v.path) == (n * PAGE, "rw-s", KIND_FILE_SHARED, path)
    assert v.inode == os.stat(path).st_ino
    # One written page; the kernel may map (and dirty) its whole large folio,
    # so RSS and dirty are at least that page and at most the mapping.
    assert PAGE <= v.smaps["rss"] <= n * PAGE and v.smaps["anonymous"] == 0
    assert PAGE <= v.smaps["shared_dirty"] + v.smaps["private_dirty"] <= v.smaps["rss"]
    assert {"sh", "ms"} <= set(v.flags)


def test_mprotect_split_gives_three_vmas(target, snap):
    addr, n, _ = target.report["split"]
    third = n // 3 * PAGE
    parts = [vma_at(snap, addr + i * third) for i in range(3)]
    assert [(p.start, p.end, p.perms) for p in parts] == [
        (addr, addr + third, "rw-p"),
        (addr + third, addr + 2 * third, "r--p"),
        (addr + 2 * third, addr + 3 * third, "rw-p"),
    ]
    assert all(p.smaps["rss"] == third and p.kind == KIND_ANON_PRIVATE for p in parts)
    assert "wr" not in parts[1].flags and "wr" in parts[0].flags


def test_prot_none_region_is_a_guard(target, snap):
    addr, n, _ = target.report["guard"]
    v = vma_at(snap, addr)
    # PROT_NONE neighbours merge: the VMA contains the region (here with its two fences)
    assert v.start <= addr and addr + n * PAGE <= v.end
    assert (v.perms, v.kind) == ("---p", KIND_GUARD)
    assert v.smaps["rss"] == 0
    assert not {"rd", "wr", "ex"} & set(v.flags)


def test_unlinked_file_is_deleted(target, snap):
    addr, n, _, path = target.report["deleted"]
    v = vma_at(snap, addr)
    assert (v.size, v.kind, v.path) == (n * PAGE, KIND_DELETED, path + " (deleted)")
    assert not os.path.exists(path)


def test_shared_anonymous_and_sysv_shm_and_memfd(target, snap):
    addr, _n, touched = target.report["anon_shared"]
    v = vma_at(snap, addr)
    assert (v.kind, v.path, v.perms) == (KIND_ANON_SHARED, "/dev/zero (deleted)", "rw-s")
    assert v.smaps["rss"] == len(touched) * PAGE
    if "shm" not in target.report:
        pytest.skip("SysV shm unavailable: " + str(target.report.get("skipped")))
    addr, _n, _touched, shmid = target.report["shm"]
    v = vma_at(snap, addr)
    assert v.kind == KIND_SHM and v.path.startswith("/SYSV") and v.path.endswith(" (deleted)")
    assert v.inode == shmid and v.smaps["rss"] == PAGE
    addr, _n, _ = target.report["memfd"]
    v = vma_at(snap, addr)
    assert v.kind == KIND_FILE_SHARED and v.path == "/memfd:vmainspect-memfd (deleted)"


def test_named_anonymous_region(target, snap):
    if "anon_named" not in target.report:
        pytest.skip("this kernel has no CONFIG_ANON_VMA_NAME (prctl PR_SET_VMA_ANON_NAME failed)")
    addr, _n, _touched, name = target.report["anon_named"]
    v = vma_at(snap, addr)
    assert (v.kind, v.path) == (KIND_ANON_PRIVATE, f"[anon:{name}]")


def test_vmflags_are_all_explained(snap):
    for v in snap.vmas:
        assert v.flags, hex(v.start)
        for f in v.flags:
            assert f in VMFLAG_MEANINGS, f


def test_process_facts(target, snap):
    import psutil

    p = snap.process
    ps = psutil.Process(target.pid)
    assert (p.pid, p.ppid, p.name, p.state, p.threads) == (target.pid, os.getpid(), "odd) (name", "T", 1)
    assert p.cmdline[:2] == (sys.executable, "-c")
    assert p.exe == os.path.realpath(sys.executable)
    assert (p.uid, p.user) == (os.getuid(), ps.username())
    assert abs(p.create_time - ps.create_time()) < 0.05
    with open(f"/proc/{target.pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    assert (p.minor_faults, p.major_faults) == (int(fields[7]), int(fields[9]))
    assert snap.host.page_size == PAGE and snap.host.kernel == os.uname().release
    assert snap.taken_at.endswith("Z") and "T" in snap.taken_at


def test_capabilities_without_pages(snap):
    c = snap.capabilities
    assert c.root == (os.geteuid() == 0) and c.pages is False
    assert (c.pfn_visible, c.kpageflags, c.kpagecount, c.pagemap_scan) == (None, None, None, None)
    assert any("--pages" in n for n in c.notes)


def test_pages_attach_per_vma_runs(target):
    s = collect(target.pid, pages=True)
    assert s.capabilities.pages is True
    for v in s.vmas:
        if v.kind == "vsyscall":
            continue
        assert v.pages is not None, hex(v.start)
        covered = 0
        for r in v.pages.runs:
            assert r.first == covered
            covered += r.count
        assert covered == v.npages(PAGE)
    addr, n, touched = target.report["anon"]
    v = s.vma_at(addr)
    state = [None] * n
    for r in v.pages.runs:
        for i in range(r.first, r.first + r.count):
            state[i] = r.state
    assert [i for i, st in enumerate(state) if st == ANON] == touched
    assert v.pages.counts.present == len(touched)


# ------------------------------------------------------------------ no mm, gone, reused


def test_kernel_thread_gives_an_empty_valid_snapshot():
    s = collect(2)
    assert s.process.name == "kthreadd" and s.vmas == () and dict(s.totals) == {}
    assert s.process.cmdline == () and s.process.exe is None
    assert any("kernel thread" in n for n in s.capabilities.notes)


def test_zombie_gives_an_empty_valid_snapshot():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        s = collect(child.pid)
        assert s.process.state == "Z" and s.vmas == () and dict(s.totals) == {}
        assert any("zombie" in n for n in s.capabilities.notes)
    finally:
        child.wait()


def test_nonexistent_pid():
    with pytest.raises(ProcessGone):
        collect(_free_pid())


def test_process_that_exits_while_being_read(monkeypatch):
    t = spawn_target("")

    def kill():
        os.kill(t.pid, signal.SIGKILL)
        t.proc.wait()  # reaped: the PID is gone

    after_reading(monkeypatch, "smaps", kill)
    try:
        with pytest.raises(ProcessGone):
            collect(t.pid)
    finally:
        t.kill()


def test_process_that_becomes_a_zombie_while_being_read(monkeypatch):
    t = spawn_target("")

    def kill():
        os.kill(t.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # not reaped: a zombie with the same PID
            with open(f"/proc/{t.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.005)

    after_reading(monkeypatch, "smaps", kill)
    try:
        with pytest.raises(ProcessGone, match="exited while being read"):
            collect(t.pid)
    finally:
        t.kill()


def test_pid_reused_while_being_read(monkeypatch, target):
    """Simulated: the second stat read shows another start time (a new process with this PID)."""
    from vmainspect.procfs.reader import ProcReader

    real = ProcReader.read
    calls = {"stat": 0}

    def read(self, name):
        data = real(self, name)
        if name == "stat":
            calls["stat"] += 1
            if calls["stat"] == 2:
                head, _, tail = data.rpartition(b")")
                f = tail.split()
                f[19] = str(int(f[19]) + 1234).encode()
                data = head + b") " + b" ".join(f) + b"\n"
        return data

    monkeypatch.setattr(ProcReader, "read", read)
    with pytest.raises(ProcessGone, match="reused"):
        collect(target.pid)


def _free_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def test_many_vmas_every_field_equals_the_kernels():
    """2,000 VMAs (benchmarks/target_many_vmas.py --diverse): the columnar fast path,
    shared dicts for equal blocks and templates for equal header tails, against the kernel."""
    import json

    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(os.path.dirname(os.path.dirname(here)), "benchmarks", "target_many_vmas.py")
    proc = subprocess.Popen(
        [sys.executable, script, "--vmas", "2000", "--size", "64M", "--diverse"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"T":
                    break
            time.sleep(0.01)

        def both():
            s = collect(proc.pid)
            return (
                [(v.start, v.end, v.perms, dict(v.smaps)) for v in s.vmas],
                [(a, b, None, f) for a, b, f in kernel_vmas(proc.pid)],
            )

        ours, theirs = settled(both)
        assert len(ours) >= 2000 and len(ours) == len(theirs)
        assert [(a, b, without_racy_pss(f, g)) for (a, b, _, f), (_, _, _, g) in zip(ours, theirs)] == [
            (a, b, without_racy_pss(g, f)) for (_, _, _, f), (a, b, _, g) in zip(ours, theirs)
        ]
        with open(f"/proc/{proc.pid}/smaps", "rb") as f:
            raw = f.read()
        from vmainspect.procfs.parse import parse_smaps

        assert [(v.start, v.end, dict(v.smaps)) for v in parse_smaps(raw)] == naive_smaps(raw)
        region = [o for o in ours if info["start"] <= o[0] < info["start"] + info["size"]]
        assert len(region) == 2000
        assert [p for _, _, p, _ in region[:4]] == ["rw-p", "r--p", "rw-p", "r--p"]
        assert sum(f["private_dirty"] for *_, f in region) == info["written_pages"] * PAGE
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
