"""The snapshot model, ``vmainspect/snapshot@1``: what one look at a process's memory found.

Frozen msgspec ``Struct``s. Everything the collector produces, the JSON
contract carries and the TUI renders is one of these, and the classes *are*
the ``vmainspect/snapshot@1`` format: ``snapshot.io`` encodes and decodes
them with msgspec (validating every field against the constraints written
here) and ``scripts/gen_schemas.py`` derives the shipped JSON Schema from
them. ``None`` always means *unknown* (for example a kpageflags-derived count
without root), never zero.

Decisions:

- smaps fields are a ``Fields``: an immutable, hashable ``dict`` of
  snake_case name -> integer. The kernel adds fields over the years and a
  snapshot keeps those it does not know, so a Struct of the known fields
  would lose them; a dict subclass keeps C-speed ``get``/``[]`` for the many
  readers and msgspec encodes it as an object natively.
- Page runs are ``PageRun``: an ``array_like`` Struct, ``[first, count,
  state]`` in JSON. Building one is one C call (``PageRun(f, c, s)``, or
  ``runs_from_columns`` for whole arrays, ``tuple(map(PageRun, ...))`` in C),
  decoding them is msgspec's own C loop, and readers keep ``r.first``,
  ``r.count``, ``r.state``. Equal runs and equal ``PageInfo``s may be shared
  between VMAs (they are immutable). A columnar form (one array per field)
  would save the objects but needs an encode hook per VMA that rebuilds
  them anyway for JSON, so it does not pay.
- Structs that hold only numbers, strings and tuples are ``gc=False``: the
  collector makes 100k+ of them and none can be part of a cycle, so the
  cyclic collector need not scan them.
- Additive fields get defaults; where the format allows, they are omitted
  when default (``omit_defaults``), so older readers and the schema files
  already published still accept the output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Final, Literal, NoReturn

import msgspec
from msgspec import Meta, Struct, field

SNAPSHOT_SCHEMA = "vmainspect/snapshot@1"

# Page states used in page runs. Exactly one per page.
ABSENT: Final = "absent"  # not in the page tables (never touched, or dropped)
SWAPPED: Final = "swapped"  # swapped out (pagemap bit 62)
FILE: Final = "file"  # present, file/shmem-backed, clean or dirtiness unknown
FILE_DIRTY: Final = "file-dirty"  # present, file-backed, kpageflags DIRTY set (root only)
ANON: Final = "anon"  # present, anonymous (dirty by nature); includes the
# zero page when PFNs are hidden (cannot tell them apart)
ZERO: Final = "zero"  # the shared zero page (root only: needs the PFN)
PAGE_STATES = (ABSENT, SWAPPED, FILE, FILE_DIRTY, ANON, ZERO)
PageState = Literal["absent", "swapped", "file", "file-dirty", "anon", "zero"]

# VMA kinds, derived from perms, path, inode and flags.
KIND_HEAP: Final = "heap"
KIND_STACK: Final = "stack"
KIND_VDSO: Final = "vdso"
KIND_VVAR: Final = "vvar"
KIND_VSYSCALL: Final = "vsyscall"
KIND_FILE_PRIVATE: Final = "file-private"
KIND_FILE_SHARED: Final = "file-shared"
KIND_ANON_PRIVATE: Final = "anon-private"
KIND_ANON_SHARED: Final = "anon-shared"
KIND_GUARD: Final = "guard"  # no permissions at all (---p / ---s)
KIND_DELETED: Final = "deleted"  # file mapping whose file was unlinked
KIND_SHM: Final = "shm"  # SysV shared memory (/SYSV... path)
KIND_HUGETLB: Final = "hugetlb"  # hugetlbfs pages (VmFlags "ht"): not counted in Rss
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
    KIND_HUGETLB,
)
VmaKind = Literal[
    "heap",
    "stack",
    "vdso",
    "vvar",
    "vsyscall",
    "file-private",
    "file-shared",
    "anon-private",
    "anon-shared",
    "guard",
    "deleted",
    "shm",
    "hugetlb",
]

# --- value constraints (checked by the decoder, published in the schema) ---

U64_MAX = (1 << 64) - 1
Count = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
# msgspec checks bounds within int64 only: the upper bounds of these are
# published in the schema and checked after decoding (snapshot.io)
U64 = Annotated[int, Meta(ge=0, extra_json_schema={"maximum": U64_MAX})]
Address = Annotated[int, Meta(ge=0, extra_json_schema={"maximum": 1 << 64})]
Pid = Annotated[int, Meta(ge=0, le=1 << 31)]
UTC_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-]00:00)$"
UtcTime = Annotated[str, Meta(pattern=UTC_TIME_PATTERN, description="ISO 8601, UTC.")]

# smaps field names the kernel prints today, as snapshots name them
SMAPS_KEYS = frozenset(
    (
        "size",
        "kernel_page_size",
        "mmu_page_size",
        "rss",
        "pss",
        "pss_dirty",
        "pss_anon",
        "pss_file",
        "pss_shmem",
        "shared_clean",
        "shared_dirty",
        "private_clean",
        "private_dirty",
        "referenced",
        "anonymous",
        "ksm",
        "lazy_free",
        "anon_huge_pages",
        "shmem_huge_pages",
        "shmem_pmd_mapped",
        "file_pmd_mapped",
        "shared_hugetlb",
        "private_hugetlb",
        "swap",
        "swap_pss",
        "locked",
        "thp_eligible",
        "protection_key",
    )
)
FIELD_KEY_PATTERN = r"^[a-z0-9_]+$"
_KEY_RE = re.compile(r"[a-z0-9_]{1,128}\Z")


class Fields(dict[str, int]):
    """smaps-style fields: snake_case name -> bytes (kB fields) or the plain
    number (thp_eligible, protection_key). Immutable and hashable; fields a
    newer kernel adds are kept like the known ones."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("Fields are immutable (make a new one: Fields(old, key=value))")

    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (Fields, (dict(self),))

    def __copy__(self) -> Fields:
        return self

    def __deepcopy__(self, memo: object) -> Fields:
        return self

    def __repr__(self) -> str:
        return f"Fields({dict.__repr__(self)})"


def frozen_fields(m: Mapping[str, int]) -> Fields:
    """``m`` as Fields: as is when it already is; else its names checked
    (ValueError naming a bad one: the decoder adds the JSON path) and copied.
    The decoder has checked the values (non-negative integers)."""
    if type(m) is Fields:
        return m
    for k in m.keys() - SMAPS_KEYS:
        if type(k) is not str:
            raise TypeError(f"field names must be strings, got `{type(k).__name__}`")
        if not _KEY_RE.match(k):
            raise ValueError(f"field name {k[:60]!r} is not lower-case snake_case")
    return Fields(m)


# smaps-style fields as the format has them (Vma.smaps, Snapshot.totals): the
# decoder makes a dict (values checked in C), __post_init__ freezes it
FieldsMap = Annotated[
    Mapping[str, U64],
    Meta(
        description=(
            "smaps-style fields: lower-case snake_case name -> bytes (kB fields) or the plain number "
            "(thp_eligible, protection_key). Fields a newer kernel adds are kept."
        ),
        extra_json_schema={"propertyNames": {"pattern": FIELD_KEY_PATTERN, "maxLength": 128}},
    ),
]


class HostInfo(Struct, frozen=True, gc=False):
    kernel: Annotated[str, Meta(description="Kernel release (uname -r).")]
    page_size: Annotated[int, Meta(ge=512, le=1 << 30, description="Base page size in bytes.")]
    hostname: str = ""


class ProcessInfo(Struct, frozen=True, gc=False):
    pid: Pid
    ppid: Pid | None
    name: Annotated[str, Meta(description="comm, as in /proc/PID/stat.")]
    cmdline: tuple[str, ...]
    exe: Annotated[str | None, Meta(description="Target of /proc/PID/exe; null when it cannot be read.")]
    user: Annotated[str | None, Meta(description="User name of the real uid (or the uid as a string).")]
    uid: Annotated[int, Meta(ge=0, le=(1 << 32) - 1)] | None
    state: Annotated[str, Meta(description="State letter from /proc/PID/stat (R, S, D, T, t, Z, ...).")]
    threads: Count
    minor_faults: Annotated[
        int, Meta(ge=0, description="minflt from /proc/PID/stat (this process, not its children).")
    ]
    major_faults: Annotated[int, Meta(ge=0, description="majflt from /proc/PID/stat.")]
    create_time: (
        Annotated[
            float,
            Meta(
                ge=0,
                description="Start time, seconds since the epoch; (pid, create_time) identifies a process.",
            ),
        ]
        | None
    )


class Capabilities(Struct, frozen=True, gc=False):
    """What this snapshot could see. A reader uses it to tell unknown from zero."""

    root: bool  # collected with CAP_SYS_ADMIN / euid 0
    pages: Annotated[bool, Meta(description="Per-page state was collected (--pages).")]
    pfn_visible: bool | None  # pagemap showed PFNs (None: pages not collected)
    kpageflags: bool | None  # /proc/kpageflags was readable and used
    kpagecount: bool | None  # /proc/kpagecount was readable and used
    pagemap_scan: bool | None  # the PAGEMAP_SCAN ioctl was used (False: plain pagemap reads)
    notes: tuple[str, ...] = ()  # human-readable notes: what is missing and why


class PageRun(Struct, frozen=True, array_like=True, gc=False, forbid_unknown_fields=True):
    """``count`` consecutive pages from page index ``first`` (0 = the VMA's start) in ``state``."""

    first: Count
    count: Positive
    state: PageState


def runs_from_columns(
    firsts: Iterable[int], counts: Iterable[int], codes: Iterable[int]
) -> tuple[PageRun, ...]:
    """Page runs from parallel columns (state as an index into PAGE_STATES), built in C."""
    states: Iterable[Any] = map(PAGE_STATES.__getitem__, codes)
    return tuple(map(PageRun, firsts, counts, states))


class PageCounts(Struct, frozen=True, gc=False):
    present: Count  # pages in the page tables (incl. the zero page; smaps Rss does not count it)
    swapped: Count
    file: Count  # present and file/shmem-backed (pagemap bit 61)
    anon: Count  # present and anonymous (includes zero page)
    exclusive: Count  # present and exclusively mapped (pagemap bit 56)
    dirty: Count | None  # file pages with kpageflags DIRTY + present anon pages; None without kpageflags
    zero: Count | None  # the shared zero page; None without PFNs + kpageflags
    thp: Count | None  # pages that are part of a transparent huge page; None without kpageflags
    ksm: Count | None  # KSM-merged pages; None without kpageflags
    shared: Count | None  # present pages mapped more than once (kpagecount > 1); None without kpagecount


class PageInfo(Struct, frozen=True, gc=False):
    """Per-page state (only with --pages)."""

    counts: PageCounts
    runs: Annotated[
        tuple[PageRun, ...],
        Meta(description="[first_page_index, page_count, state], in order, covering the VMA exactly."),
    ]
    shared_runs: Annotated[
        tuple[tuple[Count, Positive], ...] | None,
        Meta(
            description=(
                "[first_page_index, page_count] of pages mapped more than once (kpagecount > 1); "
                "null without kpagecount."
            )
        ),
    ] = None


class Vma(Struct, frozen=True, gc=False, omit_defaults=True):
    start: Address
    end: Address
    perms: Annotated[str, Meta(pattern=r"^[r-][w-][x-][psS-]$")]  # as in maps: "rw-p"
    offset: Annotated[U64, Meta(description="File offset in bytes.")]
    dev: Annotated[
        str, Meta(pattern=r"^[0-9a-f]{1,8}:[0-9a-f]{1,8}$", description="major:minor in hex, as in maps.")
    ]
    inode: U64
    # None for plain anonymous memory; "[heap]", "[anon:name]", "/x (deleted)" kept as the kernel prints them
    path: Annotated[
        str | None,
        Meta(
            description=(
                "As the kernel prints it ([heap], [anon:name], '/x (deleted)', /SYSV...); "
                "null for plain anonymous memory."
            )
        ),
    ]
    kind: VmaKind  # one of VMA_KINDS
    flags: Annotated[tuple[str, ...], Meta(description="VmFlags mnemonics in kernel order.")]
    smaps: FieldsMap  # snake_case field -> bytes (kB fields) or the raw number (THPeligible, ProtectionKey)
    pages: PageInfo | None = None  # only with --pages

    def __post_init__(self) -> None:
        if type(self.smaps) is not Fields:  # decoded, or a plain dict from a caller: freeze it
            msgspec.structs.force_setattr(self, "smaps", frozen_fields(self.smaps))

    @property
    def size(self) -> int:
        return self.end - self.start

    def npages(self, page_size: int) -> int:
        return (self.end - self.start) // page_size

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end


class PageCache(Struct, frozen=True, gc=False):
    """Pages of a file (or of the part a process maps) in each page-cache state, from
    cachestat(2); null: unknown (the reason is in the snapshot's notes)."""

    cached: Count | None  # in the page cache
    dirty: Count | None  # cached and written, not yet on disk
    writeback: Count | None  # being written to disk now
    evicted: Count | None  # were cached, evicted since
    recently_evicted: Count | None  # evicted recently enough that a re-read counts as thrashing


class MappedFile(Struct, frozen=True, gc=False, omit_defaults=True):
    """A regular file the process maps (one entry per device and inode)."""

    path: Annotated[str, Meta(description="As maps prints it for the first VMA that maps the file.")]
    dev: Annotated[
        str, Meta(pattern=r"^[0-9a-f]{1,8}:[0-9a-f]{1,8}$", description="major:minor in hex, as in maps.")
    ]
    inode: U64
    size: Annotated[Count | None, Meta(description="Bytes; null when the file could not be opened.")]
    vmas: Annotated[int, Meta(ge=1, description="VMAs that map the file.")]
    mapped_pages: Annotated[int, Meta(ge=0, description="Pages of the file the VMAs map (ranges merged).")]
    page_cache: Annotated[PageCache, Meta(description="The whole file.")]
    mapped_page_cache: Annotated[PageCache, Meta(description="Only the ranges the process maps.")]
    unknown: Annotated[str | None, Meta(description="Why the page-cache counts are null.")] = None


class Snapshot(Struct, frozen=True, gc=False, omit_defaults=True, tag_field="schema", tag=SNAPSHOT_SCHEMA):
    """One look at a process: ``vmainspect/snapshot@1``. The ``schema`` key is
    the msgspec tag: written first, required and checked when read."""

    schema: ClassVar[str] = SNAPSHOT_SCHEMA

    taken_at: Annotated[
        str, Meta(pattern=UTC_TIME_PATTERN, description="When the snapshot was taken: ISO 8601, UTC.")
    ]
    host: HostInfo
    process: ProcessInfo
    capabilities: Annotated[
        Capabilities, Meta(description="What the collector could see; tells unknown (null) from zero.")
    ]
    totals: FieldsMap  # smaps_rollup, same naming and units as Vma.smaps
    vmas: tuple[Vma, ...]  # address order
    files: Annotated[
        tuple[MappedFile, ...],
        Meta(description="Page-cache state of each regular file mapped (absent: not collected)."),
    ] = ()

    def __post_init__(self) -> None:
        if type(self.totals) is not Fields:
            msgspec.structs.force_setattr(self, "totals", frozen_fields(self.totals))

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


replace = msgspec.structs.replace  # a copy with some fields changed (frozen Structs)


# --- page faults (perf_event_open sampling, or /proc counters as fallback) ---


class FaultSample(Struct, frozen=True, gc=False):
    time_ns: int  # perf clock
    pid: int
    tid: int
    ip: int  # instruction that faulted
    addr: int  # faulting data address
    major: bool
    symbol: str | None = None  # "func+0x12" once symbolized
    dso: str | None = None  # path of the ELF the IP lies in
    data_symbol: str | None = (
        None  # the object the faulting address lies in ("var+0x8"), in an ELF's .data/.bss
    )


class FaultTick(Struct, frozen=True):
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
    # page-aligned addresses that faulted in the window (perf only, sorted, bounded)
    pages: tuple[int, ...] = ()
    # (state before, state after, pages) of faulted pages, between the previous and this tick's
    # snapshots (both with pages); most first
    by_transition: tuple[tuple[str, str, int], ...] = ()
    # (start, end, perms, kind, path, minor, major) per mapping identity (start, kind, path), most first:
    # each fault in the mapping it hit when it happened (perf only; end: the largest extent seen)
    by_mapping: tuple[tuple[int, int, str, str, str | None, int, int], ...] = ()
    unattributed: int | None = None  # sampled faults in no mapping any source saw (perf only)
    unsampled: int | None = None  # faults the kernel counted that no event saw (perf only; None: unknown)
    # the sample period of the window when the sampler had a rate cap (faults.cap): above 1, minor
    # and major are still exact (the events' counts) but by_vma, by_symbol, by_thread, by_mapping
    # and unattributed are estimates (samples x period), and pages lists the sampled pages only.
    # 1: every fault sampled, or an uncapped sampler's raw samples (``faults --period N``)
    period: int = 1
