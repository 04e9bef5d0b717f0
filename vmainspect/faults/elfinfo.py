"""What vmainspect keeps of one ELF file: its segments, allocated sections and sorted symbols.

``ElfInfo`` answers the questions the symbolizer and the Details panel ask: which
PT_LOAD segment a mapping at a file offset belongs to (and so the load bias),
whether an ELF virtual address is in the image, and which symbol or section
covers it (``bisect`` over sorted arrays). Built by ``faults.elf``.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

PAGE = os.sysconf("SC_PAGE_SIZE")
PT_LOAD = 1
SHT_NOBITS = 8
PT_NAMES = {
    0: "NULL",
    1: "LOAD",
    2: "DYNAMIC",
    3: "INTERP",
    4: "NOTE",
    6: "PHDR",
    7: "TLS",
    0x6474E550: "GNU_EH_FRAME",
    0x6474E551: "GNU_STACK",
    0x6474E552: "GNU_RELRO",
    0x6474E553: "GNU_PROPERTY",
}


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int  # PF_X=1, PF_W=2, PF_R=4
    offset: int
    vaddr: int
    filesz: int
    memsz: int

    @property
    def type_name(self) -> str:
        return PT_NAMES.get(self.type, hex(self.type))

    @property
    def perms(self) -> str:
        f = self.flags
        return ("r" if f & 4 else "-") + ("w" if f & 2 else "-") + ("x" if f & 1 else "-")


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


class ElfInfo:
    """What vmainspect needs from one ELF file."""

    def __init__(
        self,
        path: str,
        etype: str,
        machine: str,
        segments: list[Segment],
        sections: list[Section],
        symbols: list[tuple[int, int, str]],
        symsource: str,
    ) -> None:
        self.path = path
        self.etype = etype  # "ET_EXEC", "ET_DYN", ...
        self.machine = machine
        self.segments = segments  # all program headers, file order
        self.loads = [s for s in segments if s.type == PT_LOAD]
        self.sections = sections  # SHF_ALLOC sections, address order
        self.starts = [s[0] for s in symbols]
        self.ends = [s[1] for s in symbols]
        self.names = [s[2] for s in symbols]
        self.symsource = symsource

    def load_for_offset(self, offset: int, perms: str | None = None) -> Segment | None:
        """The PT_LOAD segment a mapping at file ``offset`` belongs to (page-granular)."""
        cands = [s for s in self.loads if (s.offset & ~(PAGE - 1)) <= offset < s.offset + max(s.filesz, 1)]
        if not cands:
            return None
        if perms and len(cands) > 1:
            same = [s for s in cands if s.perms[0] == perms[0] and s.perms[2] == perms[2]]
            if same:
                return same[-1] if perms[1] == "w" or len(same) == 1 else same[0]
        return cands[0]

    def bias_for(self, start: int, offset: int, perms: str | None = None) -> int | None:
        seg = self.load_for_offset(offset, perms)
        if seg is None:
            return None
        return start - offset + seg.offset - seg.vaddr

    def in_image(self, vaddr: int) -> bool:
        return any(s.vaddr <= vaddr < s.vaddr + s.memsz for s in self.loads)

    def symbol_at(self, vaddr: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self.starts, vaddr) - 1
        # a few steps back: a big symbol can enclose smaller ones after it
        for j in range(i, max(i - 4, -1), -1):
            s, e = self.starts[j], self.ends[j]
            if s <= vaddr < e or (s == e == vaddr):
                return self.names[j], vaddr - s
        return None

    def section_at(self, vaddr: int) -> Section | None:
        for s in self.sections:
            if s.addr <= vaddr < s.addr + s.size:
                return s
        return None
