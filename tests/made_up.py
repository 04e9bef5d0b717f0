"""Made-up model objects for tests that need no process (replay, recordings)."""

from __future__ import annotations

from vmainspect.model import PageCounts, PageInfo, PageRun, Vma

PS = 4096


def anon_vma(start: int, n: int, touched: int, perms: str = "rw-p", **smaps: int) -> Vma:
    """A private anonymous VMA of ``n`` pages: the first ``touched`` present and dirty,
    the rest absent; what needs root (dirty, zero, ...) unknown. ``smaps``: extra fields."""
    runs = [PageRun(0, touched, "anon")] if touched else []
    if touched < n:
        runs.append(PageRun(touched, n - touched, "absent"))
    counts = PageCounts(touched, 0, 0, touched, touched, None, None, None, None, None)
    return Vma(
        start,
        start + n * PS,
        perms,
        0,
        "00:00",
        0,
        None,
        "anon-private",
        ("rd", "wr"),
        {"rss": touched * PS, "private_dirty": touched * PS, **smaps},
        PageInfo(counts, tuple(runs)),
    )
