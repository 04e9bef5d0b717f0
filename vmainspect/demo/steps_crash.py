"""Lesson steps on crashes: the crash matrix live, and a torn multi-page record.

The article asks what happens to a mapped file when the program crashes.
``crash`` runs the matrix of ``vmainspect crash`` (MAP_SHARED, with and
without msync, MAP_PRIVATE, killed with SIGKILL) and shows it as a table;
``torn-record`` kills a process in the middle of a multi-page update and
reads the file back: half old, half new.
"""

from __future__ import annotations

import os
import signal

from ..model import Snapshot
from . import crash
from . import measure as m
from .steps import Check, Ctx, Info, Step

RECORD_PAGES = 8  # record.dat: one record spanning 8 pages
TORN_AFTER = 3  # the writer is stopped after this many pages of the new version
RECORD_OLD = "RECORD VERSION 1"
RECORD_NEW = "RECORD VERSION 2"


def crash_table(results: list[crash.CaseResult]) -> list[tuple[str, ...]]:
    """The crash matrix as rows for the lecture's evidence panel (header first)."""
    rows: list[tuple[str, ...]] = [("mapping", "ended by", "dirty before", "in file after", "dirty after")]
    for r in results:
        rows.append(
            (
                r.mapping,
                r.ended_by,
                crash.cell(r.dirty_before),
                crash.cell(r.in_file_after),
                crash.cell(r.dirty_in_cache_after),
            )
        )
    return rows


# --- a crash with dirty shared and private pages --------------------------------------

CRASH_CASES = ("shared", "shared+msync", "private")


def act_crash(c: Ctx) -> Info:
    folder = c.session.dir
    results = crash.run_matrix(
        CRASH_CASES, ("sigkill",), folder=folder, collect_fn=c.collect, keep_files=True
    )
    # the workload maps the killed writer's file: the page map shows what survived
    path = crash.case_path(folder, "shared", "sigkill")
    n = os.stat(path).st_size
    r = c.req("map-file", path=path, shared=True, writable=False, len=n)
    c.regions["crashed file"] = (r["addr"], n)
    c.req("read", addr=r["addr"], pages=list(range(n // c.page)))
    return {"focus": r["addr"], "range": (r["addr"], n), "results": results, "table": crash_table(results)}


def check_crash(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
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


# --- a torn record: killed in the middle of a multi-page update ---------------------------


def prepare_torn(c: Ctx) -> Info:
    path = c.path("record.dat")
    with open(path, "wb") as f:
        f.write(b"".join(RECORD_OLD.encode().ljust(c.page, b".") for _ in range(RECORD_PAGES)))
        f.flush()
        os.fsync(f.fileno())
    return {}


def act_torn(c: Ctx) -> Info:
    path, n = c.files["record.dat"], RECORD_PAGES * c.page
    r = c.req("map-file", path=path, shared=True, len=n)
    c.regions["record"] = (r["addr"], n)
    c.req("read", addr=r["addr"], pages=list(range(RECORD_PAGES)))
    w = c.req("torn", addr=r["addr"], len=n, data=RECORD_NEW, stop_after=TORN_AFTER)
    child = w["info"]["child"]
    stopped = m.state(child)
    os.kill(child, signal.SIGKILL)  # the crash, in the middle of the update
    m.wait_for(lambda: m.state(child) in ("Z", "X", None))
    return {"focus": r["addr"], "range": (r["addr"], n), "child": child, "stopped": stopped}


def check_torn(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    with open(c.files["record.dat"], "rb") as f:
        data = f.read()
    heads = [data[p * c.page : p * c.page + len(RECORD_NEW)] for p in range(RECORD_PAGES)]
    new = [p for p, h in enumerate(heads) if h == RECORD_NEW.encode()]
    old = [p for p, h in enumerate(heads) if h == RECORD_OLD.encode()]
    how = m.death(x["child"])
    sig = how["signal"]
    meas = {
        "record_pages": RECORD_PAGES,
        "writer_state_before_kill": x["stopped"],
        "writer_signal": signal.Signals(sig).name if sig else None,
        "pages_new_version": len(new),
        "pages_old_version": len(old),
        "new_pages": new,
    }
    return Check(
        meas,
        f"the writer was killed ({meas['writer_signal'] or '?'}) after {TORN_AFTER} of {RECORD_PAGES} "
        f"pages: the file holds version 2 in pages {new} and version 1 in {len(old)} pages: a torn record",
        {
            "the writer died mid-update": sig == signal.SIGKILL,
            "the record in the file is half new, half old": new == list(range(TORN_AFTER))
            and len(old) == RECORD_PAGES - TORN_AFTER,
        },
    )


STEPS: tuple[Step, ...] = (
    Step(
        "crash",
        "A crash with dirty pages: what is in the file?",
        (
            "Three throwaway processes write to a file mapped MAP_SHARED, MAP_SHARED",
            "+ msync, and MAP_PRIVATE, and are killed with SIGKILL.",
            "MAP_SHARED data is in the page cache, which the kernel owns: it survives.",
            "Until writeback it is dirty: a power loss would lose it; msync makes it durable.",
            "MAP_PRIVATE copies die with the process. (`vmainspect crash`: the full matrix.)",
        ),
        "the verdict: what the file holds after each crash",
        "After SIGKILL the file holds the MAP_SHARED writes (still dirty in the page cache unless "
        "msync'ed) and none of the MAP_PRIVATE writes.",
        act_crash,
        check_crash,
    ),
    Step(
        "torn-record",
        "A crash in the middle of an update: a torn record",
        (
            "A record spans 8 pages of a MAP_SHARED file. A process rewrites it page by page",
            "and is killed (SIGKILL) after 3 pages. Nothing it wrote is lost: the page cache",
            "keeps those 3 pages. But the file now holds half a new record and half an old",
            "one. mmap gives no atomicity: a file format needs its own (checksums, a log).",
        ),
        "record.dat: pages 0-2 version 2, pages 3-7 version 1",
        "A process killed in the middle of a multi-page update leaves a torn record in the file.",
        act_torn,
        check_torn,
        prepare=prepare_torn,
        article="after a crash the file may be unchanged, corrupted or otherwise affected",
        linux="written bytes survive a process crash; an unfinished multi-page update is torn",
    ),
)
