"""The faults panel: the last tick's page faults, by mapping, by symbol and most recent.

The same attribution as ``vmainspect faults``: mappings by identity (a heap that
grew and shrank is one row), C++ names demangled, and what could not be
sampled or placed counted, not hidden.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...faults.demangle import readable
from ...model import FaultTick, Snapshot
from ...safetext import printable
from ...units import human_bytes, short_rate


def _symbol_text(text: str) -> str:
    """ "name+0x12" with the name demangled."""
    name, plus, off = text.rpartition("+")
    if plus and off.startswith("0x"):
        return readable(name) + "+" + off
    return readable(text)


def faults_text(tick: FaultTick | None, snap: Snapshot | None, note: str | None) -> Text:
    t = Text()
    if tick is None:
        t.append("Page faults: ", "bold")
        t.append(
            printable(note) if note else "no fault data for this view (saved snapshots carry none)", "dim"
        )
        return t
    w = tick.window_s or 1.0
    t.append("Page faults ", "bold")
    t.append(f"[{tick.mode}] ", "cyan")
    t.append(
        f"minor {tick.minor:,} ({tick.minor / w:,.0f}/s)  major {tick.major:,} ({tick.major / w:,.0f}/s)"
        f"  in {w:.2f}s"
    )
    if tick.lost is not None:
        t.append(f"  lost {tick.lost:,}", "bold red" if tick.lost else "dim")
    if tick.unsampled:
        t.append(f"  not sampled {tick.unsampled:,}", "bold yellow")
    est = "~" if tick.period > 1 else ""  # figures built from samples are estimates then
    if tick.unattributed:
        t.append(f"  unattributed {est}{tick.unattributed:,}", "bold yellow")
    t.append("\n")
    if tick.period > 1:
        t.append(
            f"sampling 1 fault in {tick.period:,} ({short_rate((tick.minor + tick.major) / w)} faults/s; "
            "--max-fault-rate): counts marked ~ are estimates, the totals above are exact\n",
            "yellow",
        )
    if tick.unsampled:
        t.append(
            "not sampled: the kernel counted faults no event saw (threads not followed from their "
            "first fault, or faults taken on another's behalf)\n",
            "dim",
        )
    if tick.reason:
        t.append(f"counters only: {printable(tick.reason)}\n", "yellow")
    elif tick.mode != "perf":
        t.append("counters mode: no addresses or symbols\n", "dim")
    transitions = getattr(tick, "by_transition", ())
    if transitions:
        t.append("faulted pages went (state before → after)\n", "bold underline")
        for before, after, n in transitions[:6]:
            t.append(f"{n:>7,} ", "bold")
            t.append(f"{before} → {after}\n")
    threads = getattr(tick, "by_thread", {})
    if len(threads) > 1:
        top = sorted(threads.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:5]
        t.append("by thread: ", "bold")
        t.append("  ".join(f"tid {tid} {est}{mi:,}/{ma:,}" for tid, (mi, ma) in top) + "  (minor/major)\n")
    if tick.by_mapping:
        t.append("top mappings (count, extent, perms, path)\n", "bold underline")
        for start, end, perms, kind, path, mi, ma in tick.by_mapping[:5]:
            t.append(f"{est}{mi + ma:,} ".rjust(8), "bold")
            t.append(f"{start:#x} {human_bytes(end - start):>7} {perms} ")
            t.append(f"{printable(path) if path else kind}\n", "cyan")
    if tick.by_symbol:
        t.append("top symbols (count, DSO)\n", "bold underline")
        for sym, dso, n in tick.by_symbol[:8]:
            t.append(f"{est}{n:,} ".rjust(8), "bold")
            t.append(printable(readable(sym)), "cyan")
            t.append(f"  {printable(os.path.basename(dso)) if dso else '?'}\n", "dim")
    if tick.recent:
        t.append("recent faults, newest first (address, kind, where, VMA)\n", "bold underline")
        for s in reversed(tick.recent[-10:]):
            v = snap.vma_at(s.addr) if snap is not None else None
            where = (v.path or v.kind) if v is not None else "unmapped"
            t.append(f"{s.addr:#x} ")
            t.append("MAJ" if s.major else "min", "bold red" if s.major else "dim")
            t.append(f" {printable(_symbol_text(s.symbol)) if s.symbol else hex(s.ip)}", "cyan")
            t.append(f"  {printable(where)}\n", "dim")
    t.rstrip()
    return t


class FaultsPanel(VerticalScroll):
    DEFAULT_CSS = """
    FaultsPanel { height: 1fr; }
    """

    def compose(self):
        yield Static(id="faults-body")

    def show(self, tick: FaultTick | None, snap: Snapshot | None, note: str | None) -> None:
        text = faults_text(tick, snap, note)
        if text != getattr(self, "_text", None):  # unchanged: no re-layout
            self._text = text
            self.query_one("#faults-body", Static).update(text)
