"""What one ``FaultSampler.tick()`` returns (``sampler.TickResult``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import VmaInspectError
from ..model import FaultTick, Snapshot


@dataclass(frozen=True)
class TickResult:
    """Everything one ``FaultSampler.tick()`` has to say."""

    faults: FaultTick  # what is shown and recorded
    snapshot: Snapshot | None  # the snapshot the faults were attributed to (a refreshed one if refresh ran)
    unattributed: int = 0  # sampled faults outside that snapshot's VMAs (perf only)
    by_symbol_split: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # (symbol, dso) -> (minor, major) of faulting data in ELF .data/.bss/.rodata
    by_data_symbol_split: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    ended: str | None = None  # why the process is gone (exited, zombie, PID reused); None while it runs
    refresh_error: VmaInspectError | None = (
        None  # refresh() failed: the faults were attributed to the old snapshot
    )
