"""A process with many VMAs, for the benchmarks: run it, read its PID, inspect it.

    python3 benchmarks/target_many_vmas.py [--vmas 20000] [--size 4G] [--written 0.25] [--diverse]
                                           [--pattern contiguous|fragmented]

It maps one private anonymous region of ``--size`` bytes, writes the first
``--written`` fraction of every chunk (memset through ctypes: fast) or, with
``--pattern fragmented``, one page in every 1/``--written`` pages (every 4th
page at 25%: a fragmented heap, two page runs per written page), then
makes every other chunk read-only, so the kernel cannot merge neighbours and
the region becomes ``--vmas`` VMAs. With ``--diverse`` the VMA sizes and
written page counts vary (seeded), so no two smaps blocks are alike (a
parser cannot profit from repetition); the totals stay the same. It prints one JSON line
(``{"pid", "start", "vmas", "size", "written_pages"}``) and stops itself with
SIGSTOP, so what a reader sees cannot change. Kill it when done.

With ``--fork`` it builds the mappings once and then, for every line read on
stdin, forks a copy (same VMAs, ~10 ms instead of a rebuild) that prints its
own JSON line and stops itself: tests that kill many targets use it. The
copies are reaped by the kernel as soon as they die (SIGCHLD ignored).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import random
import signal
import sys

from vmainspect.demo.libc import (
    MADV_NOHUGEPAGE,
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
    madvise,
    mmap_,
    mprotect,
)

MAP_NORESERVE = 0x4000


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def build(vmas: int, size: int, written: float, diverse: bool = False, pattern: str = "contiguous") -> dict:
    page = mmap.PAGESIZE
    pages_total = max(size // page, vmas)
    chunk_pages, extra = divmod(pages_total, vmas)  # the first `extra` chunks get one page more
    length = pages_total * page
    base = mmap_(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
    # No transparent huge pages: the point is many 4 KiB pages and VMAs.
    madvise(base, length, MADV_NOHUGEPAGE)
    sizes = [chunk_pages + (1 if i < extra else 0) for i in range(vmas)]
    rng = random.Random(20000)
    if diverse:  # pairs trade pages, so the total is unchanged
        for i in range(0, vmas - 1, 2):
            d = rng.randint(0, min(sizes[i], sizes[i + 1]) - 1)
            sizes[i] += d
            sizes[i + 1] -= d
    addr = base
    written_total = 0
    stride = max(1, round(1 / written)) if written > 0 else 0
    mem = (ctypes.c_char * length).from_address(base) if pattern == "fragmented" else None
    for i in range(vmas):
        npages = sizes[i]
        write_pages = int(npages * written + 0.5)
        if diverse:
            write_pages = max(0, min(npages, write_pages + rng.randint(-2, 2)))
        if pattern == "fragmented":
            if stride:  # one byte in every stride-th page, from the VMA's first page
                off = addr - base
                hits = len(range(0, npages, stride))
                mem[off : off + npages * page : stride * page] = b"\x5a" * hits
                written_total += hits
        elif write_pages:
            ctypes.memset(addr, 0x5A, write_pages * page)
            written_total += write_pages
        if i % 2:
            mprotect(addr, npages * page, PROT_READ)
        addr += npages * page
    return {
        "pid": os.getpid(),
        "start": base,
        "vmas": vmas,
        "size": length,
        "written_pages": written_total,
        "pattern": pattern,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmas", type=int, default=20000)
    ap.add_argument("--size", type=_size, default=4 << 30)
    ap.add_argument("--written", type=float, default=0.25)
    ap.add_argument("--diverse", action="store_true", help="vary sizes and written pages per VMA")
    ap.add_argument("--fork", action="store_true", help="fork a stopped copy per line read on stdin")
    ap.add_argument(
        "--pattern",
        choices=("contiguous", "fragmented"),
        default="contiguous",
        help="write the first pages of each VMA, or one page in every 1/--written",
    )
    a = ap.parse_args()
    info = build(a.vmas, a.size, a.written, a.diverse, a.pattern)
    if a.fork:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # dead copies are reaped at once
        for _line in sys.stdin:
            sys.stdout.flush()
            if os.fork() == 0:
                info["pid"] = os.getpid()
                break
        else:
            return
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    while True:
        os.kill(os.getpid(), signal.SIGSTOP)


if __name__ == "__main__":
    main()
