"""The address-space overview strip: the whole user address space on one line.

Regions of mappings are drawn to scale within themselves; the huge empty gaps
between them (terabytes on x86-64) are compressed to a labelled ``┈12T┈``.
Line 2 names each region (exe, heap, libs, mmap, stack...) and marks the
selected VMA with ``▲``.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_right

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ...model import Snapshot, Vma
from ...units import human_bytes
from .basestyle import CachedBaseStyle

GAP_MIN = 1 << 30  # gaps this big or bigger are compressed

KIND_BG = {
    "heap": "#b58900",
    "stack": "#a33ea0",
    "vdso": "grey50",
    "vvar": "grey42",
    "vsyscall": "grey42",
    "file-private": "#2f6db5",
    "file-shared": "#4fa3d9",
    "anon-private": "#3f9a45",
    "anon-shared": "#6cc070",
    "guard": "grey27",
    "deleted": "#b03030",
    "shm": "#c060c0",
    "hugetlb": "#7a5fd0",
}


def clusters(vmas: tuple[Vma, ...] | list[Vma], gap_min: int = GAP_MIN) -> list[tuple[int, int]]:
    """(first index, end index) of runs of VMAs separated by gaps >= gap_min."""
    out: list[tuple[int, int]] = []
    if not vmas:
        return out
    first = 0
    prev_end = vmas[0].end
    for i in range(1, len(vmas)):
        v = vmas[i]
        if v.start - prev_end >= gap_min:
            out.append((first, i))
            first = i
        if v.end > prev_end:
            prev_end = v.end
    out.append((first, len(vmas)))
    return out


def region_name(vmas, exe: str | None) -> str:
    names: list[str] = []

    def add(n: str) -> None:
        if n not in names:
            names.append(n)

    for v in vmas:
        p = v.path or ""
        if exe and p == exe:
            add("exe")
        elif v.kind == "heap":
            add("heap")
        elif v.kind == "stack":
            add("stack")
        elif v.kind in ("vdso", "vvar"):
            add("vdso")
        elif v.kind == "vsyscall":
            add("vsyscall")
        elif ".so" in os.path.basename(p):
            add("libs")
        if len(names) >= 4:
            break
    if not names or (len(vmas) > 8 and "libs" in names):
        names.append("mmap")
    return "+".join(names)


def overview_layout(snapshot: Snapshot) -> tuple[list[tuple[int, int]], list[int], list[str]]:
    """(clusters, VMA starts, region names): O(VMAs), so the worker computes it."""
    vmas = snapshot.vmas
    cl = clusters(vmas)
    names = [region_name(vmas[a : min(b, a + 4096)], snapshot.process.exe) for a, b in cl]
    return cl, [v.start for v in vmas], names


class Overview(CachedBaseStyle):
    """Two lines: the strip and the region labels with the selection marker."""

    DEFAULT_CSS = "Overview { height: 2; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.snapshot: Snapshot | None = None
        self.selected: Vma | None = None
        self._key: tuple | None = None
        self._lines: tuple[list, list, list[tuple[int, int, int, int]]] | None = None
        self._clusters: list[tuple[int, int]] = []
        self._starts: list[int] = []
        self._names: list[str] = []

    def show(self, snapshot: Snapshot | None, selected: Vma | None, layout=None) -> None:
        if snapshot is not self.snapshot:
            self.snapshot = snapshot
            if snapshot is None:
                layout = ([], [], [])
            elif layout is None:
                layout = overview_layout(snapshot)
            self._clusters, self._starts, self._names = layout
        self.selected = selected
        self.refresh()

    def _layout(self, width: int):
        """Per cluster: (x, width, lo, hi); plus the gap labels as (x, text)."""
        snap = self.snapshot
        assert snap is not None
        vmas = snap.vmas
        spans = []
        for a, b in self._clusters:
            lo = vmas[a].start
            hi = vmas[b - 1].end  # VMAs do not overlap: the last ends highest
            spans.append((lo, hi))
        gaps = []
        prev = 0
        for lo, hi in spans:
            gaps.append(f"┈{human_bytes(lo - prev)}┈" if lo - prev >= GAP_MIN else "")
            prev = hi
        gap_w = sum(len(g) for g in gaps)
        avail = max(len(spans) * 3, width - gap_w)
        weights = [math.log2(max(hi - lo, 4096) / 4096) + 1 for lo, hi in spans]
        total = sum(weights) or 1
        widths = [max(3, int(avail * w / total)) for w in weights]
        # hand out what rounding left over to the widest regions
        spare = avail - sum(widths)
        i = 0
        order = sorted(range(len(widths)), key=lambda k: -weights[k])
        while spare > 0 and order:
            widths[order[i % len(order)]] += 1
            spare -= 1
            i += 1
        out, labels, x = [], [], 0
        for (lo, hi), g, w in zip(spans, gaps, widths):
            if g:
                labels.append((x, g))
                x += len(g)
            out.append((x, w, lo, hi))
            x += w
        return out, labels

    def _vma_near(self, a: int, b: int) -> Vma | None:
        """A VMA overlapping [a, b): the one at the middle if any, else the first."""
        assert self.snapshot is not None
        vmas = self.snapshot.vmas
        mid = (a + b) // 2
        i = bisect_right(self._starts, mid) - 1
        if i >= 0 and vmas[i].end > mid:
            return vmas[i]
        i = bisect_right(self._starts, a) - 1
        if i >= 0 and vmas[i].end > a:
            return vmas[i]
        i += 1
        if i < len(vmas) and vmas[i].start < b:
            return vmas[i]
        return None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.base_style
        snap = self.snapshot
        if snap is None or not snap.vmas:
            return Strip.blank(width, base)
        key = (id(snap), width)
        if key != self._key or self._lines is None:
            self._key = key
            self._lines = self._layout(width) + (None,)
        regions, labels, _ = self._lines
        sel = self.selected
        if y == 0:
            return self._strip(regions, labels, sel, width, base)
        return self._label_line(regions, sel, width, base)

    def _strip(self, regions, labels, sel, width, base) -> Strip:
        segs: list[Segment] = []
        x = 0
        label_at = dict(labels)
        gap_style = base + Style(color="grey50")
        for _rx, w, lo, hi in regions:
            if x in label_at:
                segs.append(Segment(label_at[x], gap_style))
                x += len(label_at[x])
            step = (hi - lo) / w
            marked = False
            for k in range(w):
                a = lo + int(k * step)
                b = lo + int((k + 1) * step) if k < w - 1 else hi
                v = self._vma_near(a, b)
                if v is None:
                    segs.append(Segment(" ", base))
                    continue
                st = base + Style(bgcolor=KIND_BG.get(v.kind, "grey50"))
                if sel is not None and sel.start < b and sel.end > a:
                    segs.append(Segment("█", st + Style(color="bright_white", bold=True)))
                    marked = True
                else:
                    segs.append(Segment(" ", st))
            if not marked and sel is not None and lo <= sel.start < hi:
                k = min(w - 1, int((sel.start - lo) / step))
                segs[len(segs) - w + k] = Segment("█", base + Style(color="bright_white", bold=True))
            x += w
        return Strip(segs).adjust_cell_length(width, base)

    def _label_line(self, regions, sel, width, base) -> Strip:
        line = [" "] * width
        styles = [base] * width
        for name, (rx, w, lo, hi) in zip(self._names, regions):
            text = name if len(name) <= w else name[: max(0, w)]
            off = rx + max(0, (w - len(text)) // 2)
            for i, ch in enumerate(text):
                if 0 <= off + i < width:
                    line[off + i] = ch
                    styles[off + i] = base + Style(color="grey70")
            if sel is not None and lo <= sel.start < hi:
                step = (hi - lo) / w
                k = rx + min(w - 1, int((sel.start - lo) / step))
                if k < width:
                    line[k] = "▲"
                    styles[k] = base + Style(color="bright_white", bold=True)
        segs = [Segment(ch, st) for ch, st in zip(line, styles)]
        return Strip(segs).simplify()
