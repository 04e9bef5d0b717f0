"""Page-fault sampling against the kernel: known fault patterns, counted by the kernel too.

Targets fault a known number of pages in a known mapping from a known
function; the samples are compared with the kernel's own counters
(/proc/PID/stat minflt/majflt) over the same window, with the target stopped
at both ends so the window is exact.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from c_targets import StoppedProgram, compile_c
from cli_helpers import REPO, faults_cli_sampling, run_cli
from schema_check import validate as validate_schema
from targets import nobody_can_import, spawn_target, wait_state

from vmainspect.errors import ProcessGone
from vmainspect.faults import perf
from vmainspect.faults.sampler import FaultSampler
from vmainspect.snapshot.collect import collect

PAGE = os.sysconf("SC_PAGE_SIZE")

FAULTER_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) void touch_pages(volatile char *p, size_t n, size_t page) {
    for (size_t i = 0; i < n; i += page) p[i] = 1;
}

int main(int argc, char **argv) {
    size_t n = strtoul(argv[1], 0, 0);
    long rounds = strtol(argv[2], 0, 0);          /* < 0: for ever */
    int then_exit = argc > 3;
    size_t page = sysconf(_SC_PAGESIZE);
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    madvise(p, n, MADV_NOHUGEPAGE);               /* one fault per page: no THP, no mTHP */
    printf("%lx %lx\n", (unsigned long)p, (unsigned long)touch_pages);
    fflush(stdout);
    raise(SIGSTOP);
    for (long r = 0; rounds < 0 || r < rounds; r++) {
        touch_pages(p, n, page);
        madvise(p, n, MADV_DONTNEED);
    }
    if (then_exit) return 0;
    printf("done\n");
    fflush(stdout);
    raise(SIGSTOP);
    for (;;) pause();
}
"""


@contextmanager
def sampling(pid: int, **options) -> Iterator[FaultSampler]:
    """A started FaultSampler on ``pid``, closed on leaving."""
    s = FaultSampler(pid, **options)
    try:
        s.start()
        yield s
    finally:
        s.close()


def _counters(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()  # the kernel's, read independently
    return int(fields[7]), int(fields[9])


@pytest.fixture(scope="module")
def faulter(tmp_path_factory):
    return compile_c(FAULTER_C, tmp_path_factory.mktemp("faulter"), "faulter")


class Faulter(StoppedProgram):
    """FAULTER_C touching ``size`` bytes ``rounds`` times (< 0: for ever), stopped before."""

    def __init__(self, exe: str, size: int, rounds: int, then_exit: bool = False) -> None:
        super().__init__([exe, str(size), str(rounds)] + (["exit"] if then_exit else []))
        a, f = self.line.split()
        self.addr, self.func = int(a, 16), int(f, 16)
        self.size = size


def test_known_function_and_mapping_take_the_faults(faulter):
    size, rounds = 8 << 20, 4
    t = Faulter(faulter, size, rounds)
    s = FaultSampler(t.pid, recent=16)
    try:
        s.start()
        assert s.mode == "perf", s.reason
        snap = collect(t.pid)
        c0 = _counters(t.pid)
        t.run_to_stop()
        c1 = _counters(t.pid)
        tick = s.tick(snap).faults
    finally:
        s.close()
        t.kill()
    npages = size // PAGE
    samples = tick.minor + tick.major
    assert tick.lost == 0
    # every fault the kernel counted was sampled, and nothing else
    assert (tick.minor, tick.major) == (c1[0] - c0[0], c1[1] - c0[1])
    # one fault per page per round, all in the mapping, all from touch_pages
    vma = snap.vma_at(t.addr)
    assert vma is not None and vma.start == t.addr
    minor, major = tick.by_vma[vma.start]
    assert minor == rounds * npages and major == 0
    assert minor >= 0.95 * samples
    top_sym, top_dso, top_count = tick.by_symbol[0]
    assert top_sym == "touch_pages" and top_dso == os.path.realpath(faulter)
    assert top_count >= 0.95 * samples
    assert tick.by_thread == {t.pid: (tick.minor, tick.major)}
    # the recent samples carry the IP inside touch_pages and an address in the mapping
    assert len(tick.recent) == 16
    for r in tick.recent:
        assert vma.contains(r.addr) and not r.major and r.tid == t.pid
        assert r.symbol.startswith("touch_pages") and r.ip >= t.func
    assert [r.time_ns for r in tick.recent] == sorted(r.time_ns for r in tick.recent)
    # the pages marked as faulted are exactly the mapping's pages
    assert set(tick.pages) == set(range(t.addr, t.addr + size, PAGE))


DATA_C = r"""
#include <signal.h>
#include <stdio.h>
char bss_buf[256 * 4096];                       /* .bss: mostly in the anonymous VMA after the file */
char data_buf[16 * 4096] = {1};                 /* .data: a private file mapping, written: COW faults */

int main(void) {
    printf("%lx %lx\n", (unsigned long)bss_buf, (unsigned long)data_buf);
    fflush(stdout);
    raise(SIGSTOP);
    for (int i = 0; i < (int)sizeof bss_buf; i += 4096) bss_buf[i] = 1;
    for (int i = 0; i < (int)sizeof data_buf; i += 4096) data_buf[i] = 2;
    printf("done\n");
    fflush(stdout);
    raise(SIGSTOP);
    return 0;
}
"""


def test_faulting_data_is_named_by_its_elf_object(tmp_path):
    exe = compile_c(DATA_C, tmp_path, "data", flags=("-O0",))
    t = StoppedProgram([exe])
    bss, _data = (int(x, 16) for x in t.line.split())
    s = FaultSampler(t.pid, recent=300)
    try:
        s.start()
        snap = collect(t.pid)
        t.run_to_stop()
        result = s.tick(snap)
    finally:
        s.close()
        t.kill()
    tick, split = result.faults, result.by_data_symbol_split
    # every page of both arrays faulted once, and is named by its symbol in the executable
    assert split[("bss_buf", exe)][0] >= 255  # the first page may share the file's last page
    # data_buf's first page is shared with .got/.data the loader already wrote (COWed before the window)
    assert split[("data_buf", exe)] in ((15, 0), (16, 0))
    named = {r.data_symbol.split("+")[0] for r in tick.recent if r.data_symbol}
    assert {"bss_buf", "data_buf"} <= named
    assert snap.vma_at(bss + 100 * 4096).path is None  # .bss beyond the file: anonymous VMA


def test_period_samples_one_fault_in_n(faulter):
    size, rounds, period = 4 << 20, 4, 8
    t = Faulter(faulter, size, rounds)
    s = FaultSampler(t.pid, period=period)
    try:
        s.start()
        snap = collect(t.pid)
        c0 = _counters(t.pid)
        t.run_to_stop()
        c1 = _counters(t.pid)
        tick = s.tick(snap).faults
        events = s.event_counts()
    finally:
        s.close()
        t.kill()
    assert events == (c1[0] - c0[0], c1[1] - c0[1])  # the events still count every fault
    assert tick.lost == 0
    assert tick.minor == events[0] // period
    assert tick.by_vma[t.addr][0] == rounds * (size // PAGE) // period


def test_losses_are_counted_not_hidden(monkeypatch):
    """A one-page ring that is not drained overflows: PERF_RECORD_LOST accounts for what was dropped.

    One ring (per-thread mode, forced): the LOST record is written into the ring that lost."""
    from vmainspect.faults import rings

    monkeypatch.setattr(rings, "MAX_EVENTS", 0)
    code = """
    n = 8 << 20
    addr = libc.mmap(None, n, 3, 0x22, -1, 0)
    libc.madvise(addr, n, 15)                 # MADV_NOHUGEPAGE: one fault per page
    checkpoint(report)
    ctypes.memset(addr, 1, n)                 # 2,048 faults
    checkpoint(report)
    libc.madvise(addr, n, 4)                  # MADV_DONTNEED
    ctypes.memset(addr, 1, 64 * PAGE)         # 64 more, once the ring has room again
    """
    with spawn_target(code) as t, sampling(t.pid, ring_bytes=PAGE) as s:
        snap = collect(t.pid)
        # the drain thread waits for this lock: 2,048 faults meet a ring of 85 samples
        with s._lock:
            t.resume_and_wait_stop()
        first = s.tick(snap).faults
        # the kernel writes the LOST record when the ring next has room: before these samples
        t.resume_and_wait_stop()
        s.stop()
        second = s.tick(snap).faults
        events = s.event_counts()
    lost, samples = first.lost + second.lost, first.minor + second.minor
    assert lost > 1900
    assert second.minor >= 64
    # every fault is a sample or a loss, except a loss not yet reported when the events stopped
    assert samples + lost <= events[0]
    assert samples + lost >= 0.9 * events[0]


def _own_thread_ring(tid: int) -> perf.Ring:
    """A Ring on one of our own threads: with kernel samples if allowed, else user mode only, else skip."""
    try:
        return perf.Ring(tid, ring_bytes=1 << 20)
    except perf.PerfError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise
    try:
        return perf.Ring(tid, ring_bytes=1 << 20, exclude_kernel=True)
    except perf.PerfError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise
        pytest.skip(f"perf_event_open refused to this user: kernel.perf_event_paranoid={_paranoid()}")


def _paranoid() -> int:
    with open("/proc/sys/kernel/perf_event_paranoid") as f:
        return int(f.read())


def test_ring_decodes_every_fault_of_this_thread():
    """One Ring on the test's own thread: the samples equal the event's own count."""
    import ctypes
    import mmap
    import threading

    r = _own_thread_ring(threading.get_native_id())
    m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE)
    try:
        buf = (ctypes.c_char * len(m)).from_buffer(m)
        base = ctypes.addressof(buf)
        r.enable()
        ctypes.memset(buf, 1, len(m))
        r.disable()
        runs, lost, other = perf.split_records(r.drain())
        rows = [row for q in runs for row in perf.unpack_samples(q)]
        del buf
        assert lost == 0 and other == 0
        assert len(rows) == r.counts()[0] + r.counts()[1]
        in_map = [row for row in rows if base <= row[5] < base + len(m)]
        # THP may serve the mapping with fewer, larger faults; never more than one per page
        assert 0 < len(in_map) <= len(m) // PAGE
        assert all(row[0] == r.id_min and row[3] == threading.get_native_id() for row in in_map)
        assert r.drain() == b""
    finally:
        r.close()
        m.close()


def test_major_faults_are_told_apart(tmp_path):
    # a file on disk (not tmpfs), written, fsynced and dropped from the page cache
    path = tmp_path / "cold.bin"
    npages = 256
    with open(path, "wb") as f:
        f.write(os.urandom(npages * PAGE))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    code = f"""
    f = open({str(path)!r}, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)     # MAP_PRIVATE file mapping
    addr = addr_of(m)
    libc.madvise(addr, len(m), 1)        # MADV_RANDOM: no readahead, so one major fault per page
    report["addr"] = addr
    checkpoint(report)
    total = 0
    for i in range(0, len(m), PAGE):
        total += m[i]
    report["total"] = total
    """
    with spawn_target(code) as t, sampling(t.pid) as s:
        snap = collect(t.pid)
        c0 = _counters(t.pid)
        t.resume_and_wait_stop()
        c1 = _counters(t.pid)
        tick = s.tick(snap).faults
    vma = snap.vma_at(t.report["addr"])
    assert vma is not None and vma.path == str(path)
    assert tick.lost == 0
    assert (tick.minor, tick.major) == (c1[0] - c0[0], c1[1] - c0[1])
    minor, major = tick.by_vma[vma.start]
    assert major == npages, (minor, major)
    assert tick.major == npages


def test_faults_taken_in_kernel_mode_are_sampled(tmp_path):
    """read(2) into fresh pages: the faults happen in copy_to_user, with a kernel IP."""
    path = tmp_path / "src.bin"
    path.write_bytes(b"k" * (1 << 20))
    code = f"""
    m = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE)
    libc.madvise(addr_of(m), len(m), 15)     # MADV_NOHUGEPAGE
    report["addr"] = addr_of(m)
    f = open({str(path)!r}, "rb", buffering=0)
    checkpoint(report)
    report["n"] = f.readinto(m)
    """
    with spawn_target(code) as t, sampling(t.pid) as s:
        if s.exclude_kernel:
            pytest.skip(
                f"kernel-mode samples refused to this user (kernel.perf_event_paranoid={_paranoid()})"
            )
        snap = collect(t.pid)
        c0 = _counters(t.pid)
        t.resume_and_wait_stop()
        c1 = _counters(t.pid)
        tick = s.tick(snap).faults
    assert t.report["n"] == 1 << 20
    assert (tick.minor, tick.major) == (c1[0] - c0[0], c1[1] - c0[1])
    assert tick.by_vma[t.report["addr"]] == (256, 0)
    kernel = sum(c for _s, d, c in tick.by_symbol if d == "[kernel.kallsyms]")
    assert kernel >= 256
    names = {sym for sym, d, _c in tick.by_symbol if d == "[kernel.kallsyms]"}
    if os.geteuid() == 0:  # /proc/kallsyms shows addresses to root only
        assert names and "[kernel]" not in names


@pytest.mark.root
def test_page_state_transitions_of_faulted_pages():
    """Read faults map the shared zero page; the writes after them replace it with anon pages."""
    code = """
    n = 4 << 20
    addr = libc.mmap(None, n, 3, 0x22, -1, 0)
    libc.madvise(addr, n, 15)                 # MADV_NOHUGEPAGE: one fault per page
    report["addr"] = addr
    checkpoint(report)
    for i in range(0, n, PAGE):
        ctypes.c_char.from_address(addr + i).value
    checkpoint(report)
    ctypes.memset(addr, 1, n)
    """
    npages = (4 << 20) // PAGE
    with spawn_target(code) as t, sampling(t.pid, baseline=collect(t.pid, pages=True)) as s:
        t.resume_and_wait_stop()
        reads = s.tick(collect(t.pid, pages=True)).faults
        t.resume_and_wait_stop()
        writes = s.tick(collect(t.pid, pages=True)).faults
        plain = s.tick(collect(t.pid)).faults  # no page state: no transitions
    assert ("absent", "zero", npages) in reads.by_transition
    assert ("zero", "anon", npages) in writes.by_transition
    assert plain.by_transition == ()


def test_mapping_made_during_the_window_is_found_by_a_fresh_look():
    code = """
    checkpoint(report)
    n = 2 << 20
    a = libc.mmap(None, n, 3, 0x22, -1, 0)
    libc.madvise(a, n, 15)
    ctypes.memset(a, 1, n)
    report["addr"] = a
    """
    with spawn_target(code) as t, sampling(t.pid) as s:
        old = collect(t.pid)
        t.resume_and_wait_stop()
        calls = []

        def refresh():
            calls.append(1)
            return collect(t.pid)

        result = s.tick(old, refresh=refresh)
    addr = t.report["addr"]
    assert old.vma_at(addr) is None and calls == [1]
    assert result.faults.by_vma[addr] == ((2 << 20) // PAGE, 0)
    assert result.unattributed == 0 and result.refresh_error is None
    assert result.snapshot is not old and result.snapshot.vma_at(addr) is not None


def test_a_failed_refresh_is_returned_not_swallowed():
    code = """
    checkpoint(report)
    n = 1 << 20
    a = libc.mmap(None, n, 3, 0x22, -1, 0)
    ctypes.memset(a, 1, n)
    """
    with spawn_target(code) as t, sampling(t.pid) as s:
        old = collect(t.pid)
        t.resume_and_wait_stop()

        def refresh():
            raise ProcessGone(t.pid, "gone while refreshing")

        result = s.tick(old, refresh=refresh)
    assert isinstance(result.refresh_error, ProcessGone)
    # the old snapshot stays; the new mapping is still found, from the kernel's MMAP2 record
    assert result.snapshot is old and result.unattributed == 0
    new = [r for r in result.faults.by_mapping if old.vma_at(r[0]) is None]
    assert len(new) == 1 and new[0][1] - new[0][0] == 1 << 20 and new[0][5] >= 256


def test_sampler_modules_do_not_import_textual():
    code = (
        "import sys, vmainspect.faults.sampler, vmainspect.faults.perf, vmainspect.faults.symbolize, vmainspect.commands.faults\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


THREAD_PER_REQUEST = """
import threading
checkpoint(report)
out = []
def work():
    n = 1 << 20
    a = libc.mmap(None, n, 3, 0x22, -1, 0)
    libc.madvise(a, n, 15)             # MADV_NOHUGEPAGE: one fault per page
    ctypes.memset(a, 1, n)             # at once: the thread's first moments
    out.append((a, threading.get_native_id()))
for _ in range(8):                     # a thread per request, each short-lived
    th = threading.Thread(target=work)
    th.start(); th.join()
# join() returns before the OS thread is gone; a SIGSTOP now would freeze it mid-exit
import time
while any(str(tid) in os.listdir("/proc/self/task") for _a, tid in out):
    time.sleep(0.01)
report["threads"] = out
"""


def _sample_next_stage(t, following: str):
    """Sample the target's next stage: (tick, snapshot after it, the kernel's counters before, after)."""
    with sampling(t.pid) as s:
        assert s.following == following
        c0 = _counters(t.pid)
        t.resume_and_wait_stop()
        c1 = _counters(t.pid)
        snap = collect(t.pid)
        return s.tick(snap).faults, snap, c0, c1


def test_new_threads_are_sampled_from_their_first_fault():
    """Per-CPU inherited events: a thread that faults as soon as it starts, and exits, is sampled whole."""
    npages = (1 << 20) // PAGE
    with spawn_target(THREAD_PER_REQUEST) as t:
        tick, snap, c0, c1 = _sample_next_stage(t, "per-cpu")
    threads = t.report["threads"]
    assert len({tid for _a, tid in threads}) == 8 and all(tid != t.pid for _a, tid in threads)
    for _addr, tid in threads:
        assert tick.by_thread[tid][0] >= npages
    # the threads' mappings (adjacent ones merged into one VMA by the kernel) took every page's fault
    starts = {snap.vma_at(a).start for a, _tid in threads}
    assert sum(tick.by_vma[v][0] for v in starts) >= 8 * npages
    assert (tick.minor, tick.major) == (c1[0] - c0[0], c1[1] - c0[1])
    assert tick.unsampled == 0 and tick.lost == 0


def test_per_thread_fallback_reports_what_it_could_not_sample(monkeypatch):
    """Per-thread rings (forced here) find a thread only when /proc lists it: faults it took before
    are not sampled, and the tick says how many (the kernel's counter minus the events')."""
    from vmainspect.faults import rings

    monkeypatch.setattr(rings, "MAX_EVENTS", 0)
    npages = (1 << 20) // PAGE
    with spawn_target(THREAD_PER_REQUEST) as t:
        tick, _snap, c0, c1 = _sample_next_stage(t, "per-thread")
    kernel = (c1[0] - c0[0]) + (c1[1] - c0[1])
    sampled = tick.minor + tick.major
    assert tick.unsampled is not None and tick.unsampled >= 7 * npages  # most threads came and went unseen
    assert sampled + tick.unsampled == kernel  # every fault is sampled or counted as unsampled


def test_counters_fallback_when_perf_is_refused(monkeypatch):
    import errno

    def refuse(*a, **k):
        raise perf.PerfError(errno.EACCES, "perf_event_open: Permission denied")

    monkeypatch.setattr(perf, "perf_event_open", refuse)
    code = """
    m = mmap.mmap(-1, 256 * PAGE, flags=mmap.MAP_PRIVATE)
    checkpoint(report)
    for i in range(0, len(m), PAGE):
        m[i] = 1
    """
    with spawn_target(code) as t, sampling(t.pid) as s:
        assert s.mode == "counters"
        assert "perf_event_open refused" in s.reason and "perf_event_paranoid=" in s.reason
        assert "/proc fault counters" in s.reason
        c0 = _counters(t.pid)
        t.resume_and_wait_stop()
        c1 = _counters(t.pid)
        tick = s.tick(None).faults
    assert tick.mode == "counters" and tick.lost is None and tick.reason == s.reason
    assert (tick.minor, tick.major) == (c1[0] - c0[0], c1[1] - c0[1])
    assert tick.minor >= 256
    assert tick.by_thread[t.pid][0] == tick.minor


def _run_cli(*args, user=None):
    return run_cli("faults", *args, user=user, timeout=60)


def test_cli_json_against_the_kernel(faulter):
    import json

    size = 4 << 20
    t = Faulter(faulter, size, -1)
    try:
        rc, out, err, faulted = _cli_over_a_burst(t.pid)
    finally:
        t.kill()
    assert rc == 0, err
    doc = json.loads(out)
    validate_schema(doc, "vmainspect/faults@1")  # the schema file shipped in the package
    assert doc["mode"] == "perf" and doc["lost"] == 0
    assert doc["samples"] >= 20000
    # every fault in the window was sampled, and the CLI's kernel counters say the same
    assert doc["samples"] == doc["minor"] == doc["proc_counters"]["minor"] == faulted
    assert doc["event_counts"]["minor"] == doc["minor"]
    top = doc["by_vma"][0]
    assert top["start"] == t.addr and top["end"] == t.addr + size and top["perms"] == "rw-p"
    assert top["minor"] >= 0.95 * doc["samples"]
    assert doc["by_symbol"][0]["symbol"] == "touch_pages"


def _cli_over_a_burst(pid: int, user: str | None = None) -> tuple[int, str, str, int]:
    """`faults PID --json` (as ``user``) over a burst of the stopped target's faults: the target
    runs only while the CLI samples (events open, its /proc counters read) and is stopped again
    before Ctrl+C, so the CLI's window and the kernel's counters hold the same faults, however a
    loaded machine schedules the CLI between its reads (states polled for, 60 s deadline).
    Returns (exit code, stdout, stderr, the target's minor faults in the burst)."""
    cmd = [sys.executable, "-m", "vmainspect", "faults", str(pid), "--json"]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while not faults_cli_sampling(p.pid):
            assert p.poll() is None and time.monotonic() < deadline, "the CLI did not start sampling"
            time.sleep(0.02)
        c0 = _counters(pid)
        os.kill(pid, signal.SIGCONT)
        while _counters(pid)[0] < c0[0] + 20000:
            assert time.monotonic() < deadline, "the target did not fault"
            time.sleep(0.02)
        os.kill(pid, signal.SIGSTOP)
        wait_state(pid)
        c1 = _counters(pid)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, out, err, c1[0] - c0[0]


def _any_entry(folder: str, look, want: str) -> bool:
    """True when ``look(path)`` of an entry of ``folder`` is ``want`` (entries that vanish are skipped)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for name in names:
        try:
            if look(os.path.join(folder, name)) == want:
                return True
        except OSError:
            continue
    return False


def _has_perf_fd(pid: int) -> bool:
    return _any_entry(f"/proc/{pid}/fd", os.readlink, "anon_inode:[perf_event]")


def test_cli_text_ctrl_c_prints_what_was_sampled(faulter):
    t = Faulter(faulter, 1 << 20, -1)
    try:
        os.kill(t.pid, signal.SIGCONT)
        p = subprocess.Popen(
            [sys.executable, "-m", "vmainspect", "faults", str(t.pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # interrupt once it is sampling (its drain thread runs: the events are open and the
        # sampler started) and the target has faulted a good many times since (states polled
        # for, not a fixed wait)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not faults_cli_sampling(p.pid):
            time.sleep(0.02)
        base = _counters(t.pid)[0]
        while time.monotonic() < deadline and _counters(t.pid)[0] < base + 20000:
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        t.kill()
    assert p.returncode == 0, err
    assert "top mappings" in out and "touch_pages" in out
    assert "note: interrupted after" in out
    assert "Traceback" not in err


def test_cli_process_exits_mid_run(faulter):
    import json

    t = Faulter(faulter, 1 << 20, 600, then_exit=True)
    cmd = [sys.executable, "-m", "vmainspect", "faults", str(t.pid), "--duration", "120", "--json", "--pages"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the target runs (and exits) only once the CLI samples it: its perf events are open
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _has_perf_fd(p.pid):
            time.sleep(0.02)
        os.kill(t.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
    finally:
        t.kill()
    assert p.returncode == 0, err
    doc = json.loads(out)
    validate_schema(doc, "vmainspect/faults@1")
    assert isinstance(doc["by_transition"], list)  # --pages: counted (null without it)
    assert doc["duration_s"] < 120  # ended when the target exited, not at --duration (a slow machine: 120 s)
    assert any("exited" in n for n in doc["notes"])
    assert doc["samples"] > 0 and doc["by_symbol"][0]["symbol"] == "touch_pages"


def test_cli_no_such_process():
    p = subprocess.Popen(["true"])
    p.wait()
    r = _run_cli(p.pid, "--duration", "0.2")
    assert r.returncode == 3
    assert r.stderr.startswith("vmainspect: process") and "Traceback" not in r.stderr


def test_cli_bad_arguments():
    r = _run_cli("1", "--period", "0")
    assert r.returncode == 2 and "wants 1 to" in r.stderr


@pytest.mark.nobody
@pytest.mark.root("runs vmainspect as nobody against a root process")
def test_cli_as_nobody_on_a_root_process_falls_back_to_counters():
    import json

    with spawn_target("m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE)\n") as t:
        r = _run_cli(t.pid, "--duration", "0.3", "--json", user="nobody")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate_schema(doc, "vmainspect/faults@1")
    assert doc["mode"] == "counters"
    assert "another user" in doc["reason"] and "/proc fault counters" in doc["reason"]
    assert doc["samples"] is None and doc["lost"] is None and doc["by_vma"] == []
    assert doc["proc_counters"] == {"minor": 0, "major": 0}  # stopped: no faults


@pytest.mark.nobody
@pytest.mark.root("starts a target as nobody")
def test_cli_as_nobody_on_its_own_process_samples_user_mode_faults(faulter):
    """kernel.perf_event_paranoid=2 lets a user sample its own processes, user mode only."""
    import json
    import tempfile

    paranoid = _paranoid()
    if paranoid > 2:
        pytest.skip(f"kernel.perf_event_paranoid={paranoid} forbids unprivileged perf_event_open")
    d = tempfile.mkdtemp(prefix="vmainspect-faulter-")
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "faulter")
        shutil.copy(faulter, exe)
        os.chmod(exe, 0o755)
        size = 4 << 20
        proc = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", exe, str(size), "-1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            addr = int(proc.stdout.readline().split()[0], 16)
            wait_state(proc.pid)
            rc, out, err, faulted = _cli_over_a_burst(proc.pid, user="nobody")
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, err
    doc = json.loads(out)
    validate_schema(doc, "vmainspect/faults@1")
    assert doc["mode"] == "perf"
    if paranoid >= 2:
        assert any("kernel mode" in n for n in doc["notes"])
    assert doc["samples"] > 1000
    # The faulter faults as fast as it can: when the machine is busy the drain thread can fall
    # behind and the kernel drops samples, and says how many (PERF_RECORD_LOST). Every fault is
    # then either sampled or counted as lost (user-mode faults: all of the faulter's).
    assert doc["samples"] + doc["lost"] == doc["proc_counters"]["minor"] == faulted
    assert doc["by_vma"][0]["start"] == addr
    top = doc["by_symbol"][0]
    assert top["dso"] == exe and top["count"] >= 0.95 * doc["samples"]
    # as nobody this Python may not see pyelftools (it lives under /root here): then unnamed, never misnamed
    assert top["symbol"] == ("touch_pages" if nobody_can_import("elftools") else "[unknown]")


def test_no_perf_sampling_where_the_ring_code_lacks_memory_barriers(monkeypatch):
    """On an architecture other than x86-64 the ring would need barriers ctypes cannot give: counters."""
    from vmainspect.faults import sampler as sampler_mod

    monkeypatch.setattr(sampler_mod.platform, "machine", lambda: "aarch64")
    with spawn_target("m = mmap.mmap(-1, 64 * PAGE, flags=mmap.MAP_PRIVATE)\n") as t, sampling(t.pid) as s:
        tick = s.tick(None).faults
    assert s.mode == "counters" and tick.mode == "counters"
    assert "aarch64" in s.reason and "memory barriers" in s.reason and "/proc fault counters" in s.reason


def test_without_pages_the_counts_per_mapping_are_the_same(faulter):
    """pages=False takes a shortcut when a window's faults all lie in one mapping: same counts."""
    size, rounds = 4 << 20, 3
    t = Faulter(faulter, size, rounds)
    full, short = FaultSampler(t.pid), FaultSampler(t.pid, pages=False)
    try:
        full.start()
        short.start()
        snap = collect(t.pid)
        t.run_to_stop()
        a, b = full.tick(snap).faults, short.tick(snap).faults
    finally:
        full.close()
        short.close()
        t.kill()
    assert a.by_vma == b.by_vma == {t.addr: (rounds * size // PAGE, 0)}
    assert a.by_mapping == b.by_mapping and a.by_symbol == b.by_symbol
    assert len(a.pages) == size // PAGE and b.pages == ()
