"""perf ring records: decoding runs of samples, LOST and other records, wrap-around."""

from __future__ import annotations

import ctypes
import struct

from vmainspect.faults import perf

SAMPLE = perf.PERF_RECORD_SAMPLE


def sample(ident=3, ip=0x401000, pid=10, tid=11, t=1000, addr=0x7F0000001000, misc=2) -> bytes:
    return struct.pack("<IHHQQIIQQ", SAMPLE, misc, 48, ident, ip, pid, tid, t, addr)


def lost(n: int, ident=3) -> bytes:
    return struct.pack("<IHHQQ", perf.PERF_RECORD_LOST, 0, 24, ident, n)


def throttle() -> bytes:
    # PERF_RECORD_THROTTLE: time, id, stream_id
    return struct.pack("<IHHQQQ", 5, 0, 32, 1, 3, 3)


def rows(runs):
    return [r for q in runs for r in perf.unpack_samples(q)]


def test_attr_layout():
    a = perf._attr(perf.PERF_COUNT_SW_PAGE_FAULTS_MIN, 7, exclude_kernel=True, clockid=True, watermark=4096)
    raw = bytes(a)
    assert len(raw) == perf.ATTR_SIZE
    typ, size, config, period, stype, rfmt, flags, wm = struct.unpack_from("<IIQQQQQI", raw)
    assert (typ, size, config, period) == (perf.PERF_TYPE_SOFTWARE, perf.ATTR_SIZE, 5, 7)
    assert stype == perf.SAMPLE_TYPE and rfmt == 0 and wm == 4096
    assert (
        flags & 1 and flags & (1 << 5) and flags & (1 << 14) and flags & (1 << 25)
    )  # disabled, exclude_kernel, watermark, use_clockid
    assert struct.unpack_from("<i", raw, 92)[0] == perf.CLOCK_MONOTONIC


def test_fast_path_all_samples():
    data = b"".join(sample(t=i, addr=0x1000 * i) for i in range(100))
    runs, nlost, other = perf.split_records(data)
    assert (nlost, other) == (0, 0) and len(runs) == 1
    r = rows(runs)
    assert len(r) == 100
    assert r[5] == (3, 0x401000, 10, 11, 5, 0x5000)


def test_lost_and_other_records_between_samples():
    data = sample(t=1) + sample(t=2) + lost(17) + sample(t=3) + throttle() + sample(t=4, misc=1) + lost(3)
    runs, nlost, other = perf.split_records(data)
    assert nlost == 20 and other == 1
    assert [r[4] for r in rows(runs)] == [1, 2, 3, 4]


def test_truncated_and_malformed_tails_stop_the_walk():
    good = sample(t=1) + sample(t=2)
    for bad in (
        good + sample()[:20],
        good + struct.pack("<IHH", 9, 0, 0),
        good + struct.pack("<IHH", 7, 0, 200),
    ):
        runs, _nlost, _other = perf.split_records(bad)
        assert [r[4] for r in rows(runs)] == [1, 2]
    assert perf.split_records(b"") == ([], 0, 0)


def test_unpack_last():
    data = b"".join(sample(t=i) for i in range(10))
    (q,), _, _ = perf.split_records(data)
    assert [r[4] for r in perf.unpack_samples(q, 3)] == [7, 8, 9]
    assert perf.unpack_samples(q, 0) == []


class FakeRing(perf.Ring):
    """A Ring over a ctypes buffer laid out like perf_event_mmap_page + data (no kernel)."""

    def __init__(self, size: int) -> None:
        self.buf = ctypes.create_string_buffer(perf.PAGE + size)
        struct.pack_into("<QQ", self.buf, 1040, perf.PAGE, size)
        self.base, self.map_size = ctypes.addressof(self.buf), 0  # 0: nothing to munmap
        self.fd_min = self.fd_maj = -1
        self.extra, self.maj_ids = [], set()
        self._attach(size // perf.PAGE)

    def write(self, payload: bytes) -> None:
        head = struct.unpack_from("<Q", self.buf, 1024)[0]
        for i, b in enumerate(payload):
            self.buf[perf.PAGE + (head + i) % self.data_size] = b
        struct.pack_into("<Q", self.buf, 1024, head + len(payload))

    def tail_word(self) -> int:
        return struct.unpack_from("<Q", self.buf, 1032)[0]


def test_drain_handles_wrap_around_and_frees_space():
    r = FakeRing(1024)
    first = b"".join(sample(t=i) for i in range(20))  # 960 bytes
    r.write(first)
    assert r.drain() == first
    assert r.tail_word() == 960  # data_tail advanced
    second = b"".join(sample(t=100 + i) for i in range(5))  # wraps past the end of the ring
    r.write(second)
    got = r.drain()
    assert got == second
    assert [x[4] for x in rows(perf.split_records(got)[0])] == [100, 101, 102, 103, 104]
    assert r.drain() == b""


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                sample(),
                sample(misc=1),
                lost(5),
                throttle(),
                b"\0" * 8,
                struct.pack("<IHH", 9, 2, 40),
                b"\xff" * 8,
            ]
        ),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=64),
)
def test_any_ring_bytes_never_crash(parts, cut):
    data = b"".join(parts)
    data = data[: len(data) - cut] if cut < len(data) else data
    runs, nlost, other = perf.split_records(data)
    assert nlost >= 0 and other >= 0
    for q in runs:
        assert len(q) % perf.SAMPLE_WORDS == 0
        for h in q[0 :: perf.SAMPLE_WORDS]:
            assert h in perf.SAMPLE_HEADERS
