"""The details panel: everything about the selected VMA."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...model import Capabilities, Vma
from ...procfs.vmflags import describe_flag
from ...safetext import printable
from ...units import human_bytes

# smaps fields that are not byte counts
_RAW_FIELDS = {"thp_eligible", "protection_key"}


def details_text(
    vma: Vma | None,
    caps: Capabilities | None,
    elf: list[str] | str | None,
    ghost: bool = False,
    extra: list[tuple[str, Text]] | None = None,
) -> Text:
    """Plain styled text (a rich Table costs ~10x more to lay out on every key)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if vma is None:
        t.append("No VMA selected.", "dim")
        for n in caps.notes if caps is not None else ():
            t.append("\n" + n, "yellow")  # e.g. a kernel thread or a zombie has no memory map
        return t
    width = max([16] + [len(k) for k in vma.smaps])

    def row(key: str, value: str | Text, key_style: str = "bold") -> None:
        t.append(printable(key).ljust(width + 1), key_style)
        t.append_text(value) if isinstance(value, Text) else t.append(printable(value))
        t.append("\n")

    def head(title: str) -> None:
        t.append(title, "bold underline")
        t.append("\n")

    t.append("↓ smaps, VmFlags and ELF below: scroll with the mouse, or Tab here and use ↑ ↓ PgDn\n", "dim")
    if ghost:
        row("GONE", "this VMA was unmapped since the last tick", "bold red")
    row("range", f"{vma.start:#x}-{vma.end:#x}")
    row("size", f"{human_bytes(vma.size)} ({vma.size:,} bytes)")
    row("perms", vma.perms)
    row("kind", vma.kind)
    row("path", vma.path or Text("(anonymous)", style="dim"))
    row("offset", f"{vma.offset:#x}")
    row("dev/inode", f"{vma.dev} {vma.inode}")
    for key, value in extra or ():  # e.g. the file's page cache, the working set
        row(key, value)
    head("smaps")
    for key, val in vma.smaps.items():
        if key in _RAW_FIELDS:
            row(key, str(val), "")
        else:
            row(key, Text(human_bytes(val), style="dim" if not val else "bold"), "")
    head("VmFlags")
    for f in vma.flags:
        row(f, describe_flag(f), "")
    if not vma.flags:
        t.append("(none)\n", "dim")
    head("ELF")
    if isinstance(elf, str):
        t.append(printable(elf) + "\n", "dim")
    elif elf is None:
        t.append("not an ELF file mapping\n", "dim")
    else:
        for line in elf:
            t.append(printable(line) + "\n")
    if caps is not None and caps.notes:
        head("collection notes")
        for n in caps.notes:
            t.append(n + "\n", "yellow")
    t.rstrip()
    return t


class DetailsPanel(VerticalScroll):
    DEFAULT_CSS = """
    DetailsPanel { height: 1fr; }
    DetailsPanel > Static { width: 1fr; }
    """

    def compose(self):
        yield Static(id="details-body")

    def show(
        self,
        vma: Vma | None,
        caps: Capabilities | None,
        elf: list[str] | str | None,
        ghost: bool = False,
        extra: list[tuple[str, Text]] | None = None,
    ) -> None:
        text = details_text(vma, caps, elf, ghost, extra)
        key = (text.plain, tuple(text.spans))
        if key == getattr(self, "_shown_key", None):
            return  # same text (most refresh ticks): no repaint of the whole panel
        self._shown_key = key
        lines = text.plain.count("\n") + 1
        # The body's height moves in steps of 16 lines, so moving between VMAs
        # (whose line counts differ a little) rarely re-lays out the screen.
        body = self.query_one("#details-body", Static)
        height = -(-lines // 16) * 16
        if height != getattr(self, "_height", None):
            self._height = height
            body.styles.height = height
        body.update(text, layout=False)
