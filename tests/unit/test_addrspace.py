"""Attribution through a window: snapshot at the end, MMAP2 records, snapshot at the start."""

from __future__ import annotations

from collections import Counter

from vmainspect.faults.addrspace import AddressSpace
from vmainspect.faults.perf import MmapRecord
from vmainspect.procfs.parse import vma_kind

MB = 1 << 20


class V:
    def __init__(self, start: int, end: int, perms: str = "rw-p", path: str | None = None) -> None:
        self.start, self.end, self.perms, self.path = start, end, perms, path
        self.kind = vma_kind(perms, path)


class Snap:
    def __init__(self, *vmas: V) -> None:
        self.vmas = tuple(sorted(vmas, key=lambda v: v.start))

    def vma_at(self, a: int) -> V | None:
        return next((v for v in self.vmas if v.start <= a < v.end), None)


def rec(addr: int, length: int, name: str, t: int = 1, prot: int = 3, flags: int = 2) -> MmapRecord:
    return MmapRecord(t, 1, addr, length, 0, (0, 0), 0, prot, flags, name)


def faults(*addrs: int) -> list[tuple[list[int], Counter[int]]]:
    c = Counter(addrs)
    return [(sorted(c), c), ([], Counter())]


HEAP = 0x5000_0000


def test_heap_grown_and_shrunk_is_one_row_with_its_largest_extent():
    space = AddressSpace(Snap(V(HEAP, HEAP + MB, path="[heap]")))
    space.add([rec(HEAP, 33 * MB, "[heap]")])
    end = Snap(V(HEAP, HEAP + MB, path="[heap]"))  # shrunk again when the map was read
    att = space.attribute(end, faults(HEAP + 8, HEAP + 20 * MB, HEAP + 32 * MB))
    assert att.unattributed == 0 and att.from_history == 2
    (key,) = att.by_mapping
    assert att.by_mapping[key] == [3, 0]
    m = att.mappings[key]
    assert (m.start, m.end, m.kind, m.path) == (HEAP, HEAP + 33 * MB, "heap", "[heap]")


def test_heap_split_by_madvise_is_still_one_row():
    end = Snap(V(HEAP, HEAP + MB, path="[heap]"), V(HEAP + MB, HEAP + 33 * MB, path="[heap]"))
    space = AddressSpace()
    att = space.attribute(end, faults(HEAP + 8, HEAP + 2 * MB))
    assert len(att.by_mapping) == 1
    (m,) = att.mappings.values()
    assert (m.start, m.end) == (HEAP, HEAP + 33 * MB)


def test_mapping_unmapped_in_the_window_goes_to_the_start_snapshot():
    gone = V(0x7000_0000, 0x7000_0000 + MB)
    space = AddressSpace(Snap(gone))
    att = space.attribute(Snap(), faults(0x7000_0010))
    assert att.unattributed == 0
    assert att.mappings[(gone.start, "anon-private", None)].end == gone.end


def test_the_newest_record_wins_and_the_end_snapshot_wins_over_records():
    a = 0x6000_0000
    space = AddressSpace()
    space.add([rec(a, 4 * MB, "/lib/old.so", t=1, prot=5), rec(a, 2 * MB, "//anon", t=2)])
    att = space.attribute(Snap(V(a + 3 * MB, a + 4 * MB, path="/data/file")), faults(a + 1, a + 3 * MB + 1))
    kinds = {k[1]: v for k, v in att.by_mapping.items()}
    assert kinds == {"anon-private": [1, 0], "file-private": [1, 0]}


def test_nothing_covers_it_then_it_is_unattributed_and_records_age_out():
    space = AddressSpace()
    space.add([rec(0x6000_0000, MB, "//anon")])
    assert space.attribute(Snap(), faults(0x9000_0000)).unattributed == 1
    space.advance(Snap())  # the record is kept one more window
    assert space.attribute(Snap(), faults(0x6000_0001)).unattributed == 0
    space.advance(Snap())
    assert space.attribute(Snap(), faults(0x6000_0001)).unattributed == 1
