"""perf_event_open page-fault sampling through ctypes: events, ring buffers, records.

A *ring* is one mapped buffer: either one thread on every CPU (a per-task
event, ``cpu=-1``; the kernel refuses ``inherit`` on those), or one CPU for
several threads and every thread they create (per-CPU events with
``inherit_thread``; docs/kernel-notes.md, "Following every thread"). Each
thread has two software events in it:

- ``PERF_COUNT_SW_PAGE_FAULTS_MIN`` and ``PERF_COUNT_SW_PAGE_FAULTS_MAJ``. The
  kernel emits them from ``mm_account_fault()`` right where it increments the
  thread's ``min_flt``/``maj_flt`` (the numbers in /proc/PID/stat), so sampled
  faults can be compared with the kernel's own counters. (The generic
  ``PERF_COUNT_SW_PAGE_FAULTS`` that ``perf record -e page-faults`` uses fires
  earlier, in the arch fault handler, also for retried and failed faults, and
  cannot tell major from minor.) Faults the kernel takes on behalf of GUP
  (``regs == NULL``: /proc/PID/mem, O_DIRECT, process_vm_readv) count in
  /proc but emit no perf event.
- The major event writes into the minor event's ring (PERF_EVENT_IOC_SET_OUTPUT);
  ``PERF_SAMPLE_IDENTIFIER`` tells the two apart.

Every sample has the same layout (sample_type is fixed)::

    u64 header (u32 type, u16 misc, u16 size)   type 9 = PERF_RECORD_SAMPLE, size 48
    u64 id      PERF_SAMPLE_IDENTIFIER
    u64 ip      PERF_SAMPLE_IP
    u32 pid, u32 tid                            PERF_SAMPLE_TID
    u64 time    PERF_SAMPLE_TIME (CLOCK_MONOTONIC when the kernel accepts use_clockid)
    u64 addr    PERF_SAMPLE_ADDR (the faulting data address)

so a run of samples is decoded with ``memoryview.cast('Q')`` and strided
slices, in C, without a per-record Python loop; other records (LOST, THROTTLE)
are walked one by one.

Kernel-mode faults (``copy_to_user`` in read(2) writing into fresh pages) are
sampled with the kernel IP where the kernel allows it (``exclude_kernel=0``
needs root or kernel.perf_event_paranoid <= 1); otherwise the events are opened
with ``exclude_kernel=1``, those faults are not sampled, and ``Ring.exclude_kernel``
says so.

Memory ordering: ``data_head`` is read with one aligned 8-byte load before the
data is copied, and ``data_tail`` written with one aligned store after; on
x86-64 (TSO) loads are not reordered with loads nor stores with earlier loads,
which is the ordering the kernel's perf_event.h asks for (rmb after head, mb
before tail). Other architectures would need explicit barriers, so the sampler
enables perf sampling on x86-64 only (docs/kernel-notes.md, "The perf ring
buffer's memory ordering").

With ``track_mmaps`` the minor events also carry PERF_RECORD_MMAP2 records
(``mmap_data`` + ``mmap2`` + ``sample_id_all``), parsed by ``parse_mmap2``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import platform
import struct
from dataclasses import dataclass

PAGE = mmap.PAGESIZE

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_PAGE_FAULTS = 2
PERF_COUNT_SW_PAGE_FAULTS_MIN = 5
PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6

PERF_SAMPLE_IP = 1 << 0
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_ADDR = 1 << 3
PERF_SAMPLE_IDENTIFIER = 1 << 16
SAMPLE_TYPE = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
PERF_RECORD_MMAP2 = 10
PERF_RECORD_MISC_MMAP_BUILD_ID = 1 << 14
SAMPLE_SIZE = 48  # bytes per sample record with SAMPLE_TYPE
SAMPLE_WORDS = SAMPLE_SIZE // 8

# attr.flags bits
_DISABLED = 1 << 0
_INHERIT = 1 << 1
_EXCLUDE_KERNEL = 1 << 5
_EXCLUDE_HV = 1 << 6
_WATERMARK = 1 << 14
_MMAP_DATA = 1 << 17  # report data (non-exec) mmaps too
_SAMPLE_ID_ALL = 1 << 18  # non-sample records carry pid/tid, time and id
_MMAP2 = 1 << 23  # as PERF_RECORD_MMAP2 (device, inode, prot, flags)
_USE_CLOCKID = 1 << 25
_INHERIT_THREAD = 1 << 35  # inherit to new threads only, not to forked processes (Linux 5.13)

CLOCK_MONOTONIC = 1
ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7 (Linux 5.12+; older kernels accept a larger attr whose tail is zero)

PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_OUTPUT = 0x2405
PERF_EVENT_IOC_PERIOD = 0x40082404  # _IOW('$', 4, __u64): a new sample_period
PERF_EVENT_IOC_ID = 0x80082407

# perf_event_mmap_page offsets
_DATA_HEAD = 1024
_DATA_TAIL = 1032
_DATA_OFFSET = 1040
_DATA_SIZE = 1048

_SYSCALL_NR = {
    "x86_64": 298,
    "aarch64": 241,
    "i686": 336,
    "i386": 336,
    "ppc64le": 319,
    "s390x": 331,
    "riscv64": 241,
    "armv7l": 364,
    "loongarch64": 241,
}

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
# the ring is mapped with libc's mmap, not Python's mmap module, which dup()s the fd:
# a third descriptor per thread would run into RLIMIT_NOFILE on processes with many threads
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_munmap = _libc.munmap
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value


def name_this_thread(name: str) -> None:
    """Set the calling thread's name as /proc shows it (``comm``, 15 bytes; PR_SET_NAME)."""
    _libc.prctl(15, name.encode()[:15], 0, 0, 0)


class PerfError(OSError):
    """perf_event_open or its mmap failed; ``errno`` says why."""


def _attr(
    config: int,
    period: int,
    *,
    exclude_kernel: bool,
    clockid: bool,
    watermark: int,
    size: int = ATTR_SIZE,
    inherit: bool = False,
    mmaps: bool = False,
) -> ctypes.Array[ctypes.c_char]:
    flags = _DISABLED | _EXCLUDE_HV
    if inherit:
        flags |= _INHERIT | _INHERIT_THREAD
    if mmaps:
        flags |= _MMAP_DATA | _MMAP2 | _SAMPLE_ID_ALL
    if exclude_kernel:
        flags |= _EXCLUDE_KERNEL
    if watermark:
        flags |= _WATERMARK
    if clockid:
        flags |= _USE_CLOCKID
    buf = ctypes.create_string_buffer(size)
    struct.pack_into(
        "<IIQQQQQI", buf, 0, PERF_TYPE_SOFTWARE, size, config, period, SAMPLE_TYPE, 0, flags, watermark
    )
    if clockid:
        struct.pack_into("<i", buf, 92, CLOCK_MONOTONIC)
    return buf


def perf_event_open(
    attr: ctypes.Array[ctypes.c_char], pid: int, cpu: int = -1, group_fd: int = -1, flags: int = 0
) -> int:
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise PerfError(errno.ENOSYS, f"perf_event_open: unknown syscall number on {platform.machine()}")
    fd = _syscall(
        ctypes.c_long(nr),
        attr,
        ctypes.c_int(pid),
        ctypes.c_int(cpu),
        ctypes.c_int(group_fd),
        ctypes.c_ulong(flags | 8),
    )  # 8 = PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        e = ctypes.get_errno()
        raise PerfError(e, f"perf_event_open: {os.strerror(e)}")
    return int(fd)


def _event_id(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, PERF_EVENT_IOC_ID, buf)
    return int(struct.unpack("<Q", buf)[0])


class Ring:
    """One ring buffer and the minor and major page-fault events that write into it.

    ``Ring(tid)`` follows one thread on every CPU (``cpu=-1``). ``Ring(tid, cpu=c,
    inherit=True)`` follows the thread on CPU ``c`` only, and every thread it
    creates from then on (``inherit``, ``inherit_thread``: new threads carry the
    event from their first instruction); ``add(tid)`` puts another existing
    thread's events for that CPU into the same ring. With ``track_mmaps`` the
    minor events also report every mmap (and brk growth) of the process as
    PERF_RECORD_MMAP2 records, timestamped like the samples.
    """

    def __init__(
        self,
        tid: int,
        *,
        cpu: int = -1,
        period: int = 1,
        ring_bytes: int = 1 << 20,
        exclude_kernel: bool = False,
        clockid: bool = True,
        inherit: bool = False,
        track_mmaps: bool = False,
    ) -> None:
        self.tid = tid
        self.cpu = cpu
        self.period = period
        self.exclude_kernel = exclude_kernel
        self.clockid = clockid
        self.inherit = inherit
        self.track_mmaps = track_mmaps
        self.fd_min = self.fd_maj = -1
        self.extra: list[int] = []  # min/maj fds of threads added with add()
        self.maj_ids: set[int] = set()
        self.base: int | None = None  # address of the mapped perf_event_mmap_page + data
        self.map_size = 0
        self.enabled = False
        npages = max(1, ring_bytes // PAGE)
        npages = 1 << (npages.bit_length() - 1)  # a power of two
        try:
            self.fd_min = self._open(tid, PERF_COUNT_SW_PAGE_FAULTS_MIN, npages * PAGE // 4)
            npages = self._map(npages)
            self.fd_maj = self._open(tid, PERF_COUNT_SW_PAGE_FAULTS_MAJ, 0)
            fcntl.ioctl(self.fd_maj, PERF_EVENT_IOC_SET_OUTPUT, self.fd_min)
            self.id_min = _event_id(self.fd_min)
            self.id_maj = _event_id(self.fd_maj)
            self.maj_ids.add(self.id_maj)
        except BaseException:
            self.close()
            raise
        self._attach(npages)

    def _attach(self, npages: int) -> None:
        base = self.base
        assert base is not None
        self._head = ctypes.c_uint64.from_address(base + _DATA_HEAD)  # aligned 8-byte loads/stores
        self._tail = ctypes.c_uint64.from_address(base + _DATA_TAIL)
        self.data_offset = ctypes.c_uint64.from_address(base + _DATA_OFFSET).value or PAGE
        self.data_size = ctypes.c_uint64.from_address(base + _DATA_SIZE).value or npages * PAGE
        self.tail = self._tail.value

    def _open(self, tid: int, config: int, watermark: int) -> int:
        attr = _attr(
            config,
            self.period,
            exclude_kernel=self.exclude_kernel,
            clockid=self.clockid,
            watermark=watermark,
            inherit=self.inherit,
            mmaps=self.track_mmaps and config == PERF_COUNT_SW_PAGE_FAULTS_MIN,
        )
        try:
            return perf_event_open(attr, tid, self.cpu)
        except PerfError as e:
            if e.errno == errno.EINVAL and self.clockid:  # use_clockid: Linux 4.1+
                self.clockid = False
                return self._open(tid, config, watermark)
            raise

    def add(self, tid: int) -> None:
        """Another thread's events on this ring's CPU, writing into this ring."""
        fds = []
        try:
            for config in (PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ):
                fd = self._open(tid, config, 0)
                fds.append(fd)
                fcntl.ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, self.fd_min)
            self.maj_ids.add(_event_id(fds[1]))
            if self.enabled:
                for fd in fds:
                    fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self.extra.extend(fds)

    def _map(self, npages: int) -> int:
        """Map 1 + npages pages of the ring (halving on the unprivileged mlock limit); returns npages."""
        while True:
            size = (1 + npages) * PAGE
            addr = _mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, self.fd_min, 0)
            if addr is not None and addr != _MAP_FAILED:
                self.base, self.map_size = addr, size
                return npages
            e = ctypes.get_errno()
            # unprivileged users share kernel.perf_event_mlock_kb (516 KiB by default)
            if e in (errno.EPERM, errno.ENOMEM) and npages > 1:
                npages //= 2
                continue
            raise PerfError(e, f"mmap of the perf ring: {os.strerror(e)}")

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.fd_min, self.fd_maj, *self.extra)

    def enable(self) -> None:
        self.enabled = True
        for fd in self.fds:
            fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)

    def disable(self) -> None:
        for fd in self.fds:
            if fd >= 0:
                try:
                    fcntl.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
                except OSError:
                    pass

    def counts(self) -> tuple[int, int]:
        """The events' own counts (minor, major) since enabled: every fault, sampled or lost
        (inherited events include the threads that inherited them, live or exited)."""
        out = [0, 0]
        for k, fd in enumerate(self.fds):
            if fd < 0:
                continue
            try:
                out[k % 2] += struct.unpack("<Q", os.read(fd, 8))[0]
            except OSError:
                pass
        return out[0], out[1]

    def drain(self) -> bytes:
        """Copy out every complete record written since the last drain and free the space."""
        if self.base is None:
            return b""
        head = self._head.value
        tail = self.tail
        if head == tail:
            return b""
        size = self.data_size
        start = self.base + self.data_offset
        a = tail % size
        n = head - tail
        if a + n <= size:
            data = ctypes.string_at(start + a, n)
        else:
            data = ctypes.string_at(start + a, size - a) + ctypes.string_at(start, a + n - size)
        self.tail = head
        self._tail.value = head
        return data

    def close(self) -> None:
        self.disable()
        if self.base is not None:
            base, self.base = self.base, None
            if self.map_size:
                _munmap(base, self.map_size)
        extra, self.extra = self.extra, []
        for fd in extra:
            try:
                os.close(fd)
            except OSError:
                pass
        for name in ("fd_maj", "fd_min"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)  # before close: another thread's disable() must not hit a reused fd
                try:
                    os.close(fd)
                except OSError:
                    pass


def _sample_header(misc: int) -> int:
    return PERF_RECORD_SAMPLE | (misc << 32) | (SAMPLE_SIZE << 48)


# the cpumode values a sample header can carry in misc (kernel, user, hypervisor, guest...)
SAMPLE_HEADERS = frozenset(_sample_header(m) for m in range(8))


@dataclass(frozen=True)
class MmapRecord:
    """A PERF_RECORD_MMAP2: the kernel made (or grew, for brk) the mapping [addr, addr + length)."""

    time: int  # the samples' clock
    pid: int
    addr: int
    length: int
    pgoff: int
    dev: tuple[int, int]  # (major, minor); (0, 0) for anonymous memory
    inode: int
    prot: int  # PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4
    flags: int  # MAP_SHARED 1, MAP_PRIVATE 2, ...
    filename: str  # "[heap]", "[stack]", "//anon", "/dev/zero", a path...

    @property
    def end(self) -> int:
        return self.addr + self.length


def parse_mmap2(data: bytes, pos: int, size: int) -> MmapRecord | None:
    """The MMAP2 record of ``size`` bytes at ``pos`` (with the sample_id trailer of SAMPLE_TYPE)."""
    if size < 72 + 8 + 24:
        return None
    pid, _tid, addr, length, pgoff, dmaj, dmin, ino = struct.unpack_from("<IIQQQIIQ", data, pos + 8)
    misc = struct.unpack_from("<H", data, pos + 4)[0]
    prot, flags = struct.unpack_from("<II", data, pos + 64)
    name = data[pos + 72 : pos + size - 24].split(b"\0", 1)[0]
    time = struct.unpack_from("<Q", data, pos + size - 16)[0]
    if misc & PERF_RECORD_MISC_MMAP_BUILD_ID:  # a build-id in place of device and inode
        dmaj = dmin = ino = 0
    return MmapRecord(
        time,
        pid,
        addr,
        length,
        pgoff,
        (dmaj, dmin),
        ino,
        prot,
        flags,
        name.decode("utf-8", "surrogateescape"),
    )


def split_records(data: bytes, mmaps: list[MmapRecord] | None = None) -> tuple[list[memoryview], int, int]:
    """Split drained ring data into runs of sample records, counting losses.

    Returns (runs, lost, other): ``runs`` are memoryviews cast to 'Q', each a
    whole number of 6-word samples; ``lost`` sums PERF_RECORD_LOST counts;
    ``other`` counts records that were neither (throttling and the like).
    PERF_RECORD_MMAP2 records are appended to ``mmaps`` when it is given
    (else counted in ``other``). Truncated or malformed data stops the walk
    (nothing is invented).
    """
    mv = memoryview(data)
    n = len(data)
    runs: list[memoryview] = []
    lost = other = 0
    pos = 0
    ok = SAMPLE_HEADERS
    while pos + 8 <= n:
        m = (n - pos) // SAMPLE_SIZE
        if m:
            q = mv[pos : pos + m * SAMPLE_SIZE].cast("Q")
            heads = q[0::SAMPLE_WORDS]
            if ok.issuperset(heads):
                runs.append(q)
                pos += m * SAMPLE_SIZE
                continue
            k = 0
            for h in heads:
                if h not in ok:
                    break
                k += 1
            if k:
                runs.append(q[: k * SAMPLE_WORDS])
                pos += k * SAMPLE_SIZE
        # a record that is not a sample (or a trailing partial one)
        typ, _misc, size = struct.unpack_from("<IHH", data, pos)
        if size < 8 or pos + size > n:
            break
        if typ == PERF_RECORD_LOST and size >= 24:
            lost += struct.unpack_from("<Q", data, pos + 16)[0]
        elif typ == PERF_RECORD_SAMPLE and size == SAMPLE_SIZE:
            runs.append(mv[pos : pos + SAMPLE_SIZE].cast("Q"))
        elif typ == PERF_RECORD_MMAP2 and mmaps is not None and (rec := parse_mmap2(data, pos, size)):
            mmaps.append(rec)
        else:
            other += 1
        pos += size
    return runs, lost, other


def unpack_samples(run: memoryview, last: int | None = None) -> list[tuple[int, int, int, int, int, int]]:
    """(id, ip, pid, tid, time, addr) for the samples of one run (the last ``last`` if given)."""
    b = run.tobytes() if last is None else run[-last * SAMPLE_WORDS :].tobytes() if last else b""
    return [(i, ip, pid, tid, t, a) for _h, i, ip, pid, tid, t, a in struct.iter_unpack("<QQQIIQQ", b)]
