"""faults: Ctrl+C (or SIGTERM) that comes during a tick ends the run after the tick, never inside it.

A KeyboardInterrupt raised inside ``session.step()`` dropped the window being drained: the report
missed its samples (the system test of ``faults --max-fault-rate 0`` saw 45k samples where the
events had counted 635k). Here the signal is sent from inside a fake session's step.
"""

from __future__ import annotations

import argparse
import os
import signal
from types import SimpleNamespace

import pytest

from vmainspect.commands import faults


class _Session:
    """step() is interrupted by a real signal to this process, then returns its window."""

    def __init__(self, sig: int) -> None:
        self.sig = sig
        self.steps = 0

    def step(self) -> SimpleNamespace:
        self.steps += 1
        os.kill(os.getpid(), self.sig)  # delivered to the main thread: the handler runs here
        return SimpleNamespace(faults=f"window {self.steps}", ended=None)


class _Result:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add(self, result: str) -> None:
        self.added.append(result)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_tick_keeps_the_tick(monkeypatch, sig):
    monkeypatch.setattr(faults.time, "sleep", lambda _s: None)  # no waiting between ticks
    stop = faults._StopRequest()
    old = signal.signal(sig, stop)
    try:
        session, res = _Session(sig), _Result()
        args = argparse.Namespace(duration=None)
        _elapsed, interrupted, ended = faults._sample(args, session, res, stop)  # type: ignore[arg-type]
    finally:
        signal.signal(sig, old)
    assert interrupted and ended is None
    # the window of the interrupted tick was counted, and no tick came after it
    assert session.steps == 1 and res.added == ["window 1"]


def test_a_signal_during_the_sleep_interrupts_it(monkeypatch):
    stop = faults._StopRequest()

    def sleep(_s: float) -> None:
        stop(signal.SIGINT, None)  # as if the signal came while sleeping

    monkeypatch.setattr(faults.time, "sleep", sleep)
    session, res = _Session(0), _Result()
    _elapsed, interrupted, _ended = faults._sample(argparse.Namespace(duration=None), session, res, stop)  # type: ignore[arg-type]
    assert interrupted and session.steps == 0 and res.added == []
