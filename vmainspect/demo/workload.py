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
import resource
import signal
import sys
from typing import Any

from . import libc
from .libc import PAGE

Cmd = dict[str, Any]
Reply = tuple[int, int, dict[str, Any]]

PROTS = {"---": libc.PROT_NONE, "r--": libc.PROT_READ, "rw-": libc.PROT_READ | libc.PROT_WRITE}
ADVICE = {"dontneed": libc.MADV_DONTNEED, "nohugepage": libc.MADV_NOHUGEPAGE, "pageout": libc.MADV_PAGEOUT}
ANON_NAME = "vmainspect demo"
HUGE = 2 << 20  # a PMD-sized transparent huge page on x86-64 and arm64 (4 KiB pages)
RW = libc.PROT_READ | libc.PROT_WRITE


class Workload:
    def __init__(self) -> None:
        self.fds: dict[int, int] = {}  # mapping address -> fd still open for it
        self.children: dict[str, tuple[int, int, int]] = {}  # name -> pid, cmd write fd, reply read fd
        self.zombies: list[int] = []  # dead children left for vmainspect to look at

    # --- operations: each returns (addr, len, info) ---------------------
    def op_anon(self, c: Cmd) -> Reply:
        n = c["len"]
        info: dict[str, Any] = {}
        if c.get("thp"):
            # a huge-page-aligned range, so one fault can map a whole huge page
            raw = libc.mmap_(n + HUGE, RW, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
            addr = (raw + HUGE - 1) & ~(HUGE - 1)
            if addr > raw:
                libc.munmap(raw, addr - raw)
            if raw + n + HUGE > addr + n:
                libc.munmap(addr + n, raw + n + HUGE - addr - n)
            advice = libc.MADV_HUGEPAGE
        else:
            addr = libc.mmap_(n, RW, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
            # No transparent huge pages: one touch must fault one 4 KiB page,
            # whatever /sys/kernel/mm/transparent_hugepage/enabled says.
            advice = libc.MADV_NOHUGEPAGE
        info["named"] = libc.name_anon(addr, n, c.get("name", ANON_NAME))
        try:
            libc.madvise(addr, n, advice)
            info["advised"] = True
        except OSError:
            info["advised"] = False
        return addr, n, info

    def op_map_file(self, c: Cmd) -> Reply:
        shared = c["shared"]
        writable = c.get("writable", True)
        fd = os.open(c["path"], os.O_RDWR if shared and writable else os.O_RDONLY)
        prot = libc.PROT_READ | (libc.PROT_WRITE if writable else 0)
        try:
            addr = libc.mmap_(c["len"], prot, libc.MAP_SHARED if shared else libc.MAP_PRIVATE, fd, 0)
        except OSError:
            os.close(fd)
            raise
        self.fds[addr] = fd
        return addr, c["len"], {"fd": fd}

    def op_touch(self, c: Cmd) -> Reply:
        addr, n, every = c["addr"], c["len"], c.get("every", 1)
        pages = range(0, max(1, n // PAGE), every)
        for i in pages:
            libc.memset(addr + i * PAGE, c.get("value", 1), 1)
        return addr, n, {"touched": len(pages)}

    def op_read(self, c: Cmd) -> Reply:
        addr = c["addr"]
        got = [libc.read_bytes(addr + i * PAGE, 1) for i in c["pages"]]
        return addr, c.get("len", 0), {"read": len(got)}

    def op_peek(self, c: Cmd) -> Reply:
        """Read ``n`` bytes at ``addr`` (a hint for vmainspect, which checks with read(2))."""
        return c["addr"], c["n"], {"hex": libc.read_bytes(c["addr"], c["n"]).hex()}

    def op_write(self, c: Cmd) -> Reply:
        addr, data = c["addr"], c["data"].encode()
        for i in c["pages"]:
            libc.write_bytes(addr + i * PAGE, data)
        return addr, c.get("len", 0), {"written": len(c["pages"])}

    def op_msync(self, c: Cmd) -> Reply:
        libc.msync(c["addr"], c["len"], libc.MS_SYNC)
        return c["addr"], c["len"], {}

    def op_close_fd(self, c: Cmd) -> Reply:
        fd = self.fds.pop(c["addr"])
        os.close(fd)
        return c["addr"], c.get("len", 0), {"fd": fd}

    def op_mprotect(self, c: Cmd) -> Reply:
        libc.mprotect(c["addr"], c["len"], PROTS[c["prot"]])
        return c["addr"], c["len"], {}

    def op_munmap(self, c: Cmd) -> Reply:
        libc.munmap(c["addr"], c["len"])
        return c["addr"], c["len"], {}

    def op_mremap(self, c: Cmd) -> Reply:
        new = libc.mremap(c["addr"], c["len"], c["new_len"], libc.MREMAP_MAYMOVE)
        return new, c["new_len"], {"old_addr": c["addr"], "moved": new != c["addr"]}

    def op_madvise(self, c: Cmd) -> Reply:
        libc.madvise(c["addr"], c["len"], ADVICE[c["advice"]])
        return c["addr"], c["len"], {}

    def op_read_file(self, c: Cmd) -> Reply:
        """read(2) a whole file into a fresh anonymous buffer (the copy mmap avoids)."""
        n = c["len"]
        buf = libc.mmap_(n, RW, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
        libc.name_anon(buf, n, c.get("name", "vmainspect read buffer"))
        libc.madvise(buf, n, libc.MADV_NOHUGEPAGE)
        fd = os.open(c["path"], os.O_RDONLY)
        try:
            got = 0
            while got < n:
                k = libc.read_into(fd, buf + got, n - got)
                if k == 0:
                    break
                got += k
        finally:
            os.close(fd)
        return buf, n, {"read": got}

    # --- the article's sample code (MapFile + ProcessFile), live -------------
    def op_article(self, c: Cmd) -> Reply:
        """The article's MapFile, then ProcessFile's memcpy at ``ptr + len`` (munmap: op_munmap_errno).

        As written the ftruncate result is ignored; ``fixed`` checks it and msyncs.

        ``neighbour``: first reserve the pages after the mapping and put an
        anonymous page there, standing for whatever else happens to be
        mapped next to it (memory a program does not expect to lose).
        """
        add = c["append"].encode()
        fixed = c.get("fixed", False)
        fd = os.open(c["path"], os.O_RDWR)
        st_size = os.fstat(fd).st_size
        info: dict[str, Any] = {"st_size": st_size}
        try:
            os.ftruncate(fd, st_size + len(add))
        except OSError as e:
            if fixed:
                os.close(fd)
                raise
            info["ftruncate_errno"] = e.errno  # the article ignores it
        n = st_size + len(add)
        span = (n + PAGE - 1) // PAGE * PAGE
        hint = 0
        if c.get("neighbour"):
            hint = libc.mmap_(span + PAGE, libc.PROT_NONE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
            nb = libc.mmap_(
                PAGE, RW, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_FIXED, addr=hint + span
            )
            libc.name_anon(nb, PAGE, "vmainspect neighbour")
            libc.memset(nb, 0x4E, PAGE)
            info["neighbour"] = nb
        flags = libc.MAP_SHARED | (libc.MAP_FIXED if hint else 0)
        base = libc.mmap_(n, RW, flags, fd, 0, addr=hint)
        os.close(fd)  # the mapping keeps the file
        ptr = base + st_size  # ptr = (char *)ptr + len;
        libc.write_bytes(ptr, add)  # memcpy(ptr, add, addSize);
        if fixed:
            libc.msync(base, n, libc.MS_SYNC)
        info["ptr"] = ptr
        return base, n, info

    def op_munmap_errno(self, c: Cmd) -> Reply:
        """munmap as the article calls it: the errno is the result (0: it unmapped something)."""
        return c["addr"], c["len"], {"errno": libc.munmap_errno(c["addr"], c["len"])}

    def op_article_ftruncate(self, c: Cmd) -> Reply:
        """The sample code of the article in a throwaway child whose ftruncate fails (RLIMIT_FSIZE)."""
        add = c["append"].encode()
        r, w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                _become_quiet_child(me)
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                fd = os.open(c["path"], os.O_RDWR)
                st_size = os.fstat(fd).st_size
                resource.setrlimit(
                    resource.RLIMIT_FSIZE, (st_size, resource.getrlimit(resource.RLIMIT_FSIZE)[1])
                )
                try:
                    os.ftruncate(fd, st_size + len(add))  # unchecked in the article
                    err = 0
                except OSError as e:
                    err = e.errno or 0
                base = libc.mmap_(st_size + len(add), RW, libc.MAP_SHARED, fd, 0)
                os.close(fd)
                os.write(w, json.dumps({"ftruncate_errno": err, "addr": base}).encode())
                os.close(w)
                libc.write_bytes(base + st_size, add)  # past the end of the file
            finally:
                os._exit(0)  # only reached if no signal came
        os.close(w)
        with os.fdopen(r) as f:
            said = f.read()
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        self.zombies.append(pid)
        info = json.loads(said) if said else {}
        return 0, 0, {"child": pid, **info}

    # --- children: a forked copy that obeys workload commands ------------------
    def op_fork(self, c: Cmd) -> Reply:
        name = c.get("name", "child")
        if name in self.children:
            raise RuntimeError(f"a forked {name} is already running")
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: same memory, waits for orders on its own pipe
            try:
                os.close(cmd_w)
                os.close(rep_r)
                for _, cw, rr in self.children.values():
                    os.close(cw)
                    os.close(rr)
                _become_quiet_child(me)
                _child_loop(cmd_r, rep_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(rep_w)
        self.children[name] = (pid, cmd_w, rep_r)
        return c.get("addr", 0), c.get("len", 0), {"child": pid}

    def op_child(self, c: Cmd) -> Reply:
        """Relay ``c["cmd"]`` to the forked child ``name``; its reply is in info["reply"]."""
        name = c.get("name", "child")
        if name not in self.children:
            raise RuntimeError(f"no forked {name}")
        pid, w, r = self.children[name]
        os.write(w, (json.dumps(c["cmd"]) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = os.read(r, 65536)
            if not chunk:
                raise RuntimeError(f"forked {name} {pid} died")
            reply += chunk
        got = json.loads(reply)
        if not got.get("ok"):
            raise RuntimeError(f"forked {name}: {got.get('error')}")
        return got.get("addr", 0), got.get("len", 0), {"child": pid, "reply": got}

    def op_end_child(self, c: Cmd) -> Reply:
        name = c.get("name", "child")
        if name in self.children:
            pid, w, r = self.children.pop(name)
            os.close(w)  # the child exits on EOF
            os.close(r)
            os.waitpid(pid, 0)
            return 0, 0, {"child": pid}
        return 0, 0, {}

    def op_sigbus(self, c: Cmd) -> Reply:
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
                libc.read_bytes(addr + c["touch_page"] * PAGE, 1)
            finally:
                os._exit(0)  # only reached if no signal came
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        self.zombies.append(pid)
        return addr, n, {"child": pid}

    def op_torn(self, c: Cmd) -> Reply:
        """A child updates a multi-page record through the shared mapping and stops half-way.

        It writes the new version page by page and stops itself (SIGSTOP)
        after ``stop_after`` pages, as if the scheduler or a crash caught it
        mid-update; vmainspect then kills it. Left a zombie until the next
        command.
        """
        addr, n = c["addr"], c["len"]
        data = c["data"].encode()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                _become_quiet_child(me)
                for i in range(n // PAGE):
                    if i == c["stop_after"]:
                        os.kill(os.getpid(), signal.SIGSTOP)
                    libc.write_bytes(addr + i * PAGE, data)
            finally:
                os._exit(0)
        os.waitpid(pid, os.WUNTRACED)  # returns once it has stopped
        self.zombies.append(pid)
        return addr, n, {"child": pid}

    # --- the loop --------------------------------------------------------
    def reap(self) -> None:
        for pid in self.zombies:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
        self.zombies = [p for p in self.zombies if _unreaped(p)]

    def end_children(self) -> None:
        for name in list(self.children):
            self.op_end_child({"name": name})

    def handle(self, c: Cmd) -> dict[str, Any]:
        op = c.get("op", "")
        fn = getattr(self, "op_" + str(op).replace("-", "_"), None)
        if fn is None:
            return {"op": op, "ok": False, "error": f"unknown op {op!r}"}
        try:
            addr, n, info = fn(c)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            return {"op": op, "ok": False, "error": str(e)}
        return {"op": op, "ok": True, "addr": addr, "len": n, "info": info}


def _unreaped(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _become_quiet_child(parent: int) -> None:
    """In a forked child: die with the workload, and let go of its pipes to vmainspect."""
    libc.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def _child_loop(cmd_r: int, rep_w: int) -> None:
    """A forked child's loop: one workload command a line, one JSON reply a line."""
    w = Workload()
    with os.fdopen(cmd_r, "r") as f:
        for line in f:
            reply = w.handle(json.loads(line))
            os.write(rep_w, (json.dumps(reply) + "\n").encode())


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
    w.end_children()
    w.reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
