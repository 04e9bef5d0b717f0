"""The data model: what one look at a process's memory found.

Frozen dataclasses, stdlib only. Everything the collector produces, the JSON
contract carries and the TUI renders is one of these. ``None`` always means
*unknown* (for example a kpageflags-derived count without root), never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SNAPSHOT_SCHEMA = "vmainspect/snapshot@1"

# Page states used in page runs. Exactly one per page.
ABSENT = "absent"  # not in the page tables (never touched, or dropped)
SWAPPED = "swapped"  # swapped out (pagemap bit 62)
FILE = "file"  # present, file/shmem-backed, clean or dirtiness unknown
FILE_DIRTY = "file-dirty"  # present, file-backed, kpageflags DIRTY set (root only)
ANON = "anon"  # present, anonymous (dirty by nature); includes the
# zero page when PFNs are hidden (cannot tell them apart)
ZERO = "zero"  # the shared zero page (root only: needs the PFN)
PAGE_STATES = (ABSENT, SWAPPED, FILE, FILE_DIRTY, ANON, ZERO)

# VMA kinds, derived from perms, path, inode and flags.
KIND_HEAP = "heap"
KIND_STACK = "stack"
KIND_VDSO = "vdso"
KIND_VVAR = "vvar"
KIND_VSYSCALL = "vsyscall"
KIND_FILE_PRIVATE = "file-private"
KIND_FILE_SHARED = "file-shared"
KIND_ANON_PRIVATE = "anon-private"
KIND_ANON_SHARED = "anon-shared"
KIND_GUARD = "guard"  # no permissions at all (---p / ---s)
KIND_DELETED = "deleted"  # file mapping whose file was unlinked
KIND_SHM = "shm"  # SysV shared memory (/SYSV... path)
VMA_KINDS = (
    KIND_HEAP,
    KIND_STACK,
    KIND_VDSO,
    KIND_VVAR,
    KIND_VSYSCALL,
    KIND_FILE_PRIVATE,
    KIND_FILE_SHARED,
    KIND_ANON_PRIVATE,
    KIND_ANON_SHARED,
    KIND_GUARD,
    KIND_DELETED,
    KIND_SHM,
)


@dataclass(frozen=True)
class HostInfo:
    kernel: str  # os.uname().release
    page_size: int  # bytes
    hostname: str = ""


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int | None
    name: str
    cmdline: tuple[str, ...]
    exe: str | None  # None when the link cannot be read
    user: str | None  # user name of the real uid (or str(uid))
    uid: int | None
    state: str  # one letter from /proc/PID/stat, e.g. "S", "T", "Z"
    threads: int
    minor_faults: int  # /proc/PID/stat minflt (process, not children)
    major_faults: int  # /proc/PID/stat majflt
    create_time: float | None  # seconds since the epoch; (pid, create_time) names a process


@dataclass(frozen=True)
class Capabilities:
    """What this snapshot could see. A reader uses it to tell unknown from zero."""

    root: bool  # collected with CAP_SYS_ADMIN / euid 0
    pages: bool  # per-page state collected (--pages)
    pfn_visible: bool | None  # pagemap showed PFNs (None: pages not collected)
    kpageflags: bool | None  # /proc/kpageflags was readable and used
    kpagecount: bool | None  # /proc/kpagecount was readable and used
    pagemap_scan: bool | None  # the PAGEMAP_SCAN ioctl was used (False: plain pagemap reads)
    notes: tuple[str, ...] = ()  # human-readable notes: what is missing and why


@dataclass(frozen=True)
class PageRun:
    """``count`` consecutive pages from page index ``first`` (0 = the VMA's start) in ``state``."""

    first: int
    count: int
    state: str


@dataclass(frozen=True)
class PageCounts:
    present: int  # pages in the page tables (incl. the zero page; smaps Rss does not count it)
    swapped: int
    file: int  # present and file/shmem-backed (pagemap bit 61)
    anon: int  # present and anonymous (includes zero page)
    exclusive: int  # present and exclusively mapped (pagemap bit 56)
    dirty: int | None  # file pages with kpageflags DIRTY + present anon pages; None without kpageflags
    zero: int | None  # the shared zero page; None without PFNs + kpageflags
    thp: int | None  # pages that are part of a transparent huge page; None without kpageflags
    ksm: int | None  # KSM-merged pages; None without kpageflags
    shared: int | None  # present pages mapped more than once (kpagecount > 1); None without kpagecount


@dataclass(frozen=True)
class PageInfo:
    counts: PageCounts
    runs: tuple[PageRun, ...]  # cover the VMA exactly, in order
    shared_runs: tuple[tuple[int, int], ...] | None = None  # (first, count) of pages with kpagecount > 1


@dataclass(frozen=True)
class Vma:
    start: int
    end: int
    perms: str  # as in maps: "rw-p"
    offset: int
    dev: str  # "fe:00"
    inode: int
    path: (
        str | None
    )  # None for plain anonymous memory; "[heap]", "[anon:name]", "/x (deleted)" kept as the kernel prints them
    kind: str  # one of VMA_KINDS
    flags: tuple[str, ...]  # VmFlags mnemonics, in kernel order
    smaps: Mapping[
        str, int
    ]  # snake_case field -> bytes (kB fields) or the raw number (THPeligible, ProtectionKey)
    pages: PageInfo | None = None  # only with --pages

    @property
    def size(self) -> int:
        return self.end - self.start

    def npages(self, page_size: int) -> int:
        return (self.end - self.start) // page_size

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end


@dataclass(frozen=True)
class Snapshot:
    taken_at: str  # ISO 8601 UTC, e.g. "2026-11-25T07:40:25.123456Z"
    host: HostInfo
    process: ProcessInfo
    capabilities: Capabilities
    totals: Mapping[str, int]  # smaps_rollup, same naming and units as Vma.smaps
    vmas: tuple[Vma, ...]  # address order
    schema: str = SNAPSHOT_SCHEMA

    def vma_at(self, address: int) -> Vma | None:
        """The VMA containing ``address`` (binary search), or None."""
        lo, hi = 0, len(self.vmas)
        while lo < hi:
            mid = (lo + hi) // 2
            v = self.vmas[mid]
            if address < v.start:
                hi = mid
            elif address >= v.end:
                lo = mid + 1
            else:
                return v
        return None


# --- page faults (perf_event_open sampling, or /proc counters as fallback) ---


@dataclass(frozen=True)
class FaultSample:
    time_ns: int  # perf clock
    pid: int
    tid: int
    ip: int  # instruction that faulted
    addr: int  # faulting data address
    major: bool
    symbol: str | None = None  # "func+0x12" once symbolized
    dso: str | None = None  # path of the ELF the IP lies in
    data_symbol: str | None = (
        None  # the object the faulting address lies in ("var+0x8"), when in an ELF's .data/.bss
    )


@dataclass(frozen=True)
class FaultTick:
    """Faults seen during one refresh window."""

    mode: str  # "perf" (sampled) or "counters" (/proc fallback)
    window_s: float
    minor: int  # sampled minor faults (perf) or counter delta
    major: int
    lost: int | None  # PERF_RECORD_LOST total in the window; None in counters mode
    by_vma: Mapping[int, tuple[int, int]] = field(
        default_factory=dict
    )  # VMA start -> (minor, major); perf only
    by_symbol: tuple[tuple[str, str, int], ...] = ()  # (symbol, dso, count), most first; perf only
    recent: tuple[FaultSample, ...] = ()  # newest last, bounded
    reason: str | None = None  # why counters mode, e.g. "perf_event_paranoid=3"
    by_thread: Mapping[int, tuple[int, int]] = field(
        default_factory=dict
    )  # tid -> (minor, major), both modes
    pages: tuple[
        int, ...
    ] = ()  # page-aligned addresses that faulted in the window (perf only, sorted, bounded)
    by_transition: tuple[
        tuple[str, str, int], ...
    ] = ()  # (state before, state after, pages) of faulted pages, between the previous and this tick's snapshots (both with pages); most first


@dataclass(frozen=True)
class Frame:
    """What a TUI source hands the app each tick."""

    snapshot: Snapshot
    faults: FaultTick | None = None
    gone: bool = False  # the process has exited; ``snapshot`` is the last one taken
    message: str | None = None  # e.g. why it is gone
