"""hugetlb VMAs against the kernel: a target maps MAP_HUGETLB memory and touches some of it.

The expectations come from what the target did (huge pages 0 and 2 of a
private mapping written, page 0 of a shared one read) and from the kernel
read here independently: smaps (Private_Hugetlb, Shared_Hugetlb, Rss), maps
(the VMA range) and, page by page, /proc/PID/pagemap, /proc/kpageflags and
/proc/kpagecount.

Kernel behaviour these tests pin down (Linux 6.18, measured; docs/kernel-notes.md):
- pagemap reports a huge page as 512 present base-page entries (with 2 MiB
  huge pages), each with its own PFN; a private MAP_HUGETLB page is anonymous,
  a shared one carries the file bit (it lives in a hugetlbfs file);
- kpageflags sets HUGE on every one of them (COMPOUND_HEAD on the first),
  never THP; it sets DIRTY on every page of a hugetlbfs file as soon as it is
  in the file, even when it was only read: hugetlbfs has no backing store and
  the flag keeps the page from being dropped;
- smaps counts them in Private_Hugetlb/Shared_Hugetlb, never in Rss; after
  fork() a private huge page is mapped by both processes (copy-on-write):
  Shared_Hugetlb, kpagecount 2, no exclusive bit.

Huge pages must be reserved (/proc/sys/vm/nr_hugepages): root reserves them
for the module and puts the old value back; another user runs the tests only
when enough are already free.
"""

from __future__ import annotations

import json
import os
import struct

import msgspec
import pytest
from cli_helpers import run_cli
from pages_target import PAGE, vmas_of
from targets import kill_quietly, read_smaps_kb, spawn_target, wait_stopped

from vmainspect.snapshot.collect import collect

NEED = 6  # huge pages the target maps: 4 private + 2 shared (all reserved at mmap time)
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"

KPF_DIRTY, KPF_COMPOUND_HEAD, KPF_HUGE, KPF_KSM, KPF_THP, KPF_ZERO_PAGE = 4, 15, 17, 21, 22, 24

TARGET = r"""
HP = int(os.environ["HUGE_PAGE_SIZE"])
MAP_HUGETLB = 0x40000
def huge(n, flags):
    a = libc.mmap(None, n * HP, 3, flags | MAP_HUGETLB, -1, 0)
    if a in (None, 2**64 - 1):
        raise OSError(ctypes.get_errno(), "mmap(MAP_HUGETLB)")
    return a
P = huge(4, 0x22)                                   # MAP_PRIVATE | MAP_ANONYMOUS
ctypes.c_char.from_address(P).value = b"p"           # huge page 0 written
ctypes.c_char.from_address(P + 2 * HP + 5).value = b"p"  # huge page 2 written
S = huge(2, 0x21)                                   # MAP_SHARED | MAP_ANONYMOUS
ctypes.c_char.from_address(S).value                  # huge page 0 read only
report.update(private=P, shared=S, hp=HP)
checkpoint(report)
child = os.fork()
if child == 0:
    libc.prctl(1, 9)                                 # PR_SET_PDEATHSIG: SIGKILL
    while True:
        os.kill(os.getpid(), signal.SIGSTOP)
report["child"] = child
"""


def _meminfo(field: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/meminfo")


@pytest.fixture(scope="module")
def huge_page_size():
    """The default huge page size, with at least NEED huge pages free for the module."""
    hp = _meminfo("Hugepagesize") * 1024
    free = _meminfo("HugePages_Free") - _meminfo("HugePages_Rsvd")  # reserved ones count as free
    if free >= NEED:
        yield hp
        return
    if os.geteuid() != 0:
        pytest.skip(f"needs root to reserve huge pages ({NR_HUGEPAGES}), and {NEED} are not free")
    with open(NR_HUGEPAGES) as f:
        old = f.read().strip()
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(_meminfo("HugePages_Total") + NEED - free))
        if _meminfo("HugePages_Free") < NEED:
            pytest.skip(f"the kernel could not reserve {NEED} huge pages (memory too fragmented)")
        yield hp
    finally:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(old)


@pytest.fixture(scope="module")
def target(huge_page_size):
    env = dict(os.environ, HUGE_PAGE_SIZE=str(huge_page_size))
    t = spawn_target(TARGET, env=env)
    try:
        yield t
    finally:
        kill_quietly(t.report.get("child"))
        t.kill()


def kernel_pages(pid: int, start: int, end: int) -> list[dict]:
    """Each base page of [start, end) as the kernel reports it: pagemap's bits
    and, where the PFN is visible (root), its kpageflags and kpagecount."""
    n = (end - start) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        entries = struct.unpack(f"<{n}Q", f.read(n * 8))
    pages = []
    for e in entries:
        pfn = e & ((1 << 55) - 1)
        p = {"present": bool(e >> 63 & 1), "file": bool(e >> 61 & 1), "exclusive": bool(e >> 56 & 1)}
        if p["present"] and pfn:
            with open("/proc/kpageflags", "rb") as kf, open("/proc/kpagecount", "rb") as kc:
                kf.seek(pfn * 8)
                kc.seek(pfn * 8)
                p["flags"] = struct.unpack("<Q", kf.read(8))[0]
                p["count"] = struct.unpack("<Q", kc.read(8))[0]
        pages.append(p)
    return pages


def expected_states(pages: list[dict]) -> list[str]:
    """The page states vmainspect should report, from the kernel's bits alone."""
    out = []
    for p in pages:
        if not p["present"]:
            out.append("absent")
        elif not p["file"]:
            out.append("anon")
        elif "flags" in p and p["flags"] >> KPF_DIRTY & 1:
            out.append("file-dirty")
        else:
            out.append("file")
    return out


def expected_counts(pages: list[dict]) -> dict:
    present = [p for p in pages if p["present"]]
    root = bool(present) and all("flags" in p for p in present)
    return {
        "present": len(present),
        "file": sum(p["file"] for p in present),
        "anon": sum(not p["file"] for p in present),
        "exclusive": sum(p["exclusive"] for p in present),
        "swapped": 0,
        # anonymous pages are dirty by nature; file pages per kpageflags
        "dirty": sum(not p["file"] or p["flags"] >> KPF_DIRTY & 1 for p in present) if root else None,
        "thp": sum(p["flags"] >> KPF_THP & 1 for p in present) if root else None,
        "shared": sum(p["count"] > 1 for p in present) if root else None,
    } | (
        {
            "zero": sum(p["flags"] >> KPF_ZERO_PAGE & 1 for p in present),
            "ksm": sum(p["flags"] >> KPF_KSM & 1 for p in present),
        }
        if root
        else {}  # without root the zero page is known on one page path only
    )


def shared_runs(pages: list[dict]) -> list[list[int]]:
    """[first, count] of each run of pages mapped more than once (kpagecount > 1)."""
    runs: list[list[int]] = []
    for i, p in enumerate(pages):
        if p.get("count", 0) > 1:
            if runs and runs[-1][0] + runs[-1][1] == i:
                runs[-1][1] += 1
            else:
                runs.append([i, 1])
    return runs


def runs_to_states(runs) -> list[str]:
    return [r[2] for r in runs for _ in range(r[1])]


def smaps_at(pid: int, start: int) -> tuple[int, dict]:
    for s, e, d in read_smaps_kb(pid):
        if s == start:
            return e, d
    raise AssertionError(f"no VMA at {start:#x}")


def check_vma(pid: int, start: int, n_huge: int, hp: int, vma: dict) -> list[dict]:
    """One hugetlb VMA of vmainspect's snapshot (JSON form) against the kernel;
    returns the kernel's pages for the caller's own expectations."""
    end, sm = smaps_at(pid, start)
    assert (vma["start"], vma["end"]) == (start, end) and end - start == n_huge * hp
    assert vma["kind"] == "hugetlb" and "ht" in vma["flags"]
    for key, field in (
        ("Private_Hugetlb", "private_hugetlb"),
        ("Shared_Hugetlb", "shared_hugetlb"),
        ("Rss", "rss"),
        ("KernelPageSize", "kernel_page_size"),
    ):
        assert vma["smaps"][field] == sm[key], field
    assert sm["Rss"] == 0 and sm["KernelPageSize"] == hp  # hugetlb pages are not in Rss
    pages = kernel_pages(pid, start, end)
    present = sum(p["present"] for p in pages)
    assert present * PAGE == sm["Private_Hugetlb"] + sm["Shared_Hugetlb"]
    assert runs_to_states(vma["pages"]["runs"]) == expected_states(pages)
    counts = vma["pages"]["counts"]
    for k, want in expected_counts(pages).items():
        assert counts[k] == want, k
    if counts["shared"] is not None:
        assert counts["shared"] * PAGE == sm["Shared_Hugetlb"]
        assert [list(r) for r in vma["pages"]["shared_runs"]] == shared_runs(pages)
        assert all(p["flags"] >> KPF_HUGE & 1 for p in pages if p["present"])
        heads = [i for i, p in enumerate(pages) if p["present"] and p["flags"] >> KPF_COMPOUND_HEAD & 1]
        assert heads == [i for i in range(0, len(pages), hp // PAGE) if pages[i]["present"]]
    return pages


def _snapshot_json(pid: int) -> dict:
    r = run_cli("snapshot", pid, "--pages")
    assert r.returncode == 0, r.stderr
    return {v["start"]: v for v in json.loads(r.stdout)["vmas"]}


def _collected(pid: int, use_scan: bool) -> dict:
    snap = collect(pid, pages=True, use_scan=use_scan)
    out = {}
    for v in snap.vmas:
        d = {"start": v.start, "end": v.end, "kind": v.kind, "flags": list(v.flags), "smaps": dict(v.smaps)}
        c = v.pages.counts
        d["pages"] = {
            "runs": [[r.first, r.count, r.state] for r in v.pages.runs],
            "counts": msgspec.structs.asdict(c),
            "shared_runs": [list(r) for r in v.pages.shared_runs or ()],
        }
        out[v.start] = d
    return out


def _views(pid: int) -> list[dict]:
    """The CLI's snapshot and the collector's, through PAGEMAP_SCAN and plain pagemap."""
    return [_snapshot_json(pid), _collected(pid, True), _collected(pid, False)]


def test_hugetlb_pages_match_the_kernel(target):
    pid, r = target.pid, target.report
    hp, per = r["hp"], r["hp"] // PAGE
    assert r["hp"] // PAGE * PAGE == hp
    for view in _views(pid):
        pages = check_vma(pid, r["private"], 4, hp, view[r["private"]])
        st = expected_states(pages)
        assert st == ["anon"] * per + ["absent"] * per + ["anon"] * per + ["absent"] * per
        assert all(p["exclusive"] for p in pages if p["present"])
        pages = check_vma(pid, r["shared"], 2, hp, view[r["shared"]])
        present = [p["present"] for p in pages]
        assert present == [True] * per + [False] * per and all(p["file"] for p in pages if p["present"])
        if "flags" in pages[0]:
            # only read, yet dirty: the kernel marks every hugetlbfs page dirty
            assert expected_states(pages)[:per] == ["file-dirty"] * per


def test_hugetlb_pages_after_fork(target):
    target.resume_and_wait_stop()
    wait_stopped(target.report["child"])
    pid, r = target.pid, target.report
    hp, per = r["hp"], r["hp"] // PAGE
    assert any(v.start == r["private"] for v in vmas_of(r["child"]))
    for view in _views(pid):
        pages = check_vma(pid, r["private"], 4, hp, view[r["private"]])
        assert [p["present"] for p in pages[::per]] == [True, False, True, False]
        assert not any(p["exclusive"] for p in pages)  # the child maps them too
        if "count" in pages[0]:
            assert view[r["private"]]["smaps"]["shared_hugetlb"] == 2 * hp
            assert view[r["private"]]["pages"]["counts"]["shared"] == 2 * per
            assert [list(x) for x in view[r["private"]]["pages"]["shared_runs"]] == [[0, per], [2 * per, per]]
        check_vma(pid, r["shared"], 2, hp, view[r["shared"]])
