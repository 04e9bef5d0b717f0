"""Lesson steps on what the kernel does with the pages: large folios, zero-copy, IPC, reclaim.

Each measures one of the article's claims on the running kernel: a write
through MAP_SHARED dirties a whole folio, a first touch can map a whole huge
page, read() holds the data twice while mmap maps the page cache itself,
two processes mapping one file share its pages, and clean file pages can be
dropped without swap while anonymous ones cannot.
"""

from __future__ import annotations

import glob
import os

from ..model import ANON, FILE, FILE_DIRTY, Snapshot, Vma
from ..units import plural
from . import libc
from . import measure as m
from .steps import Check, Ctx, Info, Step, q, write_file

THP_BYTES = 2 << 20  # the anonymous region for the huge page: one PMD
FOLIO_PAGES = 256  # folio.dat: 1 MiB, written in one go
FOLIO_WRITE_PAGE = 10
ZC_PAGES = 64  # zero-copy.dat
IPC_PAGES = 16  # ipc.dat
IPC_MESSAGE = "hello from the workload"
RECLAIM_PAGES = 256  # reclaim.dat
RECLAIM_ANON_PAGES = 64


# --- a first touch maps a whole huge page ----------------------------------------------


def _thp_sizes() -> list[str]:
    """The THP sizes anonymous memory may use after MADV_HUGEPAGE (e.g. ["2048kB"])."""
    top = m.thp_setting()
    out = []
    for path in sorted(glob.glob("/sys/kernel/mm/transparent_hugepage/hugepages-*/enabled")):
        s = m.thp_setting(path)
        if s in ("always", "madvise") or (s == "inherit" and top in ("always", "madvise")):
            out.append(path.split("/")[-2].removeprefix("hugepages-"))
    if (
        not out
        and top in ("always", "madvise")
        and not glob.glob("/sys/kernel/mm/transparent_hugepage/hugepages-*")
    ):
        out.append("PMD")  # a kernel without per-size controls (before 6.8)
    return out


def act_thp(c: Ctx) -> Info:
    # docs/kernel-notes.md, "A first touch can map a whole huge page"
    fallback = m.global_numbers("vmstat").get("thp_fault_fallback")
    r = c.req("anon", len=THP_BYTES, thp=True, name="vmainspect huge")
    c.regions["huge"] = (r["addr"], r["len"])
    c.req("touch", addr=r["addr"], len=c.page)
    return {
        "focus": r["addr"],
        "range": (r["addr"], r["len"]),
        "advised": r["info"]["advised"],
        "fallback_before": fallback,
        "fallback_after": m.global_numbers("vmstat").get("thp_fault_fallback"),
    }


def check_thp(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("huge")
    res = m.present(a, addr, n)
    minor, _major = m.faults(b, a)
    v = a.vma_at(addr)
    huge = v.smaps.get("anon_huge_pages") if v else None
    sizes = _thp_sizes()
    fb = x["fallback_before"]
    fell_back = None if fb is None or x["fallback_after"] is None else x["fallback_after"] - fb
    meas = {
        "touched_bytes": 1,
        "present_after": len(res),
        "minor_faults": minor,
        "anon_huge_bytes": huge,
        "thp_sizes_enabled": ",".join(sizes) or None,
        "thp_fault_fallback": fell_back,
    }
    many = len(res) > 1
    why = "needs root"
    part: bool | None = many and minor < len(res)
    if not sizes:
        part, why = None, "transparent huge pages are switched off on this machine"
    elif not many and fell_back:
        part, why = None, "the kernel found no free huge page and fell back to 4 KiB (thp_fault_fallback)"
    return Check(
        meas,
        f"one byte written: {len(res)} pages present ({q(huge)} bytes in huge pages, smaps "
        f"AnonHugePages) after {plural(minor, 'minor fault')}; THP sizes enabled: {', '.join(sizes) or 'none'}",
        {"one first touch mapped many pages at once": part},
        unknown_why=why,
    )


# --- one byte through MAP_SHARED dirties a whole folio -----------------------------------


def prepare_folio(c: Ctx) -> Info:
    write_file(c.path("folio.dat"), FOLIO_PAGES, c.page, one_go=True)
    return {"dirty_before": m.cached_dirty(c.files["folio.dat"])}


def act_folio(c: Ctx) -> Info:
    path = c.files["folio.dat"]
    r = c.req("map-file", path=path, shared=True, len=FOLIO_PAGES * c.page)
    c.regions["folio"] = (r["addr"], r["len"])
    c.req("write", addr=r["addr"], pages=[FOLIO_WRITE_PAGE], data="!")
    return {"focus": r["addr"], "range": (r["addr"], r["len"]), "dirty_file": path}


def check_folio(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("folio")
    dirty = m.cached_dirty(c.files["folio.dat"])
    mapped_dirty = m.dirty_file(a, addr, n)
    meas = {
        "bytes_written": 1,
        "page_cache_dirty_before": x["dirty_before"],
        "page_cache_dirty_after": dirty,
        "mapped_pages": len(m.present(a, addr, n)),
        "mapped_dirty_pages": None if mapped_dirty is None else len(mapped_dirty),
    }
    part: bool | None = None if dirty is None else dirty > 1 and x["dirty_before"] == 0
    why = "cachestat(2) is not available (Linux 6.5+)"
    if dirty == 1:
        part, why = None, "this file system keeps the file in 4 KiB folios: one byte dirtied one page"
    return Check(
        meas,
        f"1 byte written to page {FOLIO_WRITE_PAGE}: {q(dirty)} of the file's {FOLIO_PAGES} pages are now "
        f"dirty in the page cache (cachestat); mapped and dirty (kpageflags): {q(meas['mapped_dirty_pages'])}",
        {"one byte made many pages dirty (a whole folio)": part},
        unknown_why=why,
    )


# --- zero-copy: read() copies, mmap maps the page cache -----------------------------------


def prepare_zero_copy(c: Ctx) -> Info:
    write_file(c.path("zero-copy.dat"), ZC_PAGES, c.page)
    return {}


def act_zero_copy(c: Ctx) -> Info:
    path = c.files["zero-copy.dat"]
    buf = c.req("read-file", path=path, len=ZC_PAGES * c.page, name="vmainspect read buffer")
    c.regions["read buffer"] = (buf["addr"], buf["len"])
    r = c.req("map-file", path=path, shared=True, writable=False, len=ZC_PAGES * c.page)
    c.regions["zero-copy"] = (r["addr"], r["len"])
    c.req("read", addr=r["addr"], pages=list(range(ZC_PAGES)))
    return {"focus": r["addr"], "range": (r["addr"], r["len"]), "read": buf["info"]["read"]}


def _own_pfns(path: str, npages: int, page: int) -> list[int | None] | None:
    """PFNs of ``path``'s page-cache pages, seen through a mapping in vmainspect itself."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        addr = libc.mmap_(npages * page, libc.PROT_READ, libc.MAP_SHARED, fd, 0)
    finally:
        os.close(fd)
    try:
        for i in range(npages):
            libc.read_bytes(addr + i * page, 1)
        return m.pfns(os.getpid(), addr, npages * page, page)
    finally:
        libc.munmap(addr, npages * page)


def check_zero_copy(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    buf, bn = c.region("read buffer")
    addr, n = c.region("zero-copy")
    anon = m.pages_in(a, buf, bn, (ANON,))
    filep = m.pages_in(a, addr, n, (FILE, FILE_DIRTY))
    cached = m.cache(c.files["zero-copy.dat"])
    mine, theirs, copy = None, m.pfns(c.pid, addr, n, c.page), m.pfns(c.pid, buf, bn, c.page)
    same: bool | None = None
    if theirs is not None and copy is not None:
        mine = _own_pfns(c.files["zero-copy.dat"], ZC_PAGES, c.page)
        if mine is not None:
            same = mine == theirs and None not in theirs and not set(copy) & set(theirs)
    meas = {
        "bytes_read": x["read"],
        "buffer_anon_pages": len(anon),
        "mapping_file_pages": len(filep),
        "page_cache_pages": None if cached is None else cached.cached,
        "memory_pages_read_path": len(anon) + (0 if cached is None else cached.cached),
        "memory_pages_mmap_path": None if cached is None else cached.cached,
        "same_pfns_as_page_cache": same,
    }
    return Check(
        meas,
        f"read(): {len(anon)} anonymous pages in the buffer + the page cache; mmap: {len(filep)} mapped "
        f"page-cache pages, no copy; the file has {q(meas['page_cache_pages'])} pages cached; "
        f"mapping PFNs = page-cache PFNs, buffer PFNs different: "
        + {None: "? (needs root)", True: "yes", False: "NO"}[same],
        {
            "read() made an anonymous copy of every page": len(anon) == ZC_PAGES,
            "mmap mapped the page-cache pages themselves": len(filep) == ZC_PAGES,
            "the file is in the page cache once": None if cached is None else cached.cached == ZC_PAGES,
            "the mapping's PFNs are the page cache's, the buffer's are not (pagemap)": same,
        },
        unknown_why="needs root (PFNs in /proc/PID/pagemap) or cachestat(2)",
    )


# --- IPC: two processes, one file, one set of pages ----------------------------------------


def prepare_ipc(c: Ctx) -> Info:
    write_file(c.path("ipc.dat"), IPC_PAGES, c.page)
    return {}


def act_ipc(c: Ctx) -> Info:
    path, n = c.files["ipc.dat"], IPC_PAGES * c.page
    r = c.req("map-file", path=path, shared=True, len=n)
    c.regions["ipc"] = (r["addr"], n)
    c.req("read", addr=r["addr"], pages=list(range(IPC_PAGES)))
    peer = c.req("fork", name="peer")["info"]["child"]
    got = c.req("child", name="peer", cmd={"op": "map-file", "path": path, "shared": True, "len": n})
    peer_addr = got["info"]["reply"]["addr"]
    c.req("child", name="peer", cmd={"op": "read", "addr": peer_addr, "pages": list(range(IPC_PAGES))})
    c.req("write", addr=r["addr"], pages=[0], data=IPC_MESSAGE)
    said = c.req("child", name="peer", cmd={"op": "peek", "addr": peer_addr, "n": len(IPC_MESSAGE)})
    return {
        "focus": r["addr"],
        "range": (r["addr"], n),
        "peer": peer,
        "peer_addr": peer_addr,
        "peer_says": bytes.fromhex(said["info"]["reply"]["info"]["hex"]).decode(errors="replace"),
    }


def check_ipc(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("ipc")
    peer = c.snap(x["peer"])
    mem = m.read_mem(x["peer"], x["peer_addr"], len(IPC_MESSAGE))
    seen = None if mem is None else mem == IPC_MESSAGE.encode()
    mine, theirs = a.vma_at(addr), peer.vma_at(x["peer_addr"])

    def shared_bytes(v: Vma | None) -> int:
        return 0 if v is None else v.smaps.get("shared_clean", 0) + v.smaps.get("shared_dirty", 0)

    p1, p2 = m.pfns(c.pid, addr, n, c.page), m.pfns(x["peer"], x["peer_addr"], n, c.page)
    same = None if p1 is None or p2 is None else p1 == p2 and None not in p1
    meas = {
        "peer": x["peer"],
        "peer_read": x["peer_says"],
        "peer_memory_holds_message": seen,
        "workload_shared_bytes": shared_bytes(mine),
        "peer_shared_bytes": shared_bytes(theirs),
        "same_pfns": same,
    }
    return Check(
        meas,
        f"the workload wrote {IPC_MESSAGE!r}; process {x['peer']} reads {x['peer_says']!r} through its own "
        f"mapping; smaps Shared_*: {meas['workload_shared_bytes'] // 1024} KiB / "
        f"{meas['peer_shared_bytes'] // 1024} KiB; same PFNs: "
        + {None: "? (needs root)", True: "yes", False: "NO"}[same],
        {
            "the other process sees the write (its memory, /proc/PID/mem)": seen,
            "both mappings count the pages as shared (smaps)": meas["workload_shared_bytes"] == n
            and meas["peer_shared_bytes"] == n,
            "both map the same physical pages (pagemap PFNs)": same,
        },
        unknown_why="needs root (PFNs) or ptrace access to the peer (/proc/PID/mem)",
    )


# --- reclaim: clean file pages go, anonymous pages need swap ----------------------------------


def prepare_reclaim(c: Ctx) -> Info:
    c.req("end-child", name="peer")  # the IPC peer: it would share the next steps' pages
    write_file(c.path("reclaim.dat"), RECLAIM_PAGES, c.page)
    from .steps import evict

    evict(c.files["reclaim.dat"])
    return {}


def act_reclaim(c: Ctx) -> Info:
    # a private, read-only mapping of a cold, never-written file: what MADV_PAGEOUT
    # drops from the page cache (docs/kernel-notes.md, "MADV_PAGEOUT")
    path, n = c.files["reclaim.dat"], RECLAIM_PAGES * c.page
    r = c.req("map-file", path=path, shared=False, writable=False, len=n)
    c.regions["reclaim"] = (r["addr"], n)
    c.req("read", addr=r["addr"], pages=list(range(RECLAIM_PAGES)))
    an = c.req("anon", len=RECLAIM_ANON_PAGES * c.page, name="vmainspect reclaim")
    c.regions["reclaim anon"] = (an["addr"], an["len"])
    c.req("touch", addr=an["addr"], len=an["len"])
    mid = c.snap(c.pid)
    cached_mid = m.cache(path)
    c.req("madvise", addr=r["addr"], len=n, advice="pageout")
    c.req("madvise", addr=an["addr"], len=an["len"], advice="pageout")
    out = c.snap(c.pid)
    cached_out = m.cache(path)
    c.req("read", addr=r["addr"], pages=list(range(RECLAIM_PAGES)))
    return {
        "focus": r["addr"],
        "range": (r["addr"], n),
        "mid": mid,
        "out": out,
        "cached": (cached_mid, cached_out),
        "transitions": (mid, out),  # what MADV_PAGEOUT did
    }


def check_reclaim(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, n = c.region("reclaim")
    an, ann = c.region("reclaim anon")
    mid, out = x["mid"], x["out"]
    cm, co = x["cached"]
    swap = m.global_numbers("meminfo").get("SwapTotal")
    _minor, major = m.faults(out, a)
    meas = {
        "file_pages_before": len(m.present(mid, addr, n)),
        "file_pages_after_pageout": (left := len(m.present(out, addr, n))),
        "page_cache_before": None if cm is None else cm.cached,
        "page_cache_after_pageout": None if co is None else co.cached,
        "anon_pages_before": len(m.present(mid, an, ann)),
        "anon_pages_after_pageout": len(m.present(out, an, ann)),
        "swap_total_bytes": swap,
        "major_faults_rereading": major,
    }
    anon_part: bool | None = None
    if swap == 0:
        anon_part = meas["anon_pages_after_pageout"] == meas["anon_pages_before"] == RECLAIM_ANON_PAGES
    return Check(
        meas,
        f"MADV_PAGEOUT: file pages {meas['file_pages_before']} -> {meas['file_pages_after_pageout']} mapped, "
        f"page cache {q(meas['page_cache_before'])} -> {q(meas['page_cache_after_pageout'])}; anonymous "
        f"{meas['anon_pages_before']} -> {meas['anon_pages_after_pageout']} (swap: {q(swap)} bytes); "
        f"reading the file again: {plural(major, 'major fault')}",
        {
            # the kernel may skip a few folios it cannot isolate at that moment (docs/kernel-notes.md,
            # "MADV_PAGEOUT"): the claim is that reclaim drops clean pages without writing, so most
            # must go (at least half); the measured line says how many stayed
            "the clean file pages were dropped, nothing written": left <= RECLAIM_PAGES // 2
            and (None if co is None else co.cached <= RECLAIM_PAGES // 2),
            "the anonymous pages stayed (nowhere to put them without swap)": anon_part,
            "re-reading the file costs major faults": major >= 1,
        },
        unknown_why="this machine has swap (anonymous pages may go there), or cachestat(2) is missing",
    )


STEPS: tuple[Step, ...] = (
    Step(
        "huge-first-touch",
        "A first touch can map a whole huge page",
        (
            "The workload maps 2 MiB of anonymous memory, aligned, with MADV_HUGEPAGE,",
            "and writes ONE byte. Where transparent huge pages are enabled, the fault",
            "hands over a whole huge page: 512 pages present after one fault.",
            "(The 4 MiB region of step 1 asked for MADV_NOHUGEPAGE to keep 4 KiB pages.)",
        ),
        "512 pages present after one touch; smaps AnonHugePages 2048 kB",
        "One first touch mapped a whole huge page: many pages present after one or two faults.",
        act_thp,
        check_thp,
        article="only the pages actually accessed are loaded",
        linux="the unit can be a whole (multi-size) huge page: one fault, hundreds of pages",
    ),
    Step(
        "folio-dirty",
        "One byte through MAP_SHARED dirties a whole folio",
        (
            "vmainspect wrote a 1 MiB file with ONE write(2): the page cache keeps it in",
            "large folios. The workload maps it MAP_SHARED and writes one byte.",
            "Dirtiness is tracked per folio: cachestat(2) (no root needed) counts how many",
            "of the file's pages must now be written back. Watch the writeback clock.",
        ),
        "cachestat: dirty pages of the file 0 -> 256 (one folio) after a 1-byte write",
        "A one-byte write through MAP_SHARED made a whole folio of the file dirty.",
        act_folio,
        check_folio,
        prepare=prepare_folio,
        article="dirty pages are written back automatically",
        linux="yes, but per folio: one byte can cost a 1 MiB write-back",
    ),
    Step(
        "zero-copy",
        "read() copies, mmap maps the page cache",
        (
            "The workload read(2)s a 256 KiB file into a buffer, then maps the same file.",
            "read() copies every page from the page cache into anonymous memory:",
            "the data is in memory twice. The mapping points at the page-cache pages",
            "themselves (as root: the same page frame numbers vmainspect sees).",
        ),
        "64 anon pages in [anon:read buffer]; 64 file pages in the mapping; 64 cached",
        "read() holds the data twice, while mmap maps the page-cache pages themselves.",
        act_zero_copy,
        check_zero_copy,
        prepare=prepare_zero_copy,
        root_note="page frame numbers: /proc/PID/pagemap shows them to root only",
        article="mmap is zero-copy (and uses DMA, bypassing the CPU)",
        linux="no copy to user space; the disk reaches the page cache by DMA for read() too",
    ),
    Step(
        "ipc",
        "Two processes, one file: shared memory",
        (
            "A second process maps the same file MAP_SHARED on its own.",
            "The workload writes a message; the other process reads it at once:",
            "both mappings point at the same page-cache pages (smaps counts them as",
            "Shared; as root, both pagemaps show the same page frame numbers).",
        ),
        "the peer reads the message; Shared_Clean/Dirty in both; same PFNs (root)",
        "A write by one process is read by the other through the same page-cache pages.",
        act_ipc,
        check_ipc,
        prepare=prepare_ipc,
        root_note="page frame numbers: /proc/PID/pagemap shows them to root only",
        article="mmap serves inter-process communication through shared memory",
        linux="yes: MAP_SHARED mappings of one file share its page-cache pages",
    ),
    Step(
        "reclaim",
        "Reclaim: clean file pages go, anonymous pages stay",
        (
            "The workload reads a 1 MiB file (MAP_PRIVATE, never written) and fills 256 KiB",
            "of anonymous memory, then asks the kernel to reclaim both (MADV_PAGEOUT).",
            "Clean file pages are simply dropped: the file still has them. Anonymous pages",
            "have no file: without swap they must stay. Reading the file again: major faults.",
        ),
        "file pages 256 -> 0 (page cache too); anon 64 -> 64; major faults on re-read",
        "Clean file pages were dropped without writing anything; anonymous pages stayed for lack of swap.",
        act_reclaim,
        check_reclaim,
        prepare=prepare_reclaim,
        article="a mapping that is never written can be discarded without swap",
        linux="agreed: clean file pages are dropped and re-read later; anonymous pages need swap",
    ),
)
