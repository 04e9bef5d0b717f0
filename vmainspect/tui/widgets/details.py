"""The details panel: everything about the selected VMA."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ...model import Capabilities, Vma
from ...procfs.vmflags import describe_flag
from ...units import human_bytes

# smaps fields that are not byte counts
_RAW_FIELDS = {"thp_eligible", "protection_key"}


def details_text(vma: Vma | None, caps: Capabilities | None, elf: list[str] | None | str,
                 ghost: bool = False) -> Table | Text:
    if vma is None:
        return Text("No VMA selected.", style="dim")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if ghost:
        grid.add_row(Text("GONE", style="bold red"), "this VMA was unmapped since the last tick")
    grid.add_row("range", f"{vma.start:#x}-{vma.end:#x}")
    grid.add_row("size", f"{human_bytes(vma.size)} ({vma.size:,} bytes)")
    grid.add_row("perms", vma.perms)
    grid.add_row("kind", vma.kind)
    grid.add_row("path", vma.path or Text("(anonymous)", style="dim"))
    grid.add_row("offset", f"{vma.offset:#x}")
    grid.add_row("dev/inode", f"{vma.dev} {vma.inode}")
    grid.add_row(Text("smaps", style="bold underline"), "")
    for key, val in vma.smaps.items():
        if key in _RAW_FIELDS:
            grid.add_row(key, str(val))
        else:
            grid.add_row(key, Text(human_bytes(val), style="dim" if not val else ""))
    grid.add_row(Text("VmFlags", style="bold underline"), "")
    for f in vma.flags:
        grid.add_row(f, describe_flag(f))
    if not vma.flags:
        grid.add_row("", Text("(none)", style="dim"))
    grid.add_row(Text("ELF", style="bold underline"), "")
    if isinstance(elf, str):
        grid.add_row("", Text(elf, style="dim"))
    elif elf is None:
        grid.add_row("", Text("not an ELF file mapping", style="dim"))
    else:
        for line in elf:
            grid.add_row("", line)
    if caps is not None and caps.notes:
        grid.add_row(Text("collection", style="bold underline"), "")
        for n in caps.notes:
            grid.add_row("", Text(n, style="yellow"))
    return grid


class DetailsPanel(VerticalScroll):
    DEFAULT_CSS = """
    DetailsPanel { height: 1fr; }
    DetailsPanel > Static { width: 1fr; }
    """

    def compose(self):
        yield Static(id="details-body")

    def show(self, vma: Vma | None, caps: Capabilities | None, elf: list[str] | None | str,
             ghost: bool = False) -> None:
        self.query_one("#details-body", Static).update(details_text(vma, caps, elf, ghost))
