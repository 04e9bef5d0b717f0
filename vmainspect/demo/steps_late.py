"""The last lesson steps: fork and copy-on-write, SIGBUS past EOF, a crash."""

from __future__ import annotations

import os
import signal

from ..model import Snapshot
from . import crash
from . import measure as m
from .steps import CHILD_DATA, CHILD_PAGES, SHORT_MAP_PAGES, Check, Ctx


def _excl(snap: Snapshot, addr: int) -> tuple[int | None, int | None]:
    """(exclusive, present) page counts of the VMA at ``addr`` (pagemap bit 56: no root needed)."""
    v = snap.vma_at(addr)
    if v is None or v.pages is None:
        return None, None
    return v.pages.counts.exclusive, v.pages.counts.present


# --- fork ------------------------------------------------------------------------


def act_fork(c: Ctx) -> dict:
    addr, n = c.region("tail")
    r = c.req("fork", addr=addr, len=n)
    c.child = r["info"]["child"]
    return {"focus": addr, "child": c.child}


def check_fork(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
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


def act_child_write(c: Ctx) -> dict:
    addr, n = c.region("tail")
    c.req("child-write", addr=addr, len=n, pages=CHILD_PAGES, data=CHILD_DATA)
    return {"focus": addr, "child": c.child, "written": CHILD_PAGES}


def check_child_write(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
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


# --- SIGBUS past the end of the file ------------------------------------------------


def prepare_sigbus(c: Ctx) -> dict:
    ended = None
    if c.child:
        c.req("end-child")
        ended, c.child = c.child, None
    return {"ended_child": ended}


def act_sigbus(c: Ctx) -> dict:
    r = c.req("sigbus", path=c.files["short"], len=SHORT_MAP_PAGES * c.page, touch_page=SHORT_MAP_PAGES - 1)
    c.regions["short"] = (r["addr"], r["len"])
    return {"focus": r["addr"], "child": r["info"]["child"], "touched_page": SHORT_MAP_PAGES - 1}


def check_sigbus(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    addr, _n = c.region("short")
    size = os.stat(c.files["short"]).st_size
    file_pages = (size + c.page - 1) // c.page
    v = a.vma_at(addr)
    how = m.death(x["child"])
    sig = how["signal"]
    meas = {
        "file_size": size,
        "file_pages": file_pages,
        "vma_size": v.size if v else None,
        "vma_pages": v.size // c.page if v else None,
        "touched_page": x["touched_page"],
        "child": x["child"],
        "child_signal": signal.Signals(sig).name if sig else None,
        "child_exit_code": how["exit_code"],
    }
    return Check(
        meas,
        f"a {size}-byte file ({file_pages} pages) mapped as "
        f"{meas['vma_pages']} pages; touching page {x['touched_page']} killed the child "
        f"with {meas['child_signal'] or 'no signal'}",
        {
            "the mapping reaches past the end of the file": v is not None and v.size > file_pages * c.page,
            "the child died of SIGBUS": sig == signal.SIGBUS,
        },
    )


# --- a crash with dirty shared and private pages --------------------------------------

CRASH_CASES = ("shared", "shared+msync", "private")


def act_crash(c: Ctx) -> dict:
    results = crash.run_matrix(CRASH_CASES, ("sigkill",), folder=c.session.dir, collect_fn=c.collect)
    return {"focus": None, "results": results}


def check_crash(c: Ctx, b: Snapshot, a: Snapshot, x: dict) -> Check:
    by = {r.mapping: r for r in x["results"]}
    sh, sync, priv = by["shared"], by["shared+msync"], by["private"]
    meas = {
        r.mapping: {
            "dirty_before": r.dirty_before,
            "ended_by": r.ended_by,
            "in_file_after": r.in_file_after,
            "dirty_in_cache_after": r.dirty_in_cache_after,
        }
        for r in x["results"]
    }
    meas["written_pages"] = sh.written_pages
    unknown = sh.dirty_in_cache_after is None or sync.dirty_in_cache_after is None
    return Check(
        meas,
        f"after SIGKILL: MAP_SHARED bytes in the file: {_yn(sh.in_file_after)} "
        f"({'?' if sh.dirty_in_cache_after is None else sh.dirty_in_cache_after} pages "
        f"still dirty, {'?' if sync.dirty_in_cache_after is None else sync.dirty_in_cache_after}"
        f" with msync); MAP_PRIVATE bytes in the file: {_yn(priv.in_file_after)}",
        {
            "MAP_SHARED writes survive the crash": sh.in_file_after is True and sync.in_file_after is True,
            "MAP_PRIVATE writes never reach the file": priv.in_file_after is False,
            "without msync they were still dirty, with msync not (cachestat)": None
            if unknown
            else sh.dirty_in_cache_after >= sh.written_pages and sync.dirty_in_cache_after == 0,
        },
    )


def _yn(v: bool | None) -> str:
    return "?" if v is None else ("yes" if v else "no")
