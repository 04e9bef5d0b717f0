"""A step's evidence: the faults it caused, the page-state changes, the numbers of its verdict.

Built once per step from the snapshots taken just before and after it and
the fault sampler's window over the step (perf_event_open where allowed,
/proc counters otherwise), and kept with the step's result, so the lecture
can show it until the next step, and again when the lecturer steps back.

Transitions are counted page by page over the lesson's own regions (the
mappings the steps made), named as the lesson names them, between the
snapshots before and after the step, or the two a step names as the
moment it is about (``x["transitions"]``: e.g. just before and just after
munmap, when the step first had to make the mapping); faults per
mapping and per function come from the sampler, with libc's string
functions given the names a student knows (``memset``, not
``__memset_avx2_unaligned_erms``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec

from ..model import FaultTick, Snapshot, Vma, demo
from . import measure as m

MAX_NUMBERS = 10
MAX_ROWS = 6

_LIBC_NAMES = re.compile(r"^__(memset|memmove|memcpy|memcmp|strlen|read|write)\w*?(?:_\w+)?$")


@dataclass(frozen=True)
class Transition:
    mapping: str
    before: str
    after: str
    pages: int


@dataclass(frozen=True)
class MappingFaults:
    mapping: str
    minor: int
    major: int


@dataclass(frozen=True)
class FunctionFaults:
    function: str  # the name to show: "memset (libc)"
    symbol: str  # the symbol the sampler resolved: "__memset_avx2_unaligned_erms"
    faults: int


@dataclass(frozen=True)
class Evidence:
    minor: int  # the workload's minor faults during the step (/proc counters)
    major: int
    by_mapping: tuple[MappingFaults, ...] | None  # the lesson's mappings; None: not sampled (see faults_note)
    by_function: tuple[FunctionFaults, ...] | None  # libc and the workload's own code
    interpreter: int | None  # sampled faults of the Python interpreter itself (its heap, its code)
    faults_note: str | None
    transitions: tuple[Transition, ...]
    numbers: tuple[tuple[str, str], ...]  # (name, value) the verdict rests on
    table: tuple[tuple[str, ...], ...] = ()  # a step's own table (the crash matrix), header first
    zoom: tuple[int, int] | None = None  # (address, length) the page map shows
    dirty_file: str | None = None  # a file the step left dirty: the writeback clock watches it

    def record(self) -> demo.Evidence:
        """As it appears in ``vmainspect/demo@1`` (``model.demo.Evidence``)."""
        return demo.Evidence(
            faults=demo.StepFaults(
                minor=self.minor,
                major=self.major,
                by_mapping=None
                if self.by_mapping is None
                else tuple(demo.MappingFaults(f.mapping, f.minor, f.major) for f in self.by_mapping),
                by_function=None
                if self.by_function is None
                else tuple(demo.FunctionFaults(f.function, f.symbol, f.faults) for f in self.by_function),
                interpreter=self.interpreter,
                note=self.faults_note or None,
            ),
            transitions=tuple(
                demo.MappingTransition(t.mapping, t.before, t.after, t.pages) for t in self.transitions
            ),
            table=self.table,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self.record())
        return out


def function_name(symbol: str, dso: str) -> str:
    """A sampled symbol as a student knows it: libc's ``__memset_avx2_unaligned_erms`` is memset."""
    base = os.path.basename(dso)
    name = symbol.split("+", 1)[0]
    if base.startswith("libc.so"):
        hit = _LIBC_NAMES.match(name)
        if hit:
            name = hit.group(1)
        return f"{name} (libc)"
    return f"{name} ({base})" if base else name


def region_name(regions: dict[str, tuple[int, int]], v: Vma | None) -> str | None:
    """The lesson's name for the VMA (its region), or None if the lesson did not make it."""
    if v is None:
        return None
    for name, (addr, length) in regions.items():
        if v.start < addr + length and addr < v.end:
            return name
    return None


def interpreter_code(dso: str) -> bool:
    """Code of the Python interpreter itself (not libc, not the lesson)."""
    base = os.path.basename(dso)
    return base.startswith("python") or base.startswith("libpython") or "cpython" in base


def transitions(
    regions: dict[str, tuple[int, int]], before: Snapshot, after: Snapshot
) -> tuple[Transition, ...]:
    out = []
    for name, (addr, length) in regions.items():
        counts: Counter[tuple[str, str]] = m.transitions(before, after, addr, length)
        for (a, b), n in counts.most_common():
            out.append(Transition(name, a, b, n))
    return tuple(out)


def numbers(measured: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The scalar measurements, as (name, value) lines; unknown is '?', never 0."""
    out = []
    for k, v in measured.items():
        if isinstance(v, dict):
            continue
        if isinstance(v, list):
            if len(v) > 8:
                v = f"{len(v)} items"
            else:
                v = ",".join(map(str, v))
        text = "?" if v is None else ("yes" if v is True else "no" if v is False else str(v))
        out.append((k.replace("_", " "), text))
    return tuple(out[:MAX_NUMBERS])


Faults = tuple[tuple[MappingFaults, ...] | None, tuple[FunctionFaults, ...] | None, int | None, str | None]


def faults_by(tick: FaultTick | None, regions: dict[str, tuple[int, int]], after: Snapshot) -> Faults:
    """Sampled faults in the lesson's mappings and in libc and in the workload's own functions; the interpreter's apart.

    The workload is a Python process: running a command faults its own heap
    and code too (after a fork, copy-on-write of the interpreter's pages).
    Those are counted, as "the interpreter", not listed: the lesson's faults
    happen in its own mappings, inside libc's memset/memcpy/read.
    """
    if tick is None:
        return None, None, None, "faults were not sampled"
    if tick.mode != "perf":
        return None, None, None, tick.reason or "perf sampling unavailable: /proc counters only"
    per: dict[str, list[int]] = {}
    for start, (mi, ma) in tick.by_vma.items():
        name = region_name(regions, after.vma_at(start))
        if name is None:
            continue
        acc = per.setdefault(name, [0, 0])
        acc[0] += mi
        acc[1] += ma
    maps = sorted((MappingFaults(k, a, b) for k, (a, b) in per.items()), key=lambda f: -(f.minor + f.major))
    funcs, interp = [], 0
    for sym, dso, n in tick.by_symbol:
        if interpreter_code(dso) or sym == "[unknown]":
            interp += n
        else:
            funcs.append(FunctionFaults(function_name(sym, dso), sym, n))
    return tuple(maps[:MAX_ROWS]), tuple(funcs[:MAX_ROWS]), interp, None


def build(
    regions: dict[str, tuple[int, int]],
    before: Snapshot,
    after: Snapshot,
    x: dict[str, Any],
    measured: dict[str, Any],
    tick: FaultTick | None,
) -> Evidence:
    minor, major = m.faults(before, after)
    by_mapping, by_function, interp, note = faults_by(tick, regions, after)
    start, end = x.get("transitions", (before, after))
    zoom = x.get("range")
    if zoom is None and x.get("focus"):
        v = after.vma_at(x["focus"])
        zoom = (v.start, v.size) if v is not None else None
    return Evidence(
        minor=max(0, minor),
        major=max(0, major),
        by_mapping=by_mapping,
        by_function=by_function,
        interpreter=interp,
        faults_note=note,
        transitions=transitions(regions, start, end),
        numbers=numbers(measured),
        table=tuple(tuple(r) for r in x.get("table", ())),
        zoom=None if zoom is None else (int(zoom[0]), int(zoom[1])),
        dirty_file=x.get("dirty_file"),
    )
