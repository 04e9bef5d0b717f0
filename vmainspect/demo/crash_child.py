"""One case of the crash experiment: map, write, stop, then end as told.

``python3 -m vmainspect.demo.crash_child MAPPING ENDING PATH PAGES DATA P1,P2,...``

Maps PATH (or anonymous memory) with PAGES pages, writes DATA at the start
of each listed page, msyncs for ``shared+msync``, prints {"addr", "len"}
and stops itself (SIGSTOP) so vmainspect can look at its pages. When
continued it ends: ``sigkill``, ``sigsegv`` (a real NULL read), ``abort``
or ``exit`` (a normal exit that never munmaps). Stdlib only; no core
files; dies with its parent.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

from . import libc
from .libc import PAGE

MAPPINGS = ("shared", "shared+msync", "private", "anonymous")
ENDINGS = ("sigkill", "sigsegv", "abort", "exit")


def main(argv: list[str]) -> int:
    mapping, ending, path, npages, data, pages = argv
    if mapping not in MAPPINGS or ending not in ENDINGS:
        print(f"bad case {mapping}/{ending}", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc.set_pdeathsig(signal.SIGKILL)
    n = int(npages) * PAGE
    rw = libc.PROT_READ | libc.PROT_WRITE
    if mapping == "anonymous":
        addr = libc.mmap_(n, rw, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
        libc.madvise(addr, n, libc.MADV_NOHUGEPAGE)
    else:
        fd = os.open(path, os.O_RDWR)
        flags = libc.MAP_PRIVATE if mapping == "private" else libc.MAP_SHARED
        addr = libc.mmap_(n, rw, flags, fd, 0)
        os.close(fd)
    raw = data.encode()
    for p in (int(x) for x in pages.split(",")):
        libc.write_bytes(addr + p * PAGE, raw)
    if mapping == "shared+msync":
        libc.msync(addr, n, libc.MS_SYNC)
    sys.stdout.write(json.dumps({"addr": addr, "len": n}) + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSTOP)
    # continued by vmainspect: end as told, never munmap
    if ending == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif ending == "sigsegv":
        libc.read_bytes(0, 1)  # a NULL read: SIGSEGV inside memcpy
    elif ending == "abort":
        os.abort()
    return 0  # "exit": a normal exit; the kernel tears the mapping down


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
