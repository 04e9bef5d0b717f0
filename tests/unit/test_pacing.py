"""session.pacing: the lock budget's arithmetic, and LiveSession keeping the last
map while the budget holds a collect back (a fake clock, a fake collector; one short sleep,
in the test that waiting adds no lock time)."""

from __future__ import annotations

import math
import os
import time

import msgspec
import pytest

from vmainspect.procfs.locktime import LockTime
from vmainspect.session import LiveSession
from vmainspect.session.pacing import Pacer
from vmainspect.snapshot.collect import collect


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_next_collect_waits_lock_time_over_budget_from_the_last_start():
    clock = Clock(100.0)
    p = Pacer(0.01, clock)
    assert p.held() is None  # the first collect always happens
    with p.collecting() as spent:
        spent.add("smaps", 0.03)
        spent.add("smaps_rollup", 0.01)
        clock.t = 100.5  # the collect itself took 0.5 s: the wait counts from its start
    held = p.held()
    assert held is not None
    assert held.until == pytest.approx(104.0) and held.since == 100.0
    assert held.lock_s == pytest.approx(0.04) and held.reads == ("smaps", "smaps_rollup")
    assert held.wait(101.0) == pytest.approx(3.0) and held.age(101.0) == pytest.approx(1.0)
    clock.t = 103.999
    assert p.held() is not None
    clock.t = 104.0
    assert p.held() is None


def test_a_cheap_collect_is_never_held_back_at_one_hertz():
    clock = Clock(0.0)
    p = Pacer(0.01, clock)
    for tick in range(10):
        clock.t = float(tick)
        assert p.held() is None
        with p.collecting() as spent:
            spent.add("smaps", 0.004)  # 4 ms: the next may start 0.4 s later


def test_no_budget_and_a_full_budget_never_hold_back():
    for budget in (None, 1.0):
        clock = Clock(0.0)
        p = Pacer(budget, clock)
        with p.collecting() as spent:
            spent.add("smaps", 0.3)
            clock.t = 0.3  # a budget of 100%: due when the reads end, so always by the next tick
        assert p.held() is None


def test_a_collect_that_raises_still_counts():
    clock = Clock(10.0)
    p = Pacer(0.5, clock)
    with pytest.raises(RuntimeError), p.collecting() as spent:
        spent.add("smaps", 1.0)
        raise RuntimeError("gone")
    assert p.collects == 1 and p.next_at == pytest.approx(12.0)


@pytest.mark.parametrize("bad", [0.0, -0.01, 1.5, math.nan, math.inf])
def test_a_budget_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ValueError):
        Pacer(bad)


def test_lock_time_sums_per_read():
    t = LockTime()
    t.add("pagemap", 0.25)
    t.add("pagemap", 0.5)
    t.add("smaps", 1.0)
    assert t.by_read == {"pagemap": 0.75, "smaps": 1.0} and t.seconds == 1.75


def test_lock_time_counts_the_threads_cpu_time_not_waiting():
    """A read that waits (for the GIL, say) holds no lock: waiting adds (almost) nothing,
    work in the thread adds its CPU time."""
    t = LockTime()
    with t.measure("smaps"):
        time.sleep(0.2)
    slept = t.seconds
    with t.measure("pagemap"):
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
    assert slept < 0.05  # 0.2 s of wall time, a few microseconds of CPU
    assert t.by_read["pagemap"] >= 0.05


# --- LiveSession with a fake clock and collector ---------------------------------------


@pytest.fixture(scope="module")
def own_snapshot():
    return collect(os.getpid())  # a real snapshot of this process (the session checks its identity)


class FakeCollector:
    """Returns a new copy of ``snap`` per call and says its reads held the lock ``lock_s``."""

    def __init__(self, snap, lock_s: float) -> None:
        self.snap, self.lock_s, self.calls = snap, lock_s, 0

    def __call__(self, pid, *, lock_time: LockTime | None = None, **_kw):
        self.calls += 1
        if lock_time is not None:
            lock_time.add("smaps", self.lock_s)
        return msgspec.structs.replace(self.snap, taken_at=f"call {self.calls}")


def session(snap, lock_s: float, budget: float | None, clock: Clock) -> tuple[LiveSession, FakeCollector]:
    fake = FakeCollector(snap, lock_s)
    s = LiveSession(os.getpid(), faults=False, collector=fake, lock_budget=budget, clock=clock)
    return s, fake


def test_held_back_steps_keep_the_last_snapshot_until_the_budget_allows(own_snapshot):
    clock = Clock(0.0)
    s, fake = session(own_snapshot, 0.04, 0.01, clock)  # 40 ms under the lock: one collect per 4 s
    first = s.start()
    assert fake.calls == 1 and first.fresh and first.held is None
    for t in (1.0, 2.0, 3.0):
        clock.t = t
        step = s.step()
        assert not step.fresh and step.snapshot is first.snapshot and step.ended is None
        assert step.held is not None and step.held.until == pytest.approx(4.0)
        assert step.held.age(clock.t) == pytest.approx(t)
    assert fake.calls == 1 and s.held_steps == 3
    clock.t = 4.0
    step = s.step()
    assert step.fresh and step.held is None and fake.calls == 2 and step.snapshot is not first.snapshot
    clock.t = 5.0
    assert s.step().held is not None  # due again at 8.0
    s.close()


def test_force_collects_and_paces_the_next_from_it(own_snapshot):
    clock = Clock(0.0)
    s, fake = session(own_snapshot, 0.04, 0.01, clock)
    s.start()
    clock.t = 1.0
    assert s.step().held is not None
    step = s.step(force=True)  # the user asked ("r")
    assert step.fresh and fake.calls == 2
    clock.t = 4.5  # due at 1.0 + 4.0, not 0.0 + 4.0
    assert s.step().held is not None and fake.calls == 2
    clock.t = 5.0
    assert s.step().fresh and fake.calls == 3
    s.close()


def test_the_samplers_refresh_honours_the_budget(own_snapshot):
    clock = Clock(0.0)
    s, fake = session(own_snapshot, 0.04, 0.01, clock)
    s.start()
    clock.t = 2.0
    assert s._refresh() is None and fake.calls == 1  # held back: the sampler uses its mmap history
    clock.t = 4.0
    assert s._refresh() is not None and fake.calls == 2
    s.close()


def test_no_budget_collects_every_step(own_snapshot):
    clock = Clock(0.0)
    s, fake = session(own_snapshot, 10.0, None, clock)  # 10 s under the lock: no matter
    s.start()
    for _ in range(3):
        assert s.step().fresh
    assert fake.calls == 4 and s.held_steps == 0
    s.close()
