"""Starting, driving and always ending the demo workload; its temp folder.

``DemoSession`` owns one temporary folder and one workload process. Its
``close()`` kills the workload's whole process group (the workload and any
child it forked) and removes the folder; it runs on every exit path of the
demo (``with`` block, q, Ctrl+C, SIGHUP/SIGTERM via ``exit_on_signals``).
If vmainspect itself is SIGKILLed, the kernel still kills the workload
(PR_SET_PDEATHSIG) and the next demo removes the orphaned folder.

Create the session on a thread that lives as long as the demo (the main
thread): PR_SET_PDEATHSIG fires when the *thread* that forked the child ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

from ..errors import Unsupported, VmaInspectError

PREFIX = "vmainspect-demo-"
TMPFS_MAGIC = 0x01021994


class WorkloadError(VmaInspectError):
    """The workload died or answered nonsense."""

    exit_code = 1


def _fs_type(path: str) -> int | None:
    """statfs(2) f_type of ``path``, or None if it cannot be read."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86-64
        if libc.statfs(path.encode(), buf) != 0:
            return None
        return ctypes.c_long.from_buffer(buf).value
    except (OSError, AttributeError):
        return None


def temp_root() -> str:
    """A temp folder on a disk-backed file system (page cache that can be evicted).

    tmpfs pages live in memory only: they cannot be evicted, so reading them
    never takes a major fault. Prefer $TMPDIR/tmp, else /var/tmp.
    """
    first = tempfile.gettempdir()
    for cand in (first, "/var/tmp"):
        if os.path.isdir(cand) and os.access(cand, os.W_OK | os.X_OK) and _fs_type(cand) != TMPFS_MAGIC:
            return cand
    return first


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(root: str) -> list[str]:
    """Remove demo folders (ours, same uid) whose vmainspect process is gone."""
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid_text = name[len(PREFIX) :].split("-", 1)[0]
        path = os.path.join(root, name)
        try:
            if not pid_text.isdigit() or os.lstat(path).st_uid != os.geteuid():
                continue
        except OSError:
            continue
        if not _alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def module_command(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment to run ``python3 -m vmainspect.demo.MODULE`` as a child.

    PYTHONPATH points at this checkout, so it works without installation too.
    """
    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONSTARTUP", None)
    exe = sys.executable
    if not exe or not os.access(exe, os.X_OK):
        # e.g. dropped privileges below a python in an unreadable home: the
        # running interpreter can still be exec'ed through its magic link
        exe = "/proc/self/exe"
    return [exe, "-m", f"vmainspect.demo.{module}", *args], env


class DemoSession:
    """A temp folder plus the workload process; ``close()`` undoes both."""

    def __init__(self, *, start_timeout: float = 20.0, wait: bool = True) -> None:
        root = temp_root()
        remove_stale(root)
        self.dir = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
        self.on_tmpfs = _fs_type(self.dir) == TMPFS_MAGIC
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self._buf = b""
        self._ready = False
        self._start_timeout = start_timeout
        try:
            self._start()
            if wait:
                self.wait_ready()
        except BaseException:
            self.close()
            raise

    # --- process ---------------------------------------------------------
    def _start(self) -> None:
        argv, env = module_command("workload", "--parent", str(os.getpid()))
        try:
            with open(os.path.join(self.dir, "workload.err"), "wb") as err:
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    cwd=self.dir,
                    env=env,
                    start_new_session=True,
                )
        except OSError as e:
            raise Unsupported(f"cannot start the demo workload: {e.strerror}") from None
        self.pid = self.proc.pid

    def wait_ready(self) -> None:
        """Wait for the workload's hello line (it has set PR_SET_PDEATHSIG by then).

        May run on any thread: only the spawn must happen on a long-lived one.
        """
        if self._ready:
            return
        hello = self._read_line(self._start_timeout)
        if not hello.get("ready"):
            raise WorkloadError(f"demo workload did not start: {hello}")
        self.page_size = int(hello.get("page_size", self.page_size))
        self._ready = True

    def _stderr_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "workload.err"), "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkloadError(f"demo workload {self.pid} did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                tail = self._stderr_tail()
                raise WorkloadError(f"demo workload {self.pid} exited" + (f": {tail}" if tail else ""))
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply: dict[str, Any] = json.loads(line)
            return reply
        except ValueError:
            raise WorkloadError(f"demo workload sent garbage: {line[:80]!r}") from None

    def request(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """Send one command, return the reply; raise WorkloadError if it failed."""
        if not self.proc:
            raise WorkloadError("demo workload is not running")
        if self.proc.poll() is not None:
            raise WorkloadError(f"demo workload {self.pid} exited ({_how(self.proc.returncode)})")
        self.wait_ready()
        assert self.proc.stdin
        try:
            self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkloadError(f"demo workload {self.pid} exited") from None
        reply = self._read_line(timeout)
        if not reply.get("ok"):
            raise WorkloadError(f"demo workload could not {op}: {reply.get('error')}")
        return reply

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- ending ------------------------------------------------------------
    def stop_workload(self) -> None:
        """Kill the workload and everything it forked; reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f:
                with contextlib.suppress(OSError):
                    f.close()

    def close(self) -> None:
        self.stop_workload()
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DemoSession:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextlib.contextmanager
def exit_on_signals(on_signal: Callable[[int], None] | None = None) -> Iterator[None]:
    """Turn SIGHUP/SIGTERM (terminal closed, kill) into an orderly exit.

    By default the handler raises SystemExit(128 + signo), so ``finally``
    blocks (session clean-up) run. ``on_signal(signo)`` replaces that, e.g.
    to ask a running TUI to exit. Only usable from the main thread.
    """

    def handler(signo: int, _frame: FrameType | None) -> None:
        if on_signal is not None:
            on_signal(signo)
        else:
            raise SystemExit(128 + signo)

    old = {}
    for s in (signal.SIGHUP, signal.SIGTERM):
        old[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
