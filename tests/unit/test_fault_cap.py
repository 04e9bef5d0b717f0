"""The sample-period arithmetic of the fault-rate cap (faults.cap.next_period)."""

from __future__ import annotations

import pytest

from vmainspect.faults.cap import MAX_PERIOD, next_period, scaled_pairs


def test_under_the_cap_nothing_changes():
    assert next_period(1, 1, 19_999, 20_000) == 1
    assert next_period(1, 1, 20_000, 20_000) == 1  # at the cap exactly: not over it
    assert next_period(8, 1, 8 * 10_000, 20_000) == 8  # 10,000 samples/s: between a quarter and the cap


def test_over_the_cap_the_smallest_power_of_two_that_fits():
    # 850,000 faults/s under a 20,000 cap: 850k/32 = 26.6k is over, 850k/64 = 13.3k is under
    assert next_period(1, 1, 850_000, 20_000) == 64
    assert next_period(1, 1, 20_001, 20_000) == 2
    # from a raised period, upwards again
    assert next_period(4, 1, 850_000, 20_000) == 64
    # the base period (faults --period 3 with a cap) is kept as the unit
    assert next_period(3, 3, 850_000, 20_000) == 48  # 3 x 16: 850k/48 = 17.7k


def test_back_down_only_under_a_quarter_and_to_half_the_cap():
    # 64 at 850k/s, then the rate falls to 200k/s: 3,125 samples/s < 5,000 (a quarter):
    # the smallest period keeping it under 10,000 (half the cap) is 32 (6,250/s)
    assert next_period(64, 1, 200_000, 20_000) == 32
    # 400k/s at 64 is 6,250 samples/s: above a quarter, kept (no flapping near the cap)
    assert next_period(64, 1, 400_000, 20_000) == 64
    # nothing faults: straight back to the base period
    assert next_period(64, 1, 0, 20_000) == 1
    assert next_period(48, 3, 0, 20_000) == 3


def test_every_result_is_the_base_times_a_power_of_two_and_under_the_cap():
    for base in (1, 3, 8):
        for cap in (1, 500, 20_000):
            p = base
            for rate in (0, 10, 1e3, 1e5, 9e5, 3e7, 1e5, 10, 0):
                q = next_period(p, base, rate, cap)
                k = q // base
                assert q % base == 0 and k & (k - 1) == 0
                assert rate / q <= cap or q >= MAX_PERIOD
                p = q


def test_bad_arguments():
    with pytest.raises(ValueError):
        next_period(1, 1, 10, 0)
    with pytest.raises(ValueError):
        next_period(1, 2, 10, 5)


def test_scaling_pairs():
    assert scaled_pairs({1: (2, 3)}, 1) == {1: (2, 3)}
    assert scaled_pairs({1: (2, 3), 9: (0, 1)}, 64) == {1: (128, 192), 9: (0, 64)}


def test_the_period_is_recorded_and_old_frames_read_as_one():
    import msgspec

    from vmainspect.model import FaultTick
    from vmainspect.recording.writer import fault_tick_from_dict, fault_tick_record, fault_tick_to_dict

    tick = FaultTick("perf", 1.0, 850_000, 0, 0, by_vma={4096: (849_984, 0)}, period=64)
    rec = fault_tick_record(tick)
    assert rec.period == 64
    assert fault_tick_from_dict(msgspec.json.decode(msgspec.json.encode(rec))).period == 64
    old = fault_tick_to_dict(FaultTick("perf", 1.0, 5, 0, 0))
    assert "period" not in old  # period 1 is not written: recordings from before read the same
    assert fault_tick_from_dict(old).period == 1


def test_serve_passes_max_fault_rate_on_as_text_attach_parses():
    """``serve attach PID --max-fault-rate 0`` hands the served attach "--max-fault-rate 0"."""
    from vmainspect.commands.serve import _options_without, _sub_parser

    p = _sub_parser("attach")
    for given in ("0", "500"):
        opts = p.parse_args(["1", "--max-fault-rate", given])
        argv = _options_without(p, opts, drop={"name", "pid", "save_dir"})
        assert argv == ["--max-fault-rate", given]
        assert p.parse_args(["1", *argv]).max_fault_rate == int(given)
    assert _options_without(p, p.parse_args(["1"]), drop={"pid"}) == []  # the default: nothing passed
