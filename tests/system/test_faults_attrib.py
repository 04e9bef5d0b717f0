"""Faults go to the mapping they hit when they happened, even if it changed size since.

The target grows its brk heap by 32 MiB, writes every page, shrinks it back
and rests, in a loop: the memory map read at any tick shows a small heap, yet
the faults were in its 32 MiB extent. The kernel's MMAP2 record of the brk
growth, with the snapshots at the window's ends, put them in the one [heap]
row (keyed by identity: start, kind, path).
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from c_targets import StoppedProgram, compile_c
from cli_helpers import run_cli
from schema_check import validate as validate_schema

from vmainspect.faults.sampler import FaultSampler
from vmainspect.snapshot.collect import collect

PAGE = os.sysconf("SC_PAGE_SIZE")
GROW = 32 << 20

BRK_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long rounds = argc > 1 ? strtol(argv[1], 0, 0) : -1;   /* < 0: for ever */
    long n = 32L << 20;
    printf("%lx\n", (unsigned long)sbrk(0));
    fflush(stdout);
    raise(SIGSTOP);
    for (long r = 0; rounds < 0 || r < rounds; r++) {
        char *p = sbrk(n);                          /* grow the heap by 32 MiB */
        if (p == (void *)-1) return 1;
        madvise(p, n, MADV_NOHUGEPAGE);             /* one fault per page */
        for (long i = 0; i < n; i += 4096) p[i] = 1;
        sbrk(-n);                                   /* shrink it back */
        if (rounds < 0) usleep(200000);             /* and rest */
    }
    printf("done\n");
    fflush(stdout);
    raise(SIGSTOP);
    for (;;) pause();
}
"""


@pytest.fixture(scope="module")
def brk_exe(tmp_path_factory):
    return compile_c(BRK_C, tmp_path_factory.mktemp("brk"), "brk")


def test_heap_that_grew_and_shrank_within_the_window_is_one_row(brk_exe):
    rounds = 3
    t = StoppedProgram([brk_exe, str(rounds)])
    try:
        s = FaultSampler(t.pid)
        try:
            s.start()
            before = collect(t.pid)
            t.run_to_stop()
            after = collect(t.pid)  # the heap is small again
            tick = s.tick(after).faults
        finally:
            s.close()
    finally:
        t.kill()
    heap = next(v for v in after.vmas if v.path == "[heap]")
    assert heap.size < GROW  # the map read at the tick knows nothing of the 32 MiB
    rows = [r for r in tick.by_mapping if r[4] == "[heap]"]
    assert len(rows) == 1
    start, end, _perms, kind, _path, minor, major = rows[0]
    assert (start, kind) == (heap.start, "heap") and end - start >= GROW
    assert minor >= rounds * GROW // PAGE and major == 0
    assert minor >= 0.99 * (tick.minor + tick.major)
    assert tick.unattributed == 0
    assert before.vma_at(heap.start + GROW - PAGE) is None


@pytest.mark.parametrize("run", [1, 2, 3])
def test_cli_puts_the_heap_faults_in_one_heap_row(brk_exe, run):
    """Three 2-second runs on the looping target: >= 90% of the samples in one [heap] row."""
    t = StoppedProgram([brk_exe])
    try:
        os.kill(t.pid, signal.SIGCONT)
        r = run_cli("faults", t.pid, "--duration", "2", "--json", timeout=60)
    finally:
        t.kill()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate_schema(doc, "vmainspect/faults@1")
    heap_rows = [x for x in doc["by_vma"] if x["path"] == "[heap]"]
    assert len(heap_rows) == 1, heap_rows
    heap = heap_rows[0]
    assert heap["kind"] == "heap" and heap["end"] - heap["start"] >= GROW
    assert doc["samples"] >= GROW // PAGE  # at least one round
    assert heap["minor"] + heap["major"] >= 0.9 * doc["samples"], doc["by_vma"][:3]
