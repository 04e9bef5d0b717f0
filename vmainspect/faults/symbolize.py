"""Addresses in a process to symbols, and the ELF segments and sections a VMA maps.

The ELF file behind a VMA is the file the process really maps, opened
through ``procfs.mapped`` (``/proc/PID/map_files`` as root, then
``/proc/PID/root/PATH``, then the path as seen here, each accepted only when
its device and inode are the VMA's): a process in a container, or one whose binary was
replaced or deleted on disk, is symbolized from its own file or not at all
(``Symbol.reason`` says "file not reachable"), never from another file at the
same path. Parsing is in ``faults.elf`` (bounded work, cached per inode).

Runtime address to ELF virtual address: the load bias is
``vma.start - vma.offset + p_offset - p_vaddr`` for the PT_LOAD segment the
VMA maps (0 for ET_EXEC, the load address for PIE executables and shared
libraries). With a snapshot, the bias comes from the file's lowest VMA, which
also names data in ``.bss`` (the anonymous VMA after the file's last one).

A truncated, corrupt or hostile file is simply not an ELF here (``None``);
``lookup`` raises nothing for such files because ``faults.elf`` turns the
errors pyelftools and the OS raise into None.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..procfs.mapped import MappedFileUnavailable, open_as_seen_here, open_mapped_file
from ..procfs.reader import ProcReader
from .elf import Where, load_elf_fd
from .elfinfo import PAGE, PT_LOAD, SHT_NOBITS, ElfInfo

KERNEL_START = 0xFFFF800000000000  # x86-64 kernel half; IPs here are kernel code
NOT_REACHABLE = "file not reachable"
_start = attrgetter("start")


@dataclass(frozen=True)
class Symbol:
    name: str | None  # None: inside the ELF but no symbol covers it, or the file was not reachable
    offset: int  # from the symbol's start (or the ELF vaddr when unnamed)
    dso: str  # the file's path as mapped
    vaddr: int  # the address as an ELF virtual address (the runtime address when not reachable)
    reason: str | None = None  # NOT_REACHABLE: no file that is the mapped one could be opened

    @property
    def text(self) -> str:
        if self.reason is not None:
            return f"[unknown: {self.reason}]"
        if self.name is None:
            return f"{os.path.basename(self.dso)}+{self.vaddr:#x}"
        return f"{self.name}+{self.offset:#x}" if self.offset else self.name


def elf_path(vma: Any) -> str | None:
    """The file behind a VMA if it could be an ELF: an absolute path with an inode (deleted ones too)."""
    p = vma.path
    if not isinstance(p, str) or not p.startswith("/") or vma.inode == 0:
        return None
    return p


class ElfFiles:
    """The ELF file of each file-backed VMA of one process, opened as that process maps it.

    Cached per (path, dev, inode): the same file in every VMA that maps it. The
    cache holds the ElfInfo, False (the mapped file is not an ELF) or the reason
    it could not be opened (str).
    """

    MAX = 4096

    def __init__(self, pid: int | None, proc_root: str = "/proc") -> None:
        self.reader = ProcReader(pid, proc_root) if pid is not None else None
        self._files: dict[tuple[str, str, int], ElfInfo | bool | str] = {}

    def get(self, vma: Any) -> ElfInfo | bool | str:
        """The ElfInfo; False: the mapped file is not an ELF; a str: why it could not be opened."""
        key = (vma.path, vma.dev, vma.inode)
        hit = self._files.get(key)
        if hit is not None:
            return hit
        got: ElfInfo | bool | str
        opened, why = self._open(vma)
        if opened is None:
            got = why
        else:
            try:
                path = vma.path.removesuffix(" (deleted)")
                info = load_elf_fd(opened, vma.path, Where(self.reader, path))
                got = info if info is not None else False
            except OSError:
                got = False
            finally:
                os.close(opened)
        if len(self._files) >= self.MAX:
            self._files.clear()
        self._files[key] = got
        return got

    def _open(self, vma: Any) -> tuple[int | None, str]:
        why = "no process to open it through"
        if self.reader is not None:
            try:
                return open_mapped_file(self.reader, vma.start, vma.end, vma.dev, vma.inode, vma.path)[0], ""
            except MappedFileUnavailable as e:
                why = str(e)
        here = open_as_seen_here(vma.path, vma.dev, vma.inode)
        return (here[0], "") if here is not None else (None, why)


# ---------------------------------------------------------------- VMAs


def describe_vma(
    vma: Any, *, bias: int | None = None, snapshot: Any = None, files: ElfFiles | None = None
) -> list[str] | None:
    """Lines naming the ELF segment(s) and sections the VMA maps; None if not ELF-backed.

    Pass the ``snapshot`` the VMA comes from when you have it: the file is then opened
    as that process maps it (``files`` caches it across calls), and the load bias is
    taken from the file's lowest mapping, which is unambiguous; from one VMA alone a
    page shared by two segments (RELRO after .eh_frame) can be ambiguous.
    """
    if elf_path(vma) is None:
        return None
    if files is None:
        files = ElfFiles(snapshot.process.pid if snapshot is not None else None)
    elf = files.get(vma)
    if isinstance(elf, str):
        return [f"ELF details unavailable: {NOT_REACHABLE} ({elf})"]
    if not isinstance(elf, ElfInfo) or not elf.loads:
        return None
    if bias is None and snapshot is not None:
        bias = Symbolizer(files=files)._bias(elf, vma, snapshot)
    return _describe(vma, elf, bias)


def _describe(vma: Any, elf: ElfInfo, bias: int | None) -> list[str] | None:
    ambiguous = False
    if bias is None:
        bias = elf.bias_for(vma.start, vma.offset, vma.perms)
        if bias is None:
            return None
        ambiguous = (
            len(
                {
                    vma.start - vma.offset + s.offset - s.vaddr
                    for s in elf.loads
                    if (s.offset & ~(PAGE - 1)) <= vma.offset < s.offset + max(s.filesz, 1)
                }
            )
            > 1
        )
    lo, hi = vma.start - bias, vma.end - bias
    kind = {
        "ET_EXEC": "executable (not PIE: loaded at its link addresses)",
        "ET_DYN": "PIE executable or shared library (loaded at a bias)",
    }.get(elf.etype, elf.etype)
    lines = [f"ELF {kind}, load bias {bias:#x}, symbols from {elf.symsource}"]
    for s in elf.loads:
        if s.vaddr < hi and lo < s.vaddr + max(s.memsz, 1):
            a, b = max(lo, s.vaddr), min(hi, s.vaddr + s.memsz)
            part = "" if a <= s.vaddr and b >= s.vaddr + s.memsz else f", this VMA: {a:#x}-{b:#x}"
            bss = f", memsz {s.memsz:#x} (zero-filled past filesz)" if s.memsz > s.filesz else ""
            lines.append(
                f"segment LOAD {s.perms} vaddr {s.vaddr:#x}-{s.vaddr + s.memsz:#x} "
                f"file offset {s.offset:#x} filesz {s.filesz:#x}{bss}{part}"
            )
    if len(lines) == 1:
        return None
    for s in elf.segments:
        if s.type in (PT_LOAD, 6) or not s.memsz:
            continue
        if s.vaddr < hi and lo < s.vaddr + s.memsz:
            lines.append(f"segment {s.type_name} {s.perms} vaddr {s.vaddr:#x}-{s.vaddr + s.memsz:#x}")
    for sec in elf.sections:
        if sec.addr < hi and lo < sec.addr + sec.size:
            nb = " (NOBITS: zero-filled)" if sec.type == SHT_NOBITS else ""
            lines.append(
                f"section {sec.name or '?'} vaddr {sec.addr:#x}-{sec.addr + sec.size:#x} "
                f"size {sec.size:#x}{nb}"
            )
    if ambiguous:
        lines.append(
            "note: this file page belongs to two segments; without the other mappings "
            "of the file the choice above is a guess"
        )
    return lines


# ---------------------------------------------------------------- kernel

_kernel: tuple[list[int], list[str]] | None = None


def _load_kallsyms(proc_root: str) -> tuple[list[int], list[str]]:
    """Text symbols of the kernel from /proc/kallsyms (all zero without privileges: then empty)."""
    from ..errors import VmaInspectError
    from ..procfs.reader import ProcReader

    try:
        data = ProcReader(0, proc_root).read_global("kallsyms")
    except (OSError, VmaInspectError):
        return [], []
    rows = []
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) >= 3 and parts[1] in (b"t", b"T", b"w", b"W"):
            try:
                a = int(parts[0], 16)
            except ValueError:
                continue
            if a:
                rows.append((a, parts[2].decode("ascii", "replace")))
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows]


def kernel_symbol(ip: int, proc_root: str = "/proc") -> tuple[str, int] | None:
    """(function, offset) of a kernel IP from /proc/kallsyms, or None (hidden without root)."""
    global _kernel
    if _kernel is None:
        _kernel = _load_kallsyms(proc_root)
    starts, names = _kernel
    i = bisect.bisect_right(starts, ip) - 1
    if i < 0 or ip - starts[i] > 1 << 20:
        return None
    return names[i], ip - starts[i]


class Symbolizer:
    """Addresses in one process to ``Symbol``s, with the ELF files opened as the process maps them."""

    def __init__(
        self, pid: int | None = None, proc_root: str = "/proc", *, files: ElfFiles | None = None
    ) -> None:
        self.files = files if files is not None else ElfFiles(pid, proc_root)
        self._bases: tuple[int, dict[str, tuple[int, int, str]]] | None = None

    def _base_vmas(self, snapshot: Any) -> dict[str, tuple[int, int, str]]:
        """path -> (start, offset, perms) of the file's lowest-offset VMA in ``snapshot``."""
        if self._bases is not None and self._bases[0] == id(snapshot):
            return self._bases[1]
        bases: dict[str, tuple[int, int, str]] = {}
        for v in snapshot.vmas:
            p = v.path
            if p and p.startswith("/") and v.inode:
                cur = bases.get(p)
                if cur is None or v.offset < cur[1]:
                    bases[p] = (v.start, v.offset, v.perms)
        self._bases = (id(snapshot), bases)
        return bases

    def _bias(self, elf: ElfInfo, vma: Any, snapshot: Any) -> int | None:
        if snapshot is not None:
            base = self._base_vmas(snapshot).get(vma.path)
            if base is not None:
                b = elf.bias_for(*base)
                if b is not None:
                    return b
        return elf.bias_for(vma.start, vma.offset, vma.perms)

    def lookup(self, address: int, vma: Any, snapshot: Any = None) -> Symbol | None:
        """The symbol (or at least the ELF) ``address`` lies in; None if not in an ELF.

        A file-backed VMA whose file cannot be opened gives a Symbol with ``reason``
        NOT_REACHABLE. Hostile files give None (``faults.elf`` never raises on them).
        """
        if vma is None:
            return None
        path = elf_path(vma)
        if path is None:
            # anonymous memory right after an ELF's last mapping: its .bss
            if snapshot is not None and not vma.path and vma.inode == 0:
                return self._bss(address, vma, snapshot)
            return None
        return self._in_elf(address, vma, path, snapshot)

    def _bss(self, address: int, vma: Any, snapshot: Any) -> Symbol | None:
        i = bisect.bisect_left(snapshot.vmas, vma.start, key=_start) - 1
        if i < 0:
            return None
        prev = snapshot.vmas[i]
        path = elf_path(prev)
        if prev.end != vma.start or path is None:
            return None
        s = self._in_elf(address, prev, path, snapshot)
        return None if s is None or s.reason is not None else s

    def _in_elf(self, address: int, vma: Any, path: str, snapshot: Any) -> Symbol | None:
        """``address`` in the ELF file ``path`` that ``vma`` maps (its load bias from ``vma``)."""
        elf = self.files.get(vma)
        if isinstance(elf, str):
            return Symbol(None, 0, path, address, NOT_REACHABLE)
        if not isinstance(elf, ElfInfo):
            return None
        bias = self._bias(elf, vma, snapshot)
        if bias is None:
            return None
        vaddr = address - bias
        if not elf.in_image(vaddr):
            return None
        hit = elf.symbol_at(vaddr)
        if hit is None:
            return Symbol(None, vaddr, path, vaddr)
        return Symbol(hit[0], hit[1], path, vaddr)

    def symbolize(self, address: int, vma: Any, snapshot: Any = None) -> tuple[str, str] | None:
        """("func+0x12", dso) for a named address, else None."""
        s = self.lookup(address, vma, snapshot)
        if s is None or s.name is None:
            return None
        return s.text, s.dso
