"""The demo's measuring helpers on hand-made snapshots: ranges clipped across VMAs, unknown stays None."""

from __future__ import annotations

from vmainspect.demo import measure as m
from vmainspect.model import Capabilities, HostInfo, PageCounts, PageInfo, PageRun, ProcessInfo, Snapshot, Vma

PS = 4096
BASE = 0x7F0000000000


def vma(start_page: int, runs: list[tuple[int, int, str]], shared_runs=None) -> Vma:
    n = sum(c for _, c, _ in runs)
    counts = PageCounts(0, 0, 0, 0, 0, None, None, None, None, None)
    return Vma(
        BASE + start_page * PS,
        BASE + (start_page + n) * PS,
        "rw-p",
        0,
        "00:00",
        0,
        None,
        "anon-private",
        (),
        {},
        PageInfo(counts, tuple(PageRun(*r) for r in runs), shared_runs),
    )


def snap(vmas, *, root: bool, minor: int = 0, major: int = 0) -> Snapshot:
    caps = Capabilities(root, True, root, root, root, True)
    proc = ProcessInfo(1, 0, "t", ("t",), None, "root", 0, "S", 1, minor, major, 1.0)
    return Snapshot("2026-11-25T08:00:00Z", HostInfo("6.18", PS), proc, caps, {}, tuple(vmas))


# VMA A: pages 0-7 (2 anon, 2 absent, 2 file-dirty, 2 file); a hole at 8-9; VMA B: pages 10-13
A = vma(0, [(0, 2, "anon"), (2, 2, "absent"), (4, 2, "file-dirty"), (6, 2, "file")], ((0, 2), (6, 1)))
B = vma(10, [(0, 1, "swapped"), (1, 3, "anon")], ())


def test_ranges_are_clipped_and_numbered_from_the_address():
    s = snap([A, B], root=True)
    assert m.present(s, BASE + 3 * PS, 10 * PS) == {1, 2, 3, 4, 8, 9}  # pages 3..12
    assert m.pages_in(s, BASE, 14 * PS, ("anon",)) == {0, 1, 11, 12, 13}
    assert m.dirty_file(s, BASE + 5 * PS, 2 * PS) == {0}
    assert m.shared(s, BASE, 14 * PS) == {0, 1, 6}
    assert m.shared(s, BASE + PS, PS) == {0}


def test_vma_cover_and_overlap():
    s = snap([A, B], root=True)
    assert [v.start for v in m.overlapping(s, BASE + 7 * PS, 4 * PS)] == [A.start, B.start]
    assert m.covered(s, BASE, 8 * PS) and m.covered(s, BASE + 10 * PS, 4 * PS)
    assert not m.covered(s, BASE + 7 * PS, 4 * PS)  # the hole at pages 8-9
    assert m.overlapping(s, BASE + 8 * PS, 2 * PS) == []


def test_without_root_dirty_and_shared_are_unknown_not_empty():
    s = snap([A, B], root=False)
    assert m.dirty_file(s, BASE, 14 * PS) is None
    assert m.shared(s, BASE, 14 * PS) is None
    assert m.present(s, BASE, 8 * PS) == {0, 1, 4, 5, 6, 7}


def test_fault_deltas():
    assert m.faults(snap([], root=True, minor=10, major=1), snap([], root=True, minor=74, major=3)) == (64, 2)


def test_page_states_and_transitions_count_every_page_once():
    from vmainspect.demo import evidence

    before = snap([A], root=True)
    grown = vma(0, [(0, 4, "anon"), (4, 2, "file-dirty"), (6, 2, "file")])
    after = snap([grown, B], root=True)
    # pages 0-13: the hole (8, 9) is "unmapped" in both; B appears
    assert m.page_states(before, BASE, 14 * PS)[8:] == ["unmapped"] * 6
    got = m.transitions(before, after, BASE, 14 * PS)
    assert got == {("absent", "anon"): 2, ("unmapped", "swapped"): 1, ("unmapped", "anon"): 3}
    ts = evidence.transitions({"a": (BASE, 8 * PS)}, before, after)
    assert ts == (evidence.Transition("a", "absent", "anon", 2),)


def test_libc_functions_get_the_names_a_student_knows():
    from vmainspect.demo.evidence import function_name, interpreter_code, numbers

    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert function_name("__memset_avx2_unaligned_erms", libc) == "memset (libc)"
    assert function_name("__memmove_avx_unaligned_erms+0x1a", libc) == "memmove (libc)"
    assert function_name("_int_malloc", libc) == "_int_malloc (libc)"
    assert function_name("touch", "/opt/w/workload") == "touch (workload)"
    assert interpreter_code("/usr/bin/python3.11") and interpreter_code(
        "_ctypes.cpython-311-x86_64-linux-gnu.so"
    )
    assert not interpreter_code(libc)
    # unknown stays '?', never 0; long lists are counted
    assert numbers({"dirty": None, "held": True, "pages": list(range(20)), "n": 3}) == (
        ("dirty", "?"),
        ("held", "yes"),
        ("pages", "20 items"),
        ("n", "3"),
    )
