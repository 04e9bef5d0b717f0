"""Lesson steps about lengths and the article's own sample code.

The article says a mapping's length must be a page multiple and shows a
MapFile/ProcessFile pair that appends to a file through MAP_SHARED. Here
the length rule is measured (any length works; the VMA is rounded up; past
the file's last page is SIGBUS), and the sample code runs as written, bug
by bug, then fixed.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Any

from ..model import Snapshot
from . import measure as m
from .steps import Check, Ctx, Info, Step, q, write_file

SHORT_BYTES = 6000  # short.dat: 2 pages' worth of file
SHORT_MAP_PAGES = 4
APPEND = " append_key2"  # what the article's ProcessFile appends
ARTICLE_TEXT = b"key1=value1"


def _errno_name(e: int | None) -> str:
    if e is None:
        return "?"
    return "0 (success)" if e == 0 else errno.errorcode.get(e, str(e))


def _vma_for(snap: Snapshot, path: str) -> list[tuple[int, int]]:
    return [(v.start, v.end) for v in snap.vmas if v.path == path]


# --- mmap(6000): the length need not be a page multiple ------------------------------


def prepare_length(c: Ctx) -> Info:
    write_file(c.path("short.dat"), 2, c.page, size=SHORT_BYTES)
    return {}


def act_length(c: Ctx) -> Info:
    r = c.req("map-file", path=c.files["short.dat"], shared=True, writable=False, len=SHORT_BYTES)
    c.regions["short"] = (r["addr"], 2 * c.page)
    c.req("read", addr=r["addr"], pages=[0, 1])
    return {"focus": r["addr"], "range": (r["addr"], 2 * c.page), "asked": SHORT_BYTES}


def check_length(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, _ = c.region("short")
    v = a.vma_at(addr)
    size = os.stat(c.files["short.dat"]).st_size
    tail = m.read_mem(c.pid, addr + size, 2 * c.page - size)
    meas = {
        "length_asked": x["asked"],
        "file_size": size,
        "vma_size": v.size if v else None,
        "bytes_after_eof": 2 * c.page - size,
        "bytes_after_eof_all_zero": None if tail is None else tail == bytes(len(tail)),
    }
    return Check(
        meas,
        f"mmap({x['asked']}) made a {q(meas['vma_size'])}-byte VMA; the {meas['bytes_after_eof']} bytes "
        f"after the end of the file in its last page read as "
        + {None: "? (/proc/PID/mem refused)", True: "zeros", False: "NOT zeros"}[
            meas["bytes_after_eof_all_zero"]
        ],
        {
            "mmap accepted a length that is not a page multiple": v is not None,
            "the VMA is rounded up to whole pages": v is not None and v.size == 2 * c.page,
            "the bytes past the end of the file read as zeros": meas["bytes_after_eof_all_zero"],
        },
        unknown_why="/proc/PID/mem could not be read (ptrace access to the workload refused)",
    )


# --- SIGBUS past the end of the file ------------------------------------------------


def prepare_sigbus(c: Ctx) -> Info:
    ended = None
    if c.child:
        c.req("end-child")
        ended, c.child = c.child, None
    return {"ended_child": ended}


def act_sigbus(c: Ctx) -> Info:
    touch = SHORT_MAP_PAGES - 1
    r = c.req("sigbus", path=c.files["short.dat"], len=SHORT_MAP_PAGES * c.page, touch_page=touch)
    c.regions["short4"] = (r["addr"], r["len"])
    return {
        "focus": r["addr"],
        "range": (r["addr"], r["len"]),
        "child": r["info"]["child"],
        "touched_page": touch,
    }


def check_sigbus(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    addr, _n = c.region("short4")
    size = os.stat(c.files["short.dat"]).st_size
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


# --- the article's sample code --------------------------------------------------------


def _article_file(c: Ctx, name: str, size: int) -> str:
    path = c.path(name)
    with open(path, "wb") as f:
        f.write(ARTICLE_TEXT.ljust(size, b"."))
        f.flush()
        os.fsync(f.fileno())
    return path


def _run_article(c: Ctx, name: str, size: int, *, fixed: bool = False, neighbour: bool = False) -> Info:
    path = _article_file(c, name, size)
    r = c.req("article", path=path, append=APPEND, fixed=fixed, neighbour=neighbour)
    base, n, info = r["addr"], r["len"], r["info"]
    c.regions[name] = (base, (n + c.page - 1) // c.page * c.page)
    mid = c.snap(c.pid)
    if fixed:
        args = (base, n)  # munmap(base, mapped length): what the code should say
    else:
        args = (info["ptr"], len(APPEND) + size)  # munmap(ptr, addSize + len): what it says
    e = c.req("munmap-errno", addr=args[0], len=args[1])["info"]["errno"]
    span = c.regions[name][1] + (c.page if neighbour else 0)
    if neighbour:
        c.regions["neighbour"] = (info["neighbour"], c.page)
    return {
        "focus": base,
        "range": (base, span),
        "path": path,
        "base": base,
        "munmap": args,
        "munmap_errno": e,
        "ftruncate_errno": info.get("ftruncate_errno"),
        "neighbour": info.get("neighbour"),
        "mapped_before_munmap": _vma_for(mid, path),
        "neighbour_before_munmap": bool(info.get("neighbour") and mid.vma_at(info["neighbour"])),
        "transitions": (mid, c.snap(c.pid)),  # what munmap did
    }


def _file_now(path: str, size: int) -> tuple[int, bool]:
    with open(path, "rb") as f:
        data = f.read()
    return len(data), data[size : size + len(APPEND)] == APPEND.encode()


def act_offset_munmap(c: Ctx) -> Info:
    # docs/kernel-notes.md, "munmap takes any page-aligned range, and only that check"
    return _run_article(c, "article-a.dat", 100)


def _after_munmap(a: Snapshot, x: Info) -> tuple[int, bool, list[tuple[int, int]], dict[str, Any]]:
    """What the program the article shows left after its munmap: the file's size, whether it holds the
    appended key, the file's VMAs in ``a``, and those as measurements."""
    size, appended = _file_now(x["path"], 100)
    left = _vma_for(a, x["path"])
    meas = {
        "munmap_errno": _errno_name(x["munmap_errno"]),
        "vmas_before_munmap": len(x["mapped_before_munmap"]),
        "vmas_after_munmap": len(left),
        "file_size": size,
        "appended_in_file": appended,
    }
    return size, appended, left, meas


def check_offset_munmap(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    size, appended, left, after = _after_munmap(a, x)
    meas = {"munmap_addr_offset_in_page": x["munmap"][0] % c.page, **after}
    return Check(
        meas,
        f"munmap(ptr + {x['munmap'][0] % c.page}, {x['munmap'][1]}) returned {meas['munmap_errno']}; "
        f"the file mapping is still there ({len(left)} VMA: leaked); the file is {size} bytes and "
        + ("holds" if appended else "does NOT hold")
        + " the appended key",
        {
            "munmap on the offset pointer fails with EINVAL": x["munmap_errno"] == errno.EINVAL,
            "the mapping leaks (still in /proc/PID/maps)": len(left) == 1,
            "the append itself reached the file (MAP_SHARED)": appended and size == 100 + len(APPEND),
        },
    )


def act_aligned_munmap(c: Ctx) -> Info:
    return _run_article(c, "article-b.dat", c.page, neighbour=True)


def check_aligned_munmap(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    base = x["base"]
    nb = x["neighbour"]
    first_left = a.vma_at(base) is not None
    second_left = a.vma_at(base + c.page) is not None
    nb_left = a.vma_at(nb) is not None
    meas = {
        "munmap_errno": _errno_name(x["munmap_errno"]),
        "mapping_pages": 2,
        "first_page_still_mapped": first_left,
        "second_page_still_mapped": second_left,
        "neighbour_mapped_before": x["neighbour_before_munmap"],
        "neighbour_mapped_after": nb_left,
    }
    return Check(
        meas,
        f"munmap(ptr + {c.page}, {x['munmap'][1]}) returned {meas['munmap_errno']}: it removed the mapping's "
        f"second page{'' if second_left else ' (gone)'} and the neighbour page after it"
        f"{' (gone)' if not nb_left else ' (still there)'}; the first page stays mapped: "
        + ("leaked" if first_left else "gone"),
        {
            "munmap succeeded": x["munmap_errno"] == 0,
            "the first page of the mapping leaks": first_left,
            "a page the code never mapped was unmapped": x["neighbour_before_munmap"] and not nb_left,
        },
    )


def act_unchecked_ftruncate(c: Ctx) -> Info:
    # docs/kernel-notes.md, "ftruncate beyond RLIMIT_FSIZE, and writing past the end of a file"
    path = _article_file(c, "article-c.dat", c.page)
    r = c.req("article-ftruncate", path=path, append=APPEND)
    return {
        "focus": None,
        "path": path,
        "child": r["info"]["child"],
        "ftruncate_errno": r["info"].get("ftruncate_errno"),
    }


def check_unchecked_ftruncate(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    how = m.death(x["child"])
    sig = how["signal"]
    size = os.stat(x["path"]).st_size
    meas = {
        "child": x["child"],
        "ftruncate_errno": _errno_name(x["ftruncate_errno"]),
        "file_size_after": size,
        "child_signal": signal.Signals(sig).name if sig else None,
    }
    return Check(
        meas,
        f"ftruncate failed ({meas['ftruncate_errno']}, unchecked); mmap still mapped {c.page + len(APPEND)} "
        f"bytes; memcpy past the {size}-byte file killed the process with {meas['child_signal'] or 'no signal'}",
        {
            "the file did not grow": size == c.page,
            "writing the append killed the process with SIGBUS": sig == signal.SIGBUS,
        },
    )


def act_fixed(c: Ctx) -> Info:
    return _run_article(c, "article-d.dat", 100, fixed=True)


def check_fixed(c: Ctx, b: Snapshot, a: Snapshot, x: Info) -> Check:
    size, appended, left, meas = _after_munmap(a, x)
    return Check(
        meas,
        f"ftruncate checked, munmap(base, {x['munmap'][1]}) returned {meas['munmap_errno']}; "
        f"VMAs of the file {len(x['mapped_before_munmap'])} -> {len(left)}; the file is {size} bytes "
        + ("with" if appended else "WITHOUT")
        + " the appended key",
        {
            "munmap succeeded": x["munmap_errno"] == 0,
            "nothing of the mapping is left": not left and len(x["mapped_before_munmap"]) == 1,
            "the file holds the appended key": appended and size == 100 + len(APPEND),
        },
    )


STEPS: tuple[Step, ...] = (
    Step(
        "length-not-page-multiple",
        "mmap(6000): the length need not be a page multiple",
        (
            "The workload maps a 6000-byte file with length 6000, not a multiple of 4096.",
            "mmap accepts it: the kernel rounds the VMA up to whole pages (8 KiB).",
            "Only the offset must be page-aligned. The 2192 bytes after the end of",
            "the file, in its last page, read as zeros (vmainspect reads /proc/PID/mem).",
        ),
        "an 8 KiB VMA for a 6000-byte mapping; zeros after byte 6000",
        "mmap(6000) made an 8 KiB VMA, and the bytes after the end of the file in its last page are zeros.",
        act_length,
        check_length,
        prepare=prepare_length,
        article="the mapping size must be a multiple of the page size",
        linux="any length is accepted and rounded up to whole pages; only the offset must be aligned",
    ),
    Step(
        "sigbus",
        "Past the end of the file: SIGBUS",
        (
            "The same 6000-byte file (2 pages) is mapped as 4 pages: mmap does not check the size.",
            "The rest of page 1 reads as zeros; pages 2 and 3 have no file behind them.",
            "A throwaway child touches page 3: there is no page to map, the kernel sends SIGBUS.",
            "(Not SIGSEGV: the address is valid, the data behind it is missing.)",
        ),
        "a 16 KiB VMA over a 6000-byte file; the child dies of SIGBUS",
        "The mapping reaches past the end of the file, and touching there killed the child with SIGBUS.",
        act_sigbus,
        check_sigbus,
        prepare=prepare_sigbus,
        article="any byte of the mapped region can be accessed as long as it lies inside the file",
        linux="a mapping may reach past the file; touching a page with no file behind it is SIGBUS",
    ),
    Step(
        "article-munmap-offset",
        "The program from the article, live: munmap(ptr + len) fails",
        (
            "The article's ProcessFile advances ptr by the file length before memcpy,",
            "then calls munmap(ptr, addSize + len) with that moved pointer.",
            "The workload runs it on a 100-byte file: ptr is not page-aligned, so",
            "munmap fails with EINVAL. The code never checks: the mapping leaks (see the table).",
        ),
        "munmap returns EINVAL; the file's VMA stays in the table",
        "munmap on the offset pointer failed with EINVAL and the mapping stayed: a leak.",
        act_offset_munmap,
        check_offset_munmap,
        article="sample code that munmaps through the pointer it advanced",
        linux="munmap needs a page-aligned address: EINVAL, nothing unmapped, the mapping leaks",
    ),
    Step(
        "article-munmap-wrong-range",
        "The same code on a 4096-byte file: the wrong range goes",
        (
            "Now the file is exactly one page, so ptr + len is page-aligned and munmap succeeds.",
            "But it unmaps [ptr, ptr + 4108) rounded up: the mapping's second page AND",
            "the page after the mapping, which belongs to someone else (here a page named",
            "'neighbour'). The first page of the file mapping stays: still a leak.",
        ),
        "munmap returns 0; the neighbour VMA vanishes; the file's first page stays",
        "munmap succeeded, unmapped a page the code never mapped and left the mapping's first page behind.",
        act_aligned_munmap,
        check_aligned_munmap,
        article="the same sample code, with a file whose size is a page multiple",
        linux="munmap silently removes whatever lies in the range it is given, other mappings included",
    ),
    Step(
        "article-unchecked-ftruncate",
        "The same code when ftruncate fails: SIGBUS",
        (
            "MapFile calls ftruncate to grow the file and ignores the result.",
            "In a throwaway child the file size limit (RLIMIT_FSIZE) makes it fail with EFBIG.",
            "mmap does not care and maps the larger length; the memcpy of the appended",
            "key lands past the end of the file: SIGBUS kills the process.",
        ),
        "ftruncate fails (EFBIG); the child dies of SIGBUS; the file keeps its size",
        "With ftruncate failing unchecked, the append killed the process with SIGBUS and the file did not grow.",
        act_unchecked_ftruncate,
        check_unchecked_ftruncate,
        article="MapFile grows the file with ftruncate and does not check it",
        linux="a failed ftruncate leaves the file short; writing through the mapping past it is SIGBUS",
    ),
    Step(
        "article-fixed",
        "The code fixed: check ftruncate, munmap what mmap returned",
        (
            "The fixed version checks ftruncate, keeps the address mmap returned,",
            "writes at base + len, msyncs, and calls munmap(base, mapped length).",
            "munmap returns 0, the file's VMA is gone, and the file holds the appended key.",
        ),
        "munmap returns 0; the VMA disappears; the file is 112 bytes",
        "The fixed code unmapped exactly its mapping and the file holds the appended key.",
        act_fixed,
        check_fixed,
        article="(the sample code, corrected)",
        linux="munmap(base, length) with mmap's own address and length removes exactly that mapping",
    ),
)
