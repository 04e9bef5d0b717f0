"""Lesson steps: a VMA's life (mprotect, munmap, mremap, madvise) and fork with copy-on-write."""

from __future__ import annotations

from ..model import Snapshot
from ..units import plural
from . import measure as m
from .steps import Check, Ctx, Info, Step

PROTECT = (256, 256)  # (first page, pages) made read-only
HOLE = (640, 64)  # unmapped
TAIL = (704, 320)  # mremap'd: grown to TAIL_NEW pages
TAIL_NEW = 640
CHILD_PAGES = [0, 16, 32]  # pages of the tail the forked child writes
CHILD_DATA = "CHILD WRITE....."


# --- 9-11. mprotect, munmap, mremap --------------------------------------------------


def act_mprotect(c: Ctx) -> Info:
    addr, n = c.region("anon", *PROTECT)
    c.req("mprotect", addr=addr, len=n, prot="r--")
    return {"focus": addr}


def check_mprotect(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("anon")
    mid, mid_n = c.region("anon", *PROTECT)
    was, now = m.overlapping(b, addr, n), m.overlapping(a, addr, n)
    mv = a.vma_at(mid)
    meas = {
        "vmas_before": len(was),
        "vmas_after": len(now),
        "perms": [v.perms for v in now],
        "middle": None if mv is None else [mv.start - addr, mv.end - addr],
    }
    return Check(
        meas,
        f"VMAs over the region: {len(was)} -> {len(now)} ({' '.join(v.perms for v in now)})",
        {
            "one VMA became three": len(was) == 1 and len(now) == 3,
            "the middle one is read-only and exact": mv is not None
            and mv.perms.startswith("r-")
            and (mv.start, mv.end) == (mid, mid + mid_n),
        },
    )


def act_munmap(c: Ctx) -> Info:
    addr, n = c.region("anon", *HOLE)
    c.req("munmap", addr=addr, len=n)
    return {"focus": addr - c.page}


def check_munmap(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("anon")
    hole, hole_n = c.region("anon", *HOLE)
    was, now = m.overlapping(b, addr, n), m.overlapping(a, addr, n)
    res_b = m.present(b, hole, hole_n)
    meas = {
        "vmas_before": len(was),
        "vmas_after": len(now),
        "hole_pages": hole_n // c.page,
        "hole_present_before": len(res_b),
        "hole_mapped_after": bool(m.overlapping(a, hole, hole_n)),
    }
    return Check(
        meas,
        f"VMAs over the region: {len(was)} -> {len(now)}; the {hole_n // 1024} KiB "
        f"hole had {len(res_b)} resident pages and is now unmapped",
        {
            "one more VMA": len(now) == len(was) + 1,
            "nothing is mapped in the hole": not meas["hole_mapped_after"],
        },
    )


def act_mremap(c: Ctx) -> Info:
    addr, n = c.region("anon", *TAIL)
    r = c.req("mremap", addr=addr, len=n, new_len=TAIL_NEW * c.page)
    c.regions["tail"] = (r["addr"], r["len"])
    return {"focus": r["addr"], "old": (addr, n)}


def check_mremap(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    old, old_n = x["old"]
    new, new_n = c.region("tail")
    was = m.present(b, old, old_n)
    now = m.present(a, new, new_n)
    moved = new != old
    v = a.vma_at(new)
    minor, _major = m.faults(b, a)
    meas = {
        "old_size": old_n,
        "new_size": new_n,
        "moved": moved,
        "vma_size_after": v.size if v else None,
        "present_before": len(was),
        "present_after": len(now),
        "minor_faults": minor,
        "old_range_mapped_after": moved and bool(m.overlapping(a, old, old_n)),
    }
    return Check(
        meas,
        f"{old_n // 1024} KiB -> {new_n // 1024} KiB, "
        + ("moved" if moved else "grown in place")
        + f"; resident pages {len(was)} -> {len(now)} (same pages, "
        f"{plural(minor, 'minor fault')} in the step)",
        {
            "the mapping covers the new size": m.covered(a, new, new_n),
            "the resident pages came along": now == was and len(was) > 0,
            "nothing left at the old place": not meas["old_range_mapped_after"],
        },
    )


# --- 12. madvise(MADV_DONTNEED) ---------------------------------------------------


def act_dontneed(c: Ctx) -> Info:
    addr, n = c.region("anon", 0, PROTECT[0])
    c.req("madvise", addr=addr, len=n, advice="dontneed")
    return {"focus": addr}


def check_dontneed(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("anon", 0, PROTECT[0])
    was, now = m.present(b, addr, n), m.present(a, addr, n)
    meas = {"present_before": len(was), "present_after": len(now), "vma_still_mapped": m.covered(a, addr, n)}
    return Check(
        meas,
        f"resident pages {len(was)} -> {len(now)}; the VMA "
        + ("stays" if meas["vma_still_mapped"] else "is GONE"),
        {"resident pages went away": len(was) > 0 and not now, "the VMA stays": m.covered(a, addr, n)},
    )


def _excl(snap: Snapshot, addr: int) -> tuple[int | None, int | None]:
    """(exclusive, present) page counts of the VMA at ``addr`` (pagemap bit 56: no root needed)."""
    v = snap.vma_at(addr)
    if v is None or v.pages is None:
        return None, None
    return v.pages.counts.exclusive, v.pages.counts.present


# --- fork ------------------------------------------------------------------------


def act_fork(c: Ctx) -> Info:
    addr, n = c.region("tail")
    r = c.req("fork", addr=addr, len=n)
    c.child = r["info"]["child"]
    return {"focus": addr, "child": c.child}


def check_fork(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("tail")
    res = m.present(a, addr, n)
    sh = m.shared(a, addr, n)
    kid = c.snap(x["child"])
    kid_res = m.present(kid, addr, n)
    kid_sh = m.shared(kid, addr, n)
    ex_b, _ = _excl(b, addr)
    ex_a, _pres_a = _excl(a, addr)
    meas = {
        "child": x["child"],
        "present": len(res),
        "child_present": len(kid_res),
        "shared": None if sh is None else len(sh),
        "child_shared": None if kid_sh is None else len(kid_sh),
        "exclusive_before": ex_b,
        "exclusive_after": ex_a,
    }
    return Check(
        meas,
        f"child {x['child']} has the same {len(kid_res)} resident pages; "
        f"mapped twice (kpagecount 2): {'?' if sh is None else len(sh)}; "
        f"exclusive to the parent: {ex_b} -> {ex_a}",
        {
            "the child has the same pages resident": kid_res == res and len(res) > 0,
            "no page is exclusive any more (pagemap)": ex_b is not None and ex_b > 0 and ex_a == 0,
            "every resident page is mapped twice (kpagecount)": None
            if sh is None or kid_sh is None
            else sh == res and kid_sh == kid_res,
        },
    )


def act_child_write(c: Ctx) -> Info:
    addr, n = c.region("tail")
    c.req("child", cmd={"op": "write", "addr": addr, "len": n, "pages": CHILD_PAGES, "data": CHILD_DATA})
    return {"focus": addr, "child": c.child, "written": CHILD_PAGES}


def check_child_write(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("tail")
    written = set(x["written"])
    sh_b, sh_a = m.shared(b, addr, n), m.shared(a, addr, n)
    ex_b, _ = _excl(b, addr)
    ex_a, _ = _excl(a, addr)
    kid = c.snap(x["child"])
    kid_ex, _ = _excl(kid, addr)
    meas = {
        "child": x["child"],
        "written_pages": len(written),
        "shared_before": None if sh_b is None else len(sh_b),
        "shared_after": None if sh_a is None else len(sh_a),
        "exclusive_before": ex_b,
        "exclusive_after": ex_a,
        "child_exclusive": kid_ex,
    }
    return Check(
        meas,
        f"the child wrote {len(written)} pages: parent's shared pages "
        f"{'?' if sh_b is None else len(sh_b)} -> {'?' if sh_a is None else len(sh_a)}, "
        f"its exclusive pages {ex_b} -> {ex_a}; the child's own copies: {kid_ex}",
        {
            "the written pages became exclusive in both (pagemap)": ex_b == 0
            and ex_a == len(written)
            and kid_ex == len(written),
            "exactly the written pages stopped being shared (kpagecount)": None
            if sh_b is None or sh_a is None
            else sh_b - sh_a == written,
        },
    )


STEPS: tuple[Step, ...] = (
    Step(
        "mprotect",
        "mprotect: one VMA becomes three",
        (
            "The workload makes the middle 1 MiB of the anonymous region read-only.",
            "A VMA has one set of permissions, so the kernel splits it: rw- | r-- | rw-.",
            "Each piece is a vm_area_struct of its own: many mprotects, many VMAs.",
        ),
        "the 4 MiB VMA splits in three; the middle one is r--p",
        "One VMA became three, the middle one read-only and exactly 1 MiB.",
        act_mprotect,
        check_mprotect,
    ),
    Step(
        "munmap-hole",
        "munmap: a hole in the middle",
        (
            "The workload unmaps 256 KiB from the last part of the region.",
            "Its pages are freed and the VMA is cut in two around the hole.",
            "Touching the hole now would be a SIGSEGV: no VMA, no memory.",
        ),
        "one more VMA and a gap between addresses",
        "The region has one more VMA and nothing is mapped in the hole.",
        act_munmap,
        check_munmap,
    ),
    Step(
        "mremap-grow",
        "mremap: grow (and maybe move) a mapping",
        (
            "The workload grows the last 1.25 MiB piece to 2.5 MiB (MREMAP_MAYMOVE).",
            "If the addresses after it are free it grows in place, else the kernel moves it.",
            "Moving moves page-table entries, not data: resident pages come along uncopied.",
        ),
        "the VMA grows, maybe at a new address, keeping its resident pages",
        "The mapping covers the new size and exactly the old resident pages came along.",
        act_mremap,
        check_mremap,
    ),
    Step(
        "madvise-dontneed",
        "madvise(MADV_DONTNEED): the pages go away",
        (
            "The workload tells the kernel it no longer needs the first 1 MiB.",
            "For private anonymous memory the pages are freed at once;",
            "the VMA stays, and the next touch gets a fresh zero page (a new fault).",
        ),
        "resident pages in the first 1 MiB drop to 0; the VMA stays",
        "The resident pages in the range went away and the VMA stayed.",
        act_dontneed,
        check_dontneed,
    ),
    Step(
        "fork",
        "fork: parent and child share pages",
        (
            "The workload forks. The child gets a copy of every VMA, not of the pages:",
            "both page tables point at the same physical pages, write-protected.",
            "kpagecount (root) counts 2 mappings per page; pagemap stops calling",
            "them exclusive (that bit needs no root).",
        ),
        "the grown VMA's pages: mapped twice, no longer exclusive",
        "The child has the same pages resident and each is mapped twice, no longer exclusive.",
        act_fork,
        check_fork,
        root_note="mapping counts: /proc/kpagecount needs root",
    ),
    Step(
        "fork-cow",
        "The child writes: copy-on-write separates them",
        (
            "The child writes to 3 of the shared pages.",
            "Each write faults: the kernel copies the page for the child and maps the copy.",
            "The parent keeps the original, mapped once again: exclusive.",
        ),
        "3 of the parent's pages turn exclusive; shared pages drop by 3",
        "Exactly the 3 written pages stopped being shared: exclusive again in both processes.",
        act_child_write,
        check_child_write,
        root_note="mapping counts: /proc/kpagecount needs root",
    ),
)
