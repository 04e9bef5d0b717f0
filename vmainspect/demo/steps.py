"""The lesson: each step's text, the one thing the workload does, and the check.

A step's ``act`` sends the workload one command (rarely two) and returns
what the check needs to know about the request (never a result). Its
``check`` gets snapshots taken just before and just after (collect with
pages) and computes the verdict from them: pages present, dirty, shared,
VMAs, fault counters, file contents read back by vmainspect itself.

A claim has parts. If a measurable part fails the claim is false. If every
measurable part holds but one needs root to be seen (kpageflags,
kpagecount), the claim is unknown (``holds = None``) and ``reason`` says
what could not be seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import ANON, FILE, FILE_DIRTY, Snapshot
from . import measure as m
from .control import DemoSession

MIB = 1 << 20
ANON_PAGES = 1024  # the anonymous region: 4 MiB
EVERY = 16  # touch every 16th page
PRIVATE_PAGES = 1024  # private.dat: 4 MiB
READ_PAGES = [0, 256, 512, 768]
COW_PAGES = [0, 1, 2, 3]
SHARED_PAGES = 256  # shared.dat: 1 MiB
DIRTY_PAGES = [0, 100, 200]
PROTECT = (256, 256)  # (first page, pages) made read-only
HOLE = (640, 64)  # unmapped
TAIL = (704, 320)  # mremap'd: grown to TAIL_NEW pages
TAIL_NEW = 640
CHILD_PAGES = [0, 16, 32]  # pages of the tail the forked child writes
SHORT_BYTES = 6000  # short.dat: mapped as 4 pages
SHORT_MAP_PAGES = 4
PRIVATE_DATA = "PRIVATE WRITE..."
SHARED_DATA = "SHARED WRITE...."
CHILD_DATA = "CHILD WRITE....."


def original(p: int) -> bytes:
    """The first 16 bytes of page ``p`` of the demo files as created."""
    return bytes([(p * 7 + 1) % 255 + 1]) * 16


@dataclass
class Ctx:
    """What the steps share: the session, file paths, where things were mapped."""

    session: DemoSession
    collect: Callable[..., Snapshot]  # collect(pid, pages=True) -> Snapshot
    page: int
    files: dict[str, str] = field(default_factory=dict)
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)
    child: int | None = None

    @property
    def pid(self) -> int:
        return self.session.pid

    def snap(self, pid: int) -> Snapshot:
        return self.collect(pid, pages=True)

    def req(self, op: str, **args) -> dict:
        return self.session.request(op, **args)

    def region(self, name: str, first: int = 0, count: int | None = None) -> tuple[int, int]:
        addr, length = self.regions[name]
        n = length // self.page - first if count is None else count
        return addr + first * self.page, n * self.page


@dataclass
class Check:
    measured: dict
    summary: str  # one line with the numbers
    parts: dict[str, bool | None]  # claim part -> held (None: could not be seen)
    unknown_why: str = "needs root (kpageflags/kpagecount): not visible to this user"

    @property
    def holds(self) -> bool | None:
        vals = list(self.parts.values())
        if any(v is False for v in vals):
            return False
        if any(v is None for v in vals):
            return None
        return True

    @property
    def reason(self) -> str | None:
        if self.holds is None:
            missing = ", ".join(k for k, v in self.parts.items() if v is None)
            return f"{missing}: {self.unknown_why}"
        if self.holds is False:
            return "did not hold: " + ", ".join(k for k, v in self.parts.items() if v is False)
        return None


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    narration: tuple[str, ...]
    watch: str
    claim: str
    act: Callable[[Ctx], dict]
    check: Callable[[Ctx, Snapshot, Snapshot, dict], Check]
    prepare: Callable[[Ctx], dict] | None = None
    root_note: str | None = None  # what this step cannot show without root


def _sorted(s: set[int] | None) -> list[int] | None:
    return None if s is None else sorted(s)


def _pages_text(pages: list[int] | None, limit: int = 8) -> str:
    if pages is None:
        return "?"
    text = ",".join(map(str, pages[:limit]))
    return text + (",…" if len(pages) > limit else "")


# --- 1. anonymous mmap ---------------------------------------------------------


def act_anon(c: Ctx) -> dict:
    r = c.req("anon", len=ANON_PAGES * c.page)
    c.regions["anon"] = (r["addr"], r["len"])
    return {"focus": r["addr"]}


def check_anon(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("anon")
    was = m.overlapping(b, addr, n)
    now = m.overlapping(a, addr, n)
    res = m.present(a, addr, n)
    meas = {
        "vmas_before": len(was),
        "vmas_after": len(now),
        "size": n,
        "present_pages": len(res),
        "vmas_total_before": len(b.vmas),
        "vmas_total_after": len(a.vmas),
    }
    return Check(
        meas,
        f"{len(b.vmas)} -> {len(a.vmas)} VMAs; new {n // MIB} MiB VMA has "
        f"{len(res)} of {n // c.page} pages resident",
        {"a new VMA covers the range": not was and m.covered(a, addr, n), "no page resident": len(res) == 0},
    )


# --- 2. touch every 16th page --------------------------------------------------


def act_touch(c: Ctx) -> dict:
    addr, n = c.region("anon")
    c.req("touch", addr=addr, len=n, every=EVERY)
    return {"focus": addr, "touched": list(range(0, n // c.page, EVERY))}


def check_touch(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("anon")
    minor, major = m.faults(b, a)
    was, now = m.present(b, addr, n), m.present(a, addr, n)
    want = set(x["touched"])
    meas = {
        "touched_pages": len(want),
        "present_before": len(was),
        "present_after": len(now),
        "minor_faults": minor,
        "major_faults": major,
    }
    return Check(
        meas,
        f"touched {len(want)} pages: {len(was)} -> {len(now)} resident, {minor} minor / {major} major faults",
        {
            "exactly the touched pages became resident": now - was == want and not was,
            "at least one minor fault per touched page": minor >= len(want),
        },
    )


# --- 3. cold MAP_PRIVATE file read ---------------------------------------------


def prepare_cold(c: Ctx) -> dict:
    path = c.files["private"]
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped: write them first
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    from .libc import page_cache_pages

    return {"cached_before": page_cache_pages(path)[0]}


def act_cold(c: Ctx) -> dict:
    r = c.req("map-file", path=c.files["private"], shared=False, len=PRIVATE_PAGES * c.page)
    c.regions["private"] = (r["addr"], r["len"])
    c.req("read", addr=r["addr"], pages=READ_PAGES)
    return {"focus": r["addr"], "read": READ_PAGES}


def check_cold(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    from .libc import page_cache_pages

    addr, n = c.region("private")
    minor, major = m.faults(b, a)
    res = m.present(a, addr, n)
    cached_after = page_cache_pages(c.files["private"])[0]
    vma = a.vma_at(addr)
    thp = vma.pages.counts.thp if vma and vma.pages else None
    fab = m.fault_around_bytes()
    meas = {
        "read_pages": len(x["read"]),
        "present_after": len(res),
        "present_per_read": round(len(res) / len(x["read"]), 1),
        "page_cache_before": x["cached_before"],
        "page_cache_after": cached_after,
        "major_faults": major,
        "minor_faults": minor,
        "large_folio_pages": thp,
        "fault_around_bytes": fab,
        "read_ahead_kb": m.read_ahead_kb(c.files["private"]),
        "tmpfs": c.session.on_tmpfs,
    }
    parts = {
        "the file was not cached": x["cached_before"] == 0,
        "major faults were taken": major >= 1,
        "more pages resident than read": len(res) > len(x["read"]),
        "the read pages are resident": set(x["read"]) <= res,
    }
    ra = meas["read_ahead_kb"]
    chk = Check(
        meas,
        f"read {len(x['read'])} pages: {major} major faults, {len(res)} pages "
        f"resident ({len(res) / len(x['read']):.0f} per read), page cache "
        f"{x['cached_before']} -> {cached_after} pages"
        + (f" (read_ahead_kb {ra})" if ra is not None else ""),
        parts,
    )
    if c.session.on_tmpfs:
        chk.parts["the file was not cached"] = None
        chk.parts["major faults were taken"] = None
        chk.unknown_why = "the demo folder is on tmpfs, whose pages cannot be evicted"
    return chk


# --- 4. write to MAP_PRIVATE: copy-on-write --------------------------------------


def act_cow(c: Ctx) -> dict:
    addr, _n = c.region("private")
    c.req("write", addr=addr, pages=COW_PAGES, data=PRIVATE_DATA)
    return {"focus": addr, "written": COW_PAGES}


def check_cow(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("private")
    anon_b = m.pages_in(b, addr, n, (ANON,))
    anon_a = m.pages_in(a, addr, n, (ANON,))
    unchanged = m.file_pages_equal(c.files["private"], c.page, x["written"], original)
    meas = {
        "written_pages": len(x["written"]),
        "anon_before": len(anon_b),
        "anon_after": len(anon_a),
        "anon_pages": sorted(anon_a),
        "file_unchanged": unchanged,
    }
    return Check(
        meas,
        f"wrote {len(x['written'])} pages: anonymous pages {len(anon_b)} -> "
        f"{len(anon_a)} (pages {_pages_text(sorted(anon_a))}); file on disk "
        + ("unchanged" if unchanged else "CHANGED"),
        {
            "the written pages, and only they, turned anonymous": anon_a - anon_b == set(x["written"])
            and not anon_b,
            "the file still holds its old bytes": unchanged,
        },
    )


# --- 5. map MAP_SHARED and read it --------------------------------------------


def act_shared_map(c: Ctx) -> dict:
    r = c.req("map-file", path=c.files["shared"], shared=True, len=SHARED_PAGES * c.page)
    c.regions["shared"] = (r["addr"], r["len"])
    c.fds["shared"] = r["info"]["fd"]
    c.req("read", addr=r["addr"], pages=list(range(SHARED_PAGES)))
    return {"focus": r["addr"]}


def check_shared_map(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("shared")
    res = m.present(a, addr, n)
    filep = m.pages_in(a, addr, n, (FILE, FILE_DIRTY))
    dirty = m.dirty_file(a, addr, n)
    meas = {
        "pages": n // c.page,
        "present": len(res),
        "file_pages": len(filep),
        "dirty": None if dirty is None else len(dirty),
    }
    return Check(
        meas,
        f"{len(res)} of {n // c.page} pages resident, all page-cache pages; "
        f"dirty: {'?' if dirty is None else len(dirty)}",
        {
            "every page is resident and file-backed": len(filep) == n // c.page,
            "no page is dirty": None if dirty is None else not dirty,
        },
    )


# --- 6. write to MAP_SHARED: dirty page cache -------------------------------------


def act_shared_write(c: Ctx) -> dict:
    addr, _n = c.region("shared")
    c.req("write", addr=addr, pages=DIRTY_PAGES, data=SHARED_DATA)
    return {"focus": addr, "written": DIRTY_PAGES}


def check_shared_write(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("shared")
    dirty = m.dirty_file(a, addr, n)
    seen = m.file_pages_equal(c.files["shared"], c.page, x["written"], lambda p: SHARED_DATA.encode())
    written = set(x["written"])
    meas = {
        "written_pages": len(written),
        "dirty_pages": _sorted(dirty),
        "dirty": None if dirty is None else len(dirty),
        "extra_dirty_from_folios": None if dirty is None else len(dirty - written),
        "read_sees_new_bytes": seen,
    }
    extra = meas["extra_dirty_from_folios"]
    summ = (
        f"wrote {len(written)} pages; dirty pages: "
        + ("? (needs root)" if dirty is None else f"{len(dirty)} ({_pages_text(sorted(dirty))})")
        + (f", {extra} of them only because they share a folio with a written page" if extra else "")
        + f"; read(2) of the file {'sees' if seen else 'does NOT see'} the new bytes"
    )
    return Check(
        meas,
        summ,
        {
            "every written page is dirty": None if dirty is None else written <= dirty,
            "read(2) sees the new bytes at once": seen,
        },
    )


# --- 7. msync ------------------------------------------------------------------


def act_msync(c: Ctx) -> dict:
    addr, n = c.region("shared")
    c.req("msync", addr=addr, len=n)
    return {"focus": addr}


def check_msync(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("shared")
    was, now = m.dirty_file(b, addr, n), m.dirty_file(a, addr, n)
    meas = {
        "dirty_before": None if was is None else len(was),
        "dirty_after": None if now is None else len(now),
        "present_after": len(m.present(a, addr, n)),
    }
    return Check(
        meas,
        f"dirty pages {meas['dirty_before'] if was is not None else '?'} -> "
        f"{meas['dirty_after'] if now is not None else '?'}; still resident: "
        f"{meas['present_after']}",
        {
            "no dirty page remains": None if now is None else not now,
            "the pages stay in memory": meas["present_after"] == n // c.page,
        },
    )


# --- 8. close the descriptor -------------------------------------------------------


def act_close(c: Ctx) -> dict:
    addr, _n = c.region("shared")
    fd = c.fds["shared"]
    target = m.fd_target(c.pid, fd)
    c.req("close-fd", addr=addr)
    return {"focus": addr, "fd": fd, "fd_before": target}


def check_close(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("shared")
    after = m.fd_target(c.pid, x["fd"])
    vb, va = b.vma_at(addr), a.vma_at(addr)
    same = bool(vb and va and (vb.start, vb.end, vb.inode) == (va.start, va.end, va.inode))
    meas = {
        "fd": x["fd"],
        "fd_before": x["fd_before"],
        "fd_after": after,
        "vma_path": va.path if va else None,
        "present_before": len(m.present(b, addr, n)),
        "present_after": len(m.present(a, addr, n)),
    }
    return Check(
        meas,
        f"fd {x['fd']}: {x['fd_before']} -> {after or 'closed'}; "
        f"VMA {'unchanged' if same else 'CHANGED'} ({va.path if va else 'gone'}), "
        f"{meas['present_after']} pages still resident",
        {
            "the descriptor is closed": x["fd_before"] is not None and after is None,
            "the mapping is unchanged": same and meas["present_after"] == meas["present_before"],
        },
    )


# --- 9-11. mprotect, munmap, mremap --------------------------------------------------


def act_mprotect(c: Ctx) -> dict:
    addr, n = c.region("anon", *PROTECT)
    c.req("mprotect", addr=addr, len=n, prot="r--")
    return {"focus": addr}


def check_mprotect(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
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
        f"VMAs over the region: {len(was)} -> {len(now)} ({' '.join(meas['perms'])})",
        {
            "one VMA became three": len(was) == 1 and len(now) == 3,
            "the middle one is read-only and exact": mv is not None
            and mv.perms.startswith("r-")
            and (mv.start, mv.end) == (mid, mid + mid_n),
        },
    )


def act_munmap(c: Ctx) -> dict:
    addr, n = c.region("anon", *HOLE)
    c.req("munmap", addr=addr, len=n)
    return {"focus": addr - c.page}


def check_munmap(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
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


def act_mremap(c: Ctx) -> dict:
    addr, n = c.region("anon", *TAIL)
    r = c.req("mremap", addr=addr, len=n, new_len=TAIL_NEW * c.page)
    c.regions["tail"] = (r["addr"], r["len"])
    return {"focus": r["addr"], "old": (addr, n)}


def check_mremap(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
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
        f"{minor} minor faults in the step)",
        {
            "the mapping covers the new size": m.covered(a, new, new_n),
            "the resident pages came along": now == was and len(was) > 0,
            "nothing left at the old place": not meas["old_range_mapped_after"],
        },
    )


# --- 12. madvise(MADV_DONTNEED) ---------------------------------------------------


def act_dontneed(c: Ctx) -> dict:
    addr, n = c.region("anon", 0, PROTECT[0])
    c.req("madvise", addr=addr, len=n, advice="dontneed")
    return {"focus": addr}


def check_dontneed(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, n = c.region("anon", 0, PROTECT[0])
    was, now = m.present(b, addr, n), m.present(a, addr, n)
    meas = {"present_before": len(was), "present_after": len(now), "vma_still_mapped": m.covered(a, addr, n)}
    return Check(
        meas,
        f"resident pages {len(was)} -> {len(now)}; the VMA "
        + ("stays" if meas["vma_still_mapped"] else "is GONE"),
        {"resident pages went away": len(was) > 0 and not now, "the VMA stays": meas["vma_still_mapped"]},
    )
