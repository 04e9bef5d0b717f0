"""Attribution of sampled page faults: addresses to VMAs and page states, IPs and data to symbols.

Used by ``faults.FaultSampler`` at every tick. Inputs are the window's raw
little-endian u64 buffers (faulting addresses, IPs) and a ``model.Snapshot``:

- ``count_u64`` turns a raw buffer into a ``Counter`` (C-level, in steps);
- ``transitions`` counts (state before, state after) of the faulted pages
  between two snapshots with per-page runs;
- ``FaultSymbols`` names IPs (functions, kernel symbols) and faulting data
  inside ELF images (object symbols), caching each IP once per mapping, and
  turns the newest raw samples into ``model.FaultSample`` records.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..model import FaultSample, Snapshot

KERNEL_START = 0xFFFF800000000000
COUNT_STEP = 16384  # samples per C-level Counter call: lets the drain thread take the GIL in between


def count_u64(raw: bytearray, into: Counter[int]) -> Counter[int]:
    """Add the u64s in ``raw`` to ``into``, in steps, so that draining goes on meanwhile."""
    mv = memoryview(raw).cast("Q")
    for i in range(0, len(mv), COUNT_STEP):
        into.update(mv[i : i + COUNT_STEP])
    return into


class _NoVmas:
    vmas: tuple[Any, ...] = ()
    capabilities = None

    @staticmethod
    def vma_at(_address: int) -> None:
        return None


NO_VMAS = _NoVmas()  # stands for a missing snapshot: every address is unattributed


class PageStates:
    """State of a page in a snapshot with per-page runs: ``model.PAGE_STATES``, "unmapped" or None."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.page = snapshot.host.page_size
        self._firsts: dict[int, list[int]] = {}

    def state(self, addr: int) -> str | None:
        v = self.snapshot.vma_at(addr)
        if v is None:
            return "unmapped"
        if v.pages is None:
            return None
        firsts = self._firsts.get(v.start)
        if firsts is None:
            firsts = self._firsts[v.start] = [r.first for r in v.pages.runs]
        i = bisect.bisect_right(firsts, (addr - v.start) // self.page) - 1
        if i < 0:
            return None
        r = v.pages.runs[i]
        return r.state if (addr - v.start) // self.page < r.first + r.count else None


def transitions(
    before: Snapshot | None, after: Snapshot | None, pages: list[int]
) -> tuple[tuple[str, str, int], ...]:
    """(state before, state after, pages) of the faulted pages; () unless both snapshots have pages."""
    if before is None or after is None or before is after or not pages:
        return ()
    if before.capabilities is None or after.capabilities is None:
        return ()
    if not (before.capabilities.pages and after.capabilities.pages):
        return ()
    look_b, look_a = PageStates(before), PageStates(after)
    counts: Counter[tuple[str, str]] = Counter()
    for page in pages:
        b, a = look_b.state(page), look_a.state(page)
        if b is not None and a is not None:
            counts[(b, a)] += 1
    return tuple(sorted(((b, a, n) for (b, a), n in counts.items()), key=lambda t: (-t[2], t[0], t[1])))


class FaultSymbols:
    """Names IPs and faulting data addresses against a snapshot's mappings (ELF files cached)."""

    def __init__(self, pid: int | None, proc_root: str = "/proc") -> None:
        from .symbolize import Symbolizer

        self.proc_root = proc_root
        self._symbolizer = Symbolizer(pid, proc_root)
        self._sym_cache: dict[tuple[int, int | None, int | None], tuple[str, str, str]] = {}
        self._starts: tuple[int, list[int]] | None = None

    def elf_data_vma(self, v: Any, snapshot: Any) -> bool:
        """Could addresses in ``v`` be an ELF's data: a file mapping, or the anon VMA right after one (.bss)?"""
        from .symbolize import elf_path

        if elf_path(v) is not None:
            return True
        if v.path or v.inode:
            return False
        if self._starts is None or self._starts[0] != id(snapshot):
            self._starts = (id(snapshot), [x.start for x in snapshot.vmas])
        i = bisect.bisect_left(self._starts[1], v.start) - 1
        return i >= 0 and snapshot.vmas[i].end == v.start and elf_path(snapshot.vmas[i]) is not None

    def data_symbols(
        self, snapshot: Any, by_vma: Mapping[int, Any], lists: Sequence[tuple[list[int], Counter[int]]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Faulting addresses inside ELF images (.data, .bss, .rodata...) counted per object symbol."""
        out: dict[tuple[str, str], list[int]] = {}
        budget = 20000  # distinct addresses symbolized per tick
        for start in by_vma:
            v = snapshot.vma_at(start)
            if v is None or not self.elf_data_vma(v, snapshot):
                continue
            for kind, (keys, cnt) in enumerate(lists):
                lo = bisect.bisect_left(keys, v.start)
                hi = bisect.bisect_left(keys, v.end, lo)
                for a in keys[lo:hi]:
                    if budget <= 0:
                        break
                    budget -= 1
                    sym = self._symbolizer.lookup(a, v, snapshot)
                    if sym is not None and sym.name is not None and sym.reason is None:
                        out.setdefault((sym.name, sym.dso), [0, 0])[kind] += cnt[a]
        return {k: (a, b) for k, (a, b) in out.items()}

    def symbol_of(self, ip: int, snapshot: Snapshot) -> tuple[str, str, str]:
        """(function, dso, "function+0xoff") for an IP; cached per IP and mapping."""
        v = snapshot.vma_at(ip) if ip < KERNEL_START else None
        key = (ip, v.start if v else None, v.inode if v else None)
        hit = self._sym_cache.get(key)
        if hit is not None:
            return hit
        if ip >= KERNEL_START:  # a fault taken in kernel mode (copy_to_user, ...)
            from .symbolize import kernel_symbol

            k = kernel_symbol(ip, self.proc_root)
            out = (
                (k[0], "[kernel.kallsyms]", f"{k[0]}+{k[1]:#x}")
                if k
                else ("[kernel]", "[kernel.kallsyms]", f"[kernel] {ip:#x}")
            )
            self._sym_cache[key] = out
            return out
        s = self._symbolizer.lookup(ip, v, snapshot) if v is not None else None
        if s is None:
            dso = (v.path or "[anon]") if v is not None else "[unknown]"
            out = ("[unknown]", dso, f"{ip:#x}")
        elif s.reason is not None:
            out = (s.text, s.dso, s.text)  # "[unknown: file not reachable]": never a name from another file
        elif s.name is None:
            out = ("[unknown]", s.dso, s.text)
        else:
            out = (s.name, s.dso, s.text)
        if len(self._sym_cache) > 100_000:
            self._sym_cache.clear()
        self._sym_cache[key] = out
        return out

    def ip_symbols(
        self, snapshot: Any, raw_ips: Sequence[bytearray], folded_ips: Sequence[Counter[int]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(function, dso) -> (minor, major) from the raw IP buffers and folded IP counts of each kind."""
        out: dict[tuple[str, str], list[int]] = {}
        for kind in (0, 1):
            counts = count_u64(raw_ips[kind], Counter())
            counts.update(folded_ips[kind])
            for ip, c in counts.items():
                name, dso, _ = self.symbol_of(ip, snapshot)
                out.setdefault((name, dso), [0, 0])[kind] += c
        return {k: (a, b) for k, (a, b) in out.items()}

    def samples(
        self, tails: Iterable[bytes], maj_ids: set[int], recent: int, snapshot: Any
    ) -> tuple[FaultSample, ...]:
        """The newest ``recent`` raw samples of all threads' ``tails``, named, as FaultSamples."""
        if not recent or not tails:
            return ()
        from .perf import unpack_samples

        rows = []
        for tail in tails:
            rows.extend(unpack_samples(memoryview(tail).cast("Q")))
        rows.sort(key=lambda r: r[4])
        out = []
        for i, ip, pid, tid, t, a in rows[-recent:]:
            _name, dso, text = self.symbol_of(ip, snapshot)
            data = None
            v = snapshot.vma_at(a)
            if v is not None and self.elf_data_vma(v, snapshot):
                ds = self._symbolizer.lookup(a, v, snapshot)
                data = ds.text if ds is not None and ds.name is not None else None
            out.append(
                FaultSample(
                    time_ns=t,
                    pid=pid,
                    tid=tid,
                    ip=ip,
                    addr=a,
                    major=i in maj_ids,
                    symbol=None if text.startswith(("0x", "[unknown")) else text,
                    dso=None if dso.startswith("[") and dso != "[kernel.kallsyms]" else dso,
                    data_symbol=data,
                )
            )
        return tuple(out)
