"""diff when every VMA moved (two runs of a program under ASLR, or a layout shifted by
a few pages): the result is checked against the definition, computed directly here
(for each added or removed VMA, the VMA of the other side, same inode, with the
largest address overlap). No timing here: benchmarks/bench_diff.py measures it."""

from __future__ import annotations

import random

from test_diff import PS, P, snap, vma

from vmainspect.snapshot.diff import ADDED, REMOVED, diff_snapshots


def by_definition(others, v):
    best, most = None, 0
    for w in others:
        n = min(v.end, w.end) - max(v.start, w.start)
        if n > most and w.inode == v.inode:
            best, most = w, n
    return best


def layout(n, seed):
    """``n`` VMAs in address order with gaps, sizes and inodes varied (seeded)."""
    rnd = random.Random(seed)
    out, addr = [], P
    for i in range(n):
        pages = rnd.choice((1, 2, 3, 8, 16))
        out.append(vma(addr, pages, perms="rw-p" if i % 2 else "r--p", inode=rnd.choice((0, 0, 11, 12))))
        addr += (pages + rnd.choice((0, 0, 1, 5))) * PS
    return out


def check(a_vmas, b_vmas):
    a, b = snap(*a_vmas), snap(*b_vmas)
    d = diff_snapshots(a, b)
    removed = {c.a.start: c for c in d.changes if c.status == REMOVED}
    added = {c.b.start: c for c in d.changes if c.status == ADDED}
    paired = {(v.start, v.end) for v in a_vmas} & {(w.start, w.end) for w in b_vmas}
    for v in a_vmas:
        if (v.start, v.end) in paired or v.start not in removed:
            continue
        want = by_definition(b_vmas, v)
        got = removed[v.start].overlaps
        assert (got.start, got.end) == (want.start, want.end) if want else got is None, v
    for w in b_vmas:
        if w.start not in added:
            continue
        want = by_definition(a_vmas, w)
        got = added[w.start].overlaps
        assert (got.start, got.end) == (want.start, want.end) if want else got is None, w
    return d, removed, added


def test_every_vma_moved_far_away():
    """Two runs under ASLR: nothing overlaps, everything is removed and added."""
    a = layout(600, 1)
    shift = 0x10_0000_0000
    b = [vma(v.start + shift, (v.end - v.start) // PS, perms=v.perms, inode=v.inode) for v in a]
    d, removed, added = check(a, b)
    assert len(removed) == len(added) == 600 and d.unchanged == 0
    assert all(c.overlaps is None for c in d.changes)


def test_every_vma_shifted_by_a_few_pages():
    """Overlapping layouts: each change names its largest same-inode overlap."""
    a = layout(500, 2)
    for k in (1, 3, 7):
        b = [vma(v.start + k * PS, (v.end - v.start) // PS, perms=v.perms, inode=v.inode) for v in a]
        d, removed, added = check(a, b)
        assert len(removed) + len(added) > 300
        assert any(c.overlaps is not None for c in d.changes)


def test_two_different_layouts_overlapping_at_random():
    a, b = layout(400, 3), layout(450, 4)
    b = [vma(w.start + 5 * PS, (w.end - w.start) // PS, perms=w.perms, inode=w.inode) for w in b]
    check(a, b)
