"""The files panel: the page-cache state of every file the process maps.

One row per file (the snapshot's ``files``): pages cached of the file's
pages, dirty, under writeback, evicted, and for a file with dirty pages how
long they have been dirty (first seen, by ``DirtyClock``) against
vm.dirty_expire_centisecs: past the expiry the flusher writes them back at
its next wake-up (vm.dirty_writeback_centisecs). Counts the kernel would
not give are ``?``; the reasons are listed below the rows.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...model import Frame, MappedFile, PageCache, Snapshot, Vma, Writeback
from ...snapshot.files import DirtyClock
from ...units import human_bytes
from ..safe import literal

MAX_ROWS = 200  # rows drawn (dirty files first): a process can map thousands of files


def _n(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def dirty_age(age: float | None, expire: float | None) -> Text:
    """'12s/30s': how long the file's pages have been dirty, of the expiry; red once past it."""
    if age is None:
        return Text("")
    shown = f"{age:.0f}s" + (f"/{expire:.0f}s" if expire is not None else "")
    overdue = expire is not None and age >= expire
    return Text(shown, style="bold red" if overdue else "bold yellow")


def cache_line(f: MappedFile, age: float | None, expire: float | None, page_size: int) -> Text:
    """The Details line of a file-backed VMA's file: its page-cache counts (whole file, mapped part)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    c, m = f.page_cache, f.mapped_page_cache
    if c.cached is None:
        t.append("unknown: ", "dim")
        t.append_text(literal(f.unknown or "not collected", "yellow"))
        return t
    pages = "?" if f.size is None else f"{-(-f.size // page_size):,}"
    t.append(f"{_n(c.cached)} cached", "bold")
    t.append(f" of {pages} pages · dirty ")
    t.append(_n(c.dirty), "bold red" if c.dirty else "")
    t.append(f" · writeback {_n(c.writeback)} · evicted {_n(c.evicted)}")
    if m.cached is not None and m != c:
        t.append(f" · mapped part: {_n(m.cached)} of {f.mapped_pages:,} cached, dirty {_n(m.dirty)}")
    if age is not None:
        t.append(" · dirty for ")
        t.append_text(dirty_age(age, expire))
    return t


def writeback_text(frame: Frame) -> Text:
    """The header's fourth line: system-wide writeback, and the working set when it is on.
    Spaces between fields are spans of their own (SVG exports keep them)."""
    t = Text(no_wrap=True, overflow="ellipsis")

    def field(label: str, value: str, style: str = "bold", first: bool = False) -> None:
        if not first:
            t.append("  ")
        t.append(label, "dim")
        t.append(" ")
        t.append(value, style)

    wb = frame.writeback
    # Dirty and Writeback are /proc/meminfo's: the whole machine's, not this process's.
    field("System dirty", "?" if wb is None or wb.dirty is None else human_bytes(wb.dirty), first=True)
    busy = wb is not None and bool(wb.writeback)
    field(
        "Writeback",
        "?" if wb is None or wb.writeback is None else human_bytes(wb.writeback),
        "bold red" if busy else "bold",
    )
    if wb is not None:
        field("expire", "?" if wb.dirty_expire_s is None else f"{wb.dirty_expire_s:g}s", "")
        wake = wb.dirty_writeback_s
        field("flusher every", "?" if wake is None else "never" if wake == 0 else f"{wake:g}s", "")
    files = frame.snapshot.files
    if files:
        dirty = sum(f.page_cache.dirty or 0 for f in files)
        field("mapped files dirty", f"{dirty:,} pages", "bold red" if dirty else "")
    if frame.wss_interval is None:
        field("working set", "off (w)", "dim")
    else:
        touched = sum(v.smaps.get("referenced", 0) for v in frame.snapshot.vmas)
        field("working set", human_bytes(touched), "bold magenta")
        t.append(" ")
        t.append(f"touched in {frame.wss_interval:.1f}s")
    return t


def file_of(snap: Snapshot, vma: Vma) -> MappedFile | None:
    """The snapshot's entry for the file ``vma`` maps (by device and inode), if any."""
    if not vma.inode:
        return None
    for f in snap.files:
        if f.inode == vma.inode and f.dev == vma.dev:
            return f
    return None


def details_rows(frame: Frame, vma: Vma | None, clock: DirtyClock, now: float) -> list[tuple[str, Text]]:
    """Extra Details rows for ``vma``: its file's page cache, and its working set when on."""
    rows: list[tuple[str, Text]] = []
    if vma is None:
        return rows
    snap = frame.snapshot
    f = file_of(snap, vma)
    if f is not None:
        expire = frame.writeback.dirty_expire_s if frame.writeback is not None else None
        rows.append(("page cache", cache_line(f, clock.dirty_for(f, now), expire, snap.host.page_size)))
    if frame.wss_interval is not None:
        touched = vma.smaps.get("referenced", 0)
        t = Text()
        t.append(human_bytes(touched), "bold magenta")
        t.append(
            f" in the last {frame.wss_interval:.1f}s, of {human_bytes(vma.smaps.get('rss', 0))} resident"
        )
        rows.append(("working set", t))
    return rows


def _order(f: MappedFile) -> tuple[int, int, str]:
    c: PageCache = f.page_cache
    return (-(c.dirty or 0), -(c.cached or 0), f.path)


def files_text(
    snap: Snapshot, clock: DirtyClock, now: float, writeback: Writeback | None, page_size: int
) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    expire = writeback.dirty_expire_s if writeback is not None else None
    t.append("DIRTY FOR: since first seen dirty / vm.dirty_expire\n", "dim")
    files = snap.files
    if not files:
        t.append("no mapped files in this snapshot (none mapped, or not collected)", "dim")
        return t
    t.append(
        f"{'CACHED':>9} {'PAGES':>9} {'DIRTY':>7} {'WB':>5} {'EVICT':>7} {'DIRTY FOR':>10}  FILE", "bold"
    )
    rows = sorted(files, key=_order)
    for f in rows[:MAX_ROWS]:
        c = f.page_cache
        pages = "?" if f.size is None else f"{-(-f.size // page_size):,}"
        t.append("\n")
        t.append(f"{_n(c.cached):>9} {pages:>9} ")
        t.append(f"{_n(c.dirty):>7}", "bold red" if c.dirty else "dim" if c.dirty == 0 else "")
        t.append(f" {_n(c.writeback):>5} {_n(c.evicted):>7} ")
        age = dirty_age(clock.dirty_for(f, now), expire)
        t.append(" " * max(0, 10 - len(age.plain)))
        t.append_text(age)
        t.append("  ")
        t.append_text(literal(f.path))
    if len(rows) > MAX_ROWS:
        t.append(f"\n… {len(rows) - MAX_ROWS:,} more files (fewest cached pages)", "dim")
    reasons: dict[str, int] = {}
    for f in files:
        if f.unknown:
            reasons[f.unknown] = reasons.get(f.unknown, 0) + 1
    for why, n in reasons.items():
        t.append(f"\n? {n} file{'s' if n != 1 else ''}: ", "yellow")
        t.append_text(literal(why, "yellow"))
    return t


class FilesPanel(VerticalScroll):
    DEFAULT_CSS = """
    FilesPanel { height: 1fr; }
    FilesPanel > Static { width: auto; min-width: 100%; }
    """

    def compose(self):
        yield Static(id="files-body")

    def show(
        self, snap: Snapshot, clock: DirtyClock, now: float, writeback: Writeback | None, page_size: int
    ) -> None:
        text = files_text(snap, clock, now, writeback, page_size)
        key = (text.plain, tuple(text.spans))
        if key == getattr(self, "_shown_key", None):
            return  # unchanged: no repaint
        self._shown_key = key
        self.query_one("#files-body", Static).update(text)
