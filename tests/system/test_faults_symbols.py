"""Symbols of sampled faults come from the file the process really maps.

- a process in its own mount namespace (``unshare -m``) runs a binary bind-mounted
  over a path where the host has another binary: the top function is the one
  ``perf report`` names (the process's), never the host file's;
- a binary deleted while it runs is still symbolized (through map_files, root);
- a C++ function is shown demangled, with the mangled name kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest
from c_targets import StoppedProgram, compile_c
from cli_helpers import run_cli
from schema_check import validate as validate_schema
from targets import nobody_can_import

from vmainspect.faults.sampler import FaultSampler
from vmainspect.snapshot.collect import collect

PROG_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __cplusplus
namespace lecture { namespace memory {
#endif
__attribute__((noinline)) void FUNC(volatile char *p, long n) { for (long i = 0; i < n; i += 4096) p[i] = 1; }
#ifdef __cplusplus
} }
using lecture::memory::FUNC;
#endif
int main(int argc, char **argv) {
    long n = 4L << 20, rounds = argc > 1 ? strtol(argv[1], 0, 0) : -1;   /* < 0: for ever */
    char *p = (char *)mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(p, n, MADV_NOHUGEPAGE);
    printf("%lx\n", (unsigned long)p);
    fflush(stdout);
    raise(SIGSTOP);
    for (long r = 0; rounds < 0 || r < rounds; r++) { FUNC(p, n); madvise(p, n, MADV_DONTNEED); }
    printf("done\n");
    fflush(stdout);
    raise(SIGSTOP);
    for (;;) pause();
}
"""


@pytest.fixture
def shared_dir():
    """A directory every user can read (the nobody variants run binaries from it)."""
    d = tempfile.mkdtemp(prefix="vmainspect-sym-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def build(d: str, name: str, func: str, cxx: bool = False) -> str:
    exe = compile_c(PROG_C, d, name, flags=("-O1", f"-DFUNC={func}"), cxx=cxx)
    os.chmod(exe, 0o755)
    return exe


def sample_rounds(t: StoppedProgram) -> tuple:
    s = FaultSampler(t.pid)
    try:
        s.start()
        assert s.mode == "perf", s.reason
        snap = collect(t.pid)
        t.run_to_stop()
        tick = s.tick(snap).faults
    finally:
        s.close()
    return tick, snap


def perf_report_top(pid: int, d: str) -> str:
    """The top symbol of `perf record -e page-faults -c 1 -d -p PID` over about a second."""
    data = os.path.join(d, "perf.data")
    r = subprocess.run(
        [
            "perf",
            "record",
            "-q",
            "-e",
            "page-faults",
            "-c",
            "1",
            "-d",
            "-p",
            str(pid),
            "-o",
            data,
            "--",
            "sleep",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    rep = subprocess.run(
        ["perf", "report", "--stdio", "--sort", "sym", "-i", data], capture_output=True, text=True, timeout=60
    )
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*[\d.]+%\s+\[[.k]\]\s+(\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no symbol in perf report:\n{rep.stdout}\n{rep.stderr}")


def _unshare_ok() -> str | None:
    if os.geteuid() != 0:
        return "unshare -m needs root (CAP_SYS_ADMIN)"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"unshare -m refused here: {r.stderr.strip()}"


def _in_namespace(
    host_path: str, real: str, *, user: str | None = None, args: tuple[str, ...] = ()
) -> list[str]:
    """argv running ``real`` at ``host_path`` (bind-mounted) in a private mount namespace."""
    become = f"setpriv --reuid={user} --regid=nogroup --clear-groups " if user else ""
    script = f'mount --bind "$1" "$2" && exec {become}"$2" {" ".join(args)}'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", real, host_path]


@pytest.fixture
def two_binaries(shared_dir):
    why = _unshare_ok()
    if why:
        pytest.skip(why)
    host = build(shared_dir, "prog", "host_side_function")
    inside = build(shared_dir, "inside", "container_side_function")
    return host, inside


def test_namespace_binary_is_read_through_the_process(two_binaries, shared_dir):
    host, inside = two_binaries
    t = StoppedProgram(_in_namespace(host, inside, args=("3",)))
    try:
        snap = collect(t.pid)
        vma = next(v for v in snap.vmas if v.path == host and "x" in v.perms)
        assert vma.inode == os.stat(inside).st_ino != os.stat(host).st_ino  # the process maps the other file
        # the Details panel reads the same file: the process's, with its symbols
        from vmainspect.faults.symbolize import ElfFiles, describe_vma

        info = ElfFiles(t.pid).get(vma)
        assert "container_side_function" in info.names and "host_side_function" not in info.names
        assert describe_vma(vma, snapshot=snap)[0].startswith("ELF ")
        tick, _ = sample_rounds(t)
    finally:
        t.kill()
    top, dso, count = tick.by_symbol[0]
    assert top == "container_side_function" and dso == host
    assert count >= 0.95 * (tick.minor + tick.major)
    assert all(sym != "host_side_function" for sym, _d, _c in tick.by_symbol)


def test_namespace_top_function_equals_perf_report(two_binaries, shared_dir):
    if shutil.which("perf") is None:
        pytest.skip("needs perf to compare with")
    host, inside = two_binaries
    t = StoppedProgram(_in_namespace(host, inside))
    try:
        os.kill(t.pid, signal.SIGCONT)
        expected = perf_report_top(t.pid, shared_dir)
        r = run_cli("faults", t.pid, "--duration", "1", "--json", timeout=60)
    finally:
        t.kill()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate_schema(doc, "vmainspect/faults@1")
    assert expected == "container_side_function"
    assert doc["by_symbol"][0]["symbol"] == expected


def test_namespace_binary_as_an_ordinary_user_goes_through_proc_pid_root(two_binaries, nobody_pythonpath):
    """nobody cannot open map_files; /proc/PID/root/PATH reaches the process's file (same user)."""
    with open("/proc/sys/kernel/perf_event_paranoid") as f:
        if int(f.read()) > 2:
            pytest.skip("kernel.perf_event_paranoid > 2 forbids unprivileged perf_event_open")
    host, inside = two_binaries
    if not nobody_can_import("elftools"):
        pytest.skip("pyelftools is not readable by user nobody with this Python")
    t = StoppedProgram(_in_namespace(host, inside, user="nobody"))
    try:
        os.kill(t.pid, signal.SIGCONT)
        r = run_cli(
            "faults",
            t.pid,
            "--duration",
            "0.5",
            "--json",
            user="nobody",
            timeout=60,
            pythonpath=nobody_pythonpath,
        )
    finally:
        t.kill()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mode"] == "perf"
    assert doc["by_symbol"][0]["symbol"] == "container_side_function"


@pytest.mark.root("/proc/PID/map_files is root-only")
def test_deleted_binary_is_symbolized_through_map_files(shared_dir):
    exe = build(shared_dir, "doomed", "deleted_side_function")
    t = StoppedProgram([exe, "3"])
    try:
        os.unlink(exe)
        tick, snap = sample_rounds(t)
    finally:
        t.kill()
    assert any(v.path == exe + " (deleted)" for v in snap.vmas)
    top, dso, _count = tick.by_symbol[0]
    assert (top, dso) == ("deleted_side_function", exe + " (deleted)")


def test_deleted_binary_without_map_files_is_not_reachable(shared_dir):
    """Another file now at the path (a rebuilt binary): never its names."""
    exe = build(shared_dir, "replaced", "old_function")
    t = StoppedProgram([exe, "3"])
    try:
        os.unlink(exe)
        build(shared_dir, "replaced", "new_function")
        from vmainspect.faults.symbolize import NOT_REACHABLE, Symbolizer

        snap = collect(t.pid)
        vma = next(v for v in snap.vmas if v.path == exe + " (deleted)" and "x" in v.perms)
        s = Symbolizer(None).lookup(vma.start + 16, vma, snap)  # no pid: only the path to go by
        assert s is not None and s.reason == NOT_REACHABLE and s.name is None
    finally:
        t.kill()


def test_cpp_function_is_demangled_and_the_mangled_name_kept(shared_dir):
    exe = build(shared_dir, "cxx", "touch_pages", cxx=True)
    t = StoppedProgram([exe])
    try:
        os.kill(t.pid, signal.SIGCONT)
        r = run_cli("faults", t.pid, "--duration", "0.5", "--json", timeout=60)
        text = run_cli("faults", t.pid, "--duration", "0.3", timeout=60)
    finally:
        t.kill()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate_schema(doc, "vmainspect/faults@1")
    top = doc["by_symbol"][0]
    assert top["symbol"] == "_ZN7lecture6memory11touch_pagesEPVcl"
    assert top["demangled"] == "lecture::memory::touch_pages(char volatile*, long)"
    assert "lecture::memory::touch_pages(char volatile*, long)" in text.stdout
    assert "_ZN7lecture" not in text.stdout
