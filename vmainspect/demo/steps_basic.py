"""Lesson steps: mmap, page faults, the page cache, copy-on-write, msync, close.

Each step's functions sit beside its ``Step`` (text, claim, act, check);
``lesson.STEPS`` puts every module's steps in story order.
"""

from __future__ import annotations

from ..model import ANON, FILE, FILE_DIRTY, Snapshot
from ..units import plural
from . import measure as m
from .steps import MIB, Check, Ctx, Info, Step, evict, original, pages_text, q, sorted_or_none

ANON_PAGES = 1024  # the anonymous region: 4 MiB
EVERY = 16  # touch every 16th page
PRIVATE_PAGES = 1024  # private.dat: 4 MiB
READ_PAGES = [0, 256, 512, 768]
COW_PAGES = [0, 1, 2, 3]
SHARED_PAGES = 256  # shared.dat: 1 MiB
DIRTY_PAGES = [0, 100, 200]
PRIVATE_DATA = "PRIVATE WRITE..."
SHARED_DATA = "SHARED WRITE...."
SYNC_DATA = "SYNCED WRITE...."


# --- 1. anonymous mmap ---------------------------------------------------------


def act_anon(c: Ctx) -> Info:
    r = c.req("anon", len=ANON_PAGES * c.page)
    c.regions["anon"] = (r["addr"], r["len"])
    return {"focus": r["addr"]}


def check_anon(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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


def act_touch(c: Ctx) -> Info:
    addr, n = c.region("anon")
    c.req("touch", addr=addr, len=n, every=EVERY)
    return {"focus": addr, "touched": list(range(0, n // c.page, EVERY))}


def check_touch(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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


def prepare_cold(c: Ctx) -> Info:
    path = c.files["private"]
    evict(path)
    cached = m.cache(path)
    return {"cached_before": None if cached is None else cached.cached}


def act_cold(c: Ctx) -> Info:
    r = c.req("map-file", path=c.files["private"], shared=False, len=PRIVATE_PAGES * c.page)
    c.regions["private"] = (r["addr"], r["len"])
    c.req("read", addr=r["addr"], pages=READ_PAGES)
    return {"focus": r["addr"], "read": READ_PAGES, "range": (r["addr"], r["len"])}


def check_cold(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("private")
    minor, major = m.faults(b, a)
    res = m.present(a, addr, n)
    cache_after = m.cache(c.files["private"])
    cached_after = None if cache_after is None else cache_after.cached
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
        f"read {len(x['read'])} pages: {plural(major, 'major fault')}, {len(res)} pages "
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


def act_cow(c: Ctx) -> Info:
    addr, _n = c.region("private")
    c.req("write", addr=addr, pages=COW_PAGES, data=PRIVATE_DATA)
    return {"focus": addr, "written": COW_PAGES}


def check_cow(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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
        f"{len(anon_a)} (pages {pages_text(sorted(anon_a))}); file on disk "
        + ("unchanged" if unchanged else "CHANGED"),
        {
            "the written pages, and only they, turned anonymous": anon_a - anon_b == set(x["written"])
            and not anon_b,
            "the file still holds its old bytes": unchanged,
        },
    )


# --- 5. map MAP_SHARED and read it --------------------------------------------


def act_shared_map(c: Ctx) -> Info:
    r = c.req("map-file", path=c.files["shared"], shared=True, len=SHARED_PAGES * c.page)
    c.regions["shared"] = (r["addr"], r["len"])
    c.fds["shared"] = r["info"]["fd"]
    c.req("read", addr=r["addr"], pages=list(range(SHARED_PAGES)))
    return {"focus": r["addr"]}


def check_shared_map(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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


def act_shared_write(c: Ctx) -> Info:
    addr, n = c.region("shared")
    c.req("write", addr=addr, pages=DIRTY_PAGES, data=SHARED_DATA)
    return {"focus": addr, "written": DIRTY_PAGES, "range": (addr, n), "dirty_file": c.files["shared"]}


def check_shared_write(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("shared")
    dirty = m.dirty_file(a, addr, n)
    cached_dirty = m.cached_dirty(c.files["shared"])
    seen = m.file_pages_equal(c.files["shared"], c.page, x["written"], lambda p: SHARED_DATA.encode())
    written = set(x["written"])
    meas = {
        "written_pages": len(written),
        "dirty_pages": sorted_or_none(dirty),
        "dirty": None if dirty is None else len(dirty),
        "extra_dirty_from_folios": None if dirty is None else len(dirty - written),
        "page_cache_dirty": cached_dirty,
        "read_sees_new_bytes": seen,
    }
    extra = meas["extra_dirty_from_folios"]
    summ = (
        f"wrote {len(written)} pages; dirty pages mapped: "
        + ("? (needs root)" if dirty is None else f"{len(dirty)} ({pages_text(sorted(dirty))})")
        + (f", {extra} of them only because they share a folio with a written page" if extra else "")
        + f"; dirty in the file's page cache (cachestat): {q(cached_dirty)}"
        + f"; read(2) of the file {'sees' if seen else 'does NOT see'} the new bytes"
    )
    return Check(
        meas,
        summ,
        {
            "every written page is dirty": None if dirty is None else written <= dirty,
            "the page cache holds dirty pages (cachestat)": None
            if cached_dirty is None
            else cached_dirty >= len(written),
            "read(2) sees the new bytes at once": seen,
        },
    )


# --- 7. msync ------------------------------------------------------------------


def act_msync(c: Ctx) -> Info:
    """Write, count the dirty pages, msync: the verdict never depends on how long the lecturer talked."""
    addr, n = c.region("shared")
    c.req("write", addr=addr, pages=DIRTY_PAGES, data=SYNC_DATA)
    mid = c.snap(c.pid)
    mapped = m.dirty_file(mid, addr, n)
    cached = m.cached_dirty(c.files["shared"])
    c.req("msync", addr=addr, len=n)
    return {
        "transitions": (mid, c.snap(c.pid)),  # what msync did
        "focus": addr,
        "range": (addr, n),
        "written": DIRTY_PAGES,
        "dirty_mapped_before_msync": None if mapped is None else len(mapped),
        "dirty_cached_before_msync": cached,
    }


def check_msync(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("shared")
    now = m.dirty_file(a, addr, n)
    cached_now = m.cached_dirty(c.files["shared"])
    before = x["dirty_cached_before_msync"]
    mapped_before = x["dirty_mapped_before_msync"]
    meas = {
        "written_pages": len(x["written"]),
        "dirty_before_msync": before,
        "dirty_after_msync": cached_now,
        "dirty_mapped_before_msync": mapped_before,
        "dirty_mapped_after_msync": None if now is None else len(now),
        "present_after": len(m.present(a, addr, n)),
    }
    return Check(
        meas,
        f"wrote {len(x['written'])} pages; right before msync {q(before)} pages of the file were dirty "
        f"(cachestat; mapped and dirty: {q(mapped_before)}); after msync: {q(cached_now)} "
        f"(mapped: {q(meas['dirty_mapped_after_msync'])}); still resident: {meas['present_after']}",
        {
            "pages were dirty right before msync": None if before is None else before >= len(x["written"]),
            "no dirty page remains (cachestat)": None if cached_now is None else cached_now == 0,
            "no mapped page is dirty (kpageflags)": None if now is None else not now,
            "the pages stay in memory": meas["present_after"] == n // c.page,
        },
        unknown_why="needs root (kpageflags) or cachestat(2) (Linux 6.5+)",
    )


# --- 8. close the descriptor -------------------------------------------------------


def act_close(c: Ctx) -> Info:
    addr, _n = c.region("shared")
    fd = c.fds["shared"]
    target = m.fd_target(c.pid, fd)
    c.req("close-fd", addr=addr)
    return {"focus": addr, "fd": fd, "fd_before": target}


def check_close(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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


STEPS: tuple[Step, ...] = (
    Step(
        "anon-mmap",
        "mmap: a new mapping, nothing in it",
        (
            "The workload calls mmap(4 MiB, read+write, MAP_PRIVATE|MAP_ANONYMOUS).",
            "The kernel only records a VMA: an address range and its rights.",
            "No memory is used yet: pages arrive later, one fault at a time.",
            "(MADV_NOHUGEPAGE keeps this demo at 4 KiB pages whatever THP says.)",
        ),
        "a new 4 MiB anonymous VMA; its RSS is 0",
        "A new VMA covers the 4 MiB range and none of its 1024 pages is resident.",
        act_anon,
        check_anon,
        article="mmap creates a vm_area_struct; memory is used only when pages are touched",
        linux="agreed: a VMA is recorded, and RSS stays 0 until the first touch",
    ),
    Step(
        "touch-pages",
        "Touching pages: minor faults",
        (
            "The workload writes one byte to every 16th page: 64 of 1024 pages.",
            "Each first touch traps into the kernel: a page fault.",
            "The kernel takes a free page, zeroes it and maps it: a minor fault,",
            "no disk involved. The pages in between stay absent.",
        ),
        "RSS +256 KiB: every 16th page present; minor faults +64 or more",
        "Exactly the 64 touched pages became resident, with at least one minor fault each.",
        act_touch,
        check_touch,
        article="only the pages actually accessed are loaded, each through a page fault",
        linux="agreed for anonymous memory: one minor fault per touched page, the rest stay absent",
    ),
    Step(
        "cold-file-read",
        "Reading a cold file: major faults, readahead, fault-around",
        (
            "vmainspect wrote a 4 MiB file, fsync'ed it and evicted it from the page cache.",
            "The workload maps it MAP_PRIVATE and reads 4 pages, 1 MiB apart.",
            "A page not in the page cache means waiting for the disk: a major fault.",
            "Readahead reads the neighbours too, and fault-around maps up to",
            "fault_around_bytes (64 KiB by default) of cached pages per fault;",
            "large folios in the page cache make it chunkier still.",
        ),
        "major faults > 0; many more pages resident than the 4 read",
        "Reading 4 pages of a cold file took major faults and made more than 4 pages resident.",
        act_cold,
        check_cold,
        article="a fault copies the needed page from disk into memory",
        linux="a fault waits for the disk only if the page is not cached, and maps many neighbours too",
        prepare=prepare_cold,
    ),
    Step(
        "private-write",
        "Writing to MAP_PRIVATE: copy-on-write",
        (
            "The workload writes to the first 4 pages of the private file mapping.",
            'MAP_PRIVATE means "my changes are mine": the kernel copies each page',
            "into a new anonymous page (copy-on-write) and maps the copy.",
            "The page cache, and so the file, keeps the old bytes:",
            "vmainspect reads the file back with read(2) to check.",
        ),
        "4 pages of the file VMA turn from file to anon",
        "Exactly the 4 written pages turned anonymous, and the file still holds its old bytes.",
        act_cow,
        check_cow,
    ),
    Step(
        "shared-map",
        "MAP_SHARED: the mapping is the page cache",
        (
            "The workload maps a 1 MiB file MAP_SHARED and reads every page.",
            "A shared file mapping points straight at the page cache: no copies.",
            "Every process mapping the file, and read(2)/write(2), use the same pages.",
        ),
        "256 resident file pages, all clean (dirtiness needs root)",
        "All 256 pages are resident page-cache pages and none is dirty.",
        act_shared_map,
        check_shared_map,
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "shared-write",
        "Writing to MAP_SHARED: dirty page cache",
        (
            "The workload writes to pages 0, 100 and 200 of the shared mapping.",
            "The bytes land in the page cache page itself, which becomes dirty:",
            "it must reach the disk later (writeback, about 30 s: watch the writeback clock).",
            "Dirtiness is per folio: a page in a large folio dirties the whole folio.",
            "read(2) of the file already returns the new bytes: same page cache.",
        ),
        "file-dirty pages at the written places (root)",
        "Every written page is dirty in the page cache, and read(2) already sees the new bytes.",
        act_shared_write,
        check_shared_write,
        article="the kernel writes dirty pages back automatically, so syncing is rarely needed",
        linux="it does, about 30 s later (dirty_expire_centisecs): until then a power loss loses them",
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "msync",
        "msync(MS_SYNC): clean again",
        (
            "The workload writes pages 0, 100 and 200 again; vmainspect counts the dirty",
            "pages (cachestat), then the workload calls msync(MS_SYNC): it writes the range's",
            "dirty pages to disk and waits. The pages stay cached and mapped; only the dirty",
            "flag is gone. (The step writes first, so the pace of the lecture cannot matter.)",
        ),
        "the step writes 3 pages, counts the dirty ones, msyncs: dirty drops to 0, resident stays",
        "Right before msync the written pages were dirty; after it none is, and all the pages are still resident.",
        act_msync,
        check_msync,
        article="dirty pages are written back automatically or on msync()",
        linux="msync(MS_SYNC) writes them now and waits: the only way to know they are on disk",
        root_note="dirty pages: /proc/kpageflags needs root",
    ),
    Step(
        "close-fd",
        "close(fd): the mapping stays",
        (
            "The workload closes the file descriptor it passed to mmap.",
            "The VMA holds its own reference to the file (vm_file), not the descriptor,",
            "so the mapping, its pages and the open file live on until munmap or exit.",
        ),
        "/proc/PID/fd loses the descriptor; the VMA does not change",
        "The descriptor is closed, and the mapping and its resident pages are unchanged.",
        act_close,
        check_close,
        article="the mapping stays valid after the descriptor is closed",
        linux="agreed: the VMA holds its own reference to the file",
    ),
)
