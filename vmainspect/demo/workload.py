"""The demo workload: a process that changes its memory only when told to.

Run as ``python3 -m vmainspect.demo.workload --parent PID`` by
vmainspect (see control.py). It reads one JSON command per line on stdin,
performs exactly that one memory operation, and answers one JSON line on
stdout::

    -> {"op": "touch", "addr": 140..., "len": 4194304, "every": 16}
    <- {"op": "touch", "ok": true, "addr": 140..., "len": 4194304, "info": {"touched": 64}}

It never acts on its own, so a class watching it in the TUI sees each
change happen. The lesson logic (what to do, and checking what the kernel
did) lives in steps.py; the workload only reports *where* it did things.
Everything it measures about itself is only a hint: claims are checked by
vmainspect from /proc.

Stdlib only. It dies with its parent (PR_SET_PDEATHSIG SIGKILL), and so do
the children it forks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from . import libc
from .libc import PAGE

PROTS = {"---": libc.PROT_NONE, "r--": libc.PROT_READ, "rw-": libc.PROT_READ | libc.PROT_WRITE}
ADVICE = {"dontneed": libc.MADV_DONTNEED, "nohugepage": libc.MADV_NOHUGEPAGE}
ANON_NAME = "vmainspect demo"


class Workload:
    def __init__(self) -> None:
        self.fds: dict[int, int] = {}  # mapping address -> fd still open for it
        self.fork_child: tuple[int, int, int] | None = None  # pid, cmd write fd, reply read fd
        self.zombies: list[int] = []  # dead children left for vmainspect to look at

    # --- operations: each returns (addr, len, info) ---------------------
    def op_anon(self, c: dict) -> tuple[int, int, dict]:
        n = c["len"]
        addr = libc.mmap_(n, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
        info = {"named": libc.name_anon(addr, n, c.get("name", ANON_NAME))}
        # No transparent huge pages here: one touch must fault one 4 KiB page,
        # whatever /sys/kernel/mm/transparent_hugepage/enabled says.
        try:
            libc.madvise(addr, n, libc.MADV_NOHUGEPAGE)
            info["nohugepage"] = True
        except OSError:
            info["nohugepage"] = False
        return addr, n, info

    def op_map_file(self, c: dict) -> tuple[int, int, dict]:
        shared = c["shared"]
        fd = os.open(c["path"], os.O_RDWR if shared else os.O_RDONLY)
        prot = libc.PROT_READ | (libc.PROT_WRITE if c.get("writable", True) else 0)
        try:
            addr = libc.mmap_(c["len"], prot, libc.MAP_SHARED if shared else libc.MAP_PRIVATE, fd, 0)
        except OSError:
            os.close(fd)
            raise
        self.fds[addr] = fd
        return addr, c["len"], {"fd": fd}

    def op_touch(self, c: dict) -> tuple[int, int, dict]:
        addr, n, every = c["addr"], c["len"], c.get("every", 1)
        pages = range(0, n // PAGE, every)
        for i in pages:
            libc.write_byte(addr + i * PAGE, c.get("value", 1))
        return addr, n, {"touched": len(pages)}

    def op_read(self, c: dict) -> tuple[int, int, dict]:
        addr = c["addr"]
        got = [libc.read_byte(addr + i * PAGE) for i in c["pages"]]
        return addr, c.get("len", 0), {"read": len(got)}

    def op_write(self, c: dict) -> tuple[int, int, dict]:
        addr, data = c["addr"], c["data"].encode()
        for i in c["pages"]:
            libc.write_bytes(addr + i * PAGE, data)
        return addr, c.get("len", 0), {"written": len(c["pages"])}

    def op_msync(self, c: dict) -> tuple[int, int, dict]:
        libc.msync(c["addr"], c["len"], libc.MS_SYNC)
        return c["addr"], c["len"], {}

    def op_close_fd(self, c: dict) -> tuple[int, int, dict]:
        fd = self.fds.pop(c["addr"])
        os.close(fd)
        return c["addr"], c.get("len", 0), {"fd": fd}

    def op_mprotect(self, c: dict) -> tuple[int, int, dict]:
        libc.mprotect(c["addr"], c["len"], PROTS[c["prot"]])
        return c["addr"], c["len"], {}

    def op_munmap(self, c: dict) -> tuple[int, int, dict]:
        libc.munmap(c["addr"], c["len"])
        return c["addr"], c["len"], {}

    def op_mremap(self, c: dict) -> tuple[int, int, dict]:
        new = libc.mremap(c["addr"], c["len"], c["new_len"], libc.MREMAP_MAYMOVE)
        return new, c["new_len"], {"old_addr": c["addr"], "moved": new != c["addr"]}

    def op_madvise(self, c: dict) -> tuple[int, int, dict]:
        libc.madvise(c["addr"], c["len"], ADVICE[c["advice"]])
        return c["addr"], c["len"], {}

    def op_fork(self, c: dict) -> tuple[int, int, dict]:
        if self.fork_child:
            raise RuntimeError("a forked child is already running")
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: same memory, waits for orders on its own pipe
            try:
                os.close(cmd_w)
                os.close(rep_r)
                _become_quiet_child(me)
                _fork_child_loop(cmd_r, rep_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(rep_w)
        self.fork_child = (pid, cmd_w, rep_r)
        return c.get("addr", 0), c.get("len", 0), {"child": pid}

    def op_child_write(self, c: dict) -> tuple[int, int, dict]:
        if not self.fork_child:
            raise RuntimeError("no forked child")
        pid, w, r = self.fork_child
        os.write(w, (json.dumps(c) + "\n").encode())
        reply = os.read(r, 4096)
        if not reply:
            raise RuntimeError(f"forked child {pid} died")
        return c["addr"], c.get("len", 0), {"child": pid, "written": len(c["pages"])}

    def op_end_child(self, c: dict) -> tuple[int, int, dict]:
        if self.fork_child:
            pid, w, r = self.fork_child
            self.fork_child = None
            os.close(w)  # the child exits on EOF
            os.close(r)
            os.waitpid(pid, 0)
            return 0, 0, {"child": pid}
        return 0, 0, {}

    def op_sigbus(self, c: dict) -> tuple[int, int, dict]:
        """Map ``path`` (shorter than the mapping) and let a throwaway child touch past EOF.

        The child dies from the signal and is left a zombie (waitid WNOWAIT)
        until the next command, so vmainspect can read the kernel's own
        record of how it died from /proc/PID/stat.
        """
        addr, n, _ = self.op_map_file({"path": c["path"], "shared": True, "len": c["len"], "writable": False})
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                _become_quiet_child(me)
                libc.read_byte(addr + c["touch_page"] * PAGE)
            finally:
                os._exit(0)  # only reached if no signal came
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        self.zombies.append(pid)
        return addr, n, {"child": pid}

    # --- the loop --------------------------------------------------------
    def reap(self) -> None:
        for pid in self.zombies:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.zombies.clear()

    def handle(self, c: dict) -> dict:
        op = c.get("op", "")
        fn = getattr(self, "op_" + op.replace("-", "_"), None)
        if fn is None:
            return {"op": op, "ok": False, "error": f"unknown op {op!r}"}
        try:
            addr, n, info = fn(c)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            return {"op": op, "ok": False, "error": str(e)}
        return {"op": op, "ok": True, "addr": addr, "len": n, "info": info}


def _become_quiet_child(parent: int) -> None:
    """In a forked child: die with the workload, and let go of its pipes to vmainspect."""
    libc.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def _fork_child_loop(cmd_r: int, rep_w: int) -> None:
    f = os.fdopen(cmd_r, "r")
    for line in f:
        c = json.loads(line)
        data = c["data"].encode()
        for i in c["pages"]:
            libc.write_bytes(c["addr"] + i * PAGE, data)
        os.write(rep_w, b"ok\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vmainspect.demo.workload")
    ap.add_argument("--parent", type=int, required=True, help="pid of vmainspect; exit if it is gone")
    args = ap.parse_args(argv)
    libc.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != args.parent:  # the parent died before prctl took effect
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # vmainspect decides when we end
    out = sys.stdout
    w = Workload()
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "page_size": PAGE}) + "\n")
    out.flush()
    for line in sys.stdin:
        w.reap()
        try:
            c = json.loads(line)
        except ValueError:
            reply = {"ok": False, "error": "not JSON"}
        else:
            if c.get("op") == "quit":
                break
            reply = w.handle(c)
        out.write(json.dumps(reply) + "\n")
        out.flush()
    w.op_end_child({})
    w.reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
