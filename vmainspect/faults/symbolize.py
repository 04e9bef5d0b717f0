"""ELF files behind VMAs: segments and sections a mapping holds, addresses to symbols.

An ELF file is parsed once per (st_dev, st_ino, st_mtime_ns, st_size) and
cached. pyelftools reads the headers; symbol tables are decoded with
``struct.iter_unpack`` into sorted arrays searched with ``bisect``.

Symbols come from the file's ``.symtab``; else from a separate debug file
(``/usr/lib/debug/.build-id/xx/yyyy.debug``, or ``.gnu_debuglink`` checked by
CRC, as gdb and perf find them); else from ``.dynsym``. A stripped libc
has only ``.dynsym``, where the IFUNC implementations (``__memset_avx2_...``)
are missing: their addresses stay unnamed rather than being given the name of
whatever exported function happens to precede them.

Runtime address to ELF virtual address: the load bias is
``vma.start - vma.offset + p_offset - p_vaddr`` for the PT_LOAD segment the
VMA maps (0 for ET_EXEC, the load address for PIE executables and shared
libraries). With a snapshot, the bias comes from the file's lowest VMA, which
also names data in ``.bss`` (the anonymous VMA after the file's last one).

A truncated, corrupt or hostile file never raises: it is simply not an ELF
here (``None``).
"""

from __future__ import annotations

import bisect
import os
import stat
import struct
import threading
import zlib
from dataclasses import dataclass
from operator import attrgetter

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEBUG_ROOT = "/usr/lib/debug"
KERNEL_START = 0xFFFF800000000000  # x86-64 kernel half; IPs here are kernel code

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
PT_LOAD = 1
SHF_ALLOC = 0x2
SHT_NOBITS = 8
STT_OBJECT, STT_FUNC, STT_GNU_IFUNC, STT_TLS = 1, 2, 10, 6
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00


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


@dataclass(frozen=True)
class Symbol:
    name: str | None  # None: inside the ELF but no symbol covers it
    offset: int  # from the symbol's start (or the ELF vaddr when unnamed)
    dso: str  # the file's path as mapped
    vaddr: int  # the address as an ELF virtual address

    @property
    def text(self) -> str:
        if self.name is None:
            return f"{os.path.basename(self.dso)}+{self.vaddr:#x}"
        return f"{self.name}+{self.offset:#x}" if self.offset else self.name


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


# ---------------------------------------------------------------- parsing


def _read_symbols(elf, sec, data: bytes | None = None) -> list[tuple[int, int, str, int]]:
    """(value, size, name, rank) for the defined function/object symbols of one table."""
    from elftools.elf.sections import SymbolTableSection  # noqa: F401  (type only)

    if data is None:
        data = sec.data()
    strtab = elf.get_section(sec["sh_link"])
    if strtab is None or strtab["sh_type"] == "SHT_NOBITS":
        return []
    strs = strtab.data()
    le = elf.little_endian
    if elf.elfclass == 64:
        fmt, ent = ("<" if le else ">") + "IBBHQQ", 24
    else:
        fmt, ent = ("<" if le else ">") + "IIIBBH", 16
    usable = len(data) - len(data) % ent
    out = []
    for rec in struct.iter_unpack(fmt, data[:usable]):
        if elf.elfclass == 64:
            name_off, info, _other, shndx, value, size = rec
        else:
            name_off, value, size, info, _other, shndx = rec
        typ = info & 0xF
        if typ not in (STT_FUNC, STT_OBJECT, STT_GNU_IFUNC) or value == 0:
            continue
        if shndx == SHN_UNDEF or shndx >= SHN_LORESERVE:
            continue
        end = strs.find(b"\0", name_off)
        if name_off >= len(strs) or end < 0:
            continue
        name = strs[name_off:end].decode("utf-8", "replace")
        if not name:
            continue
        bind = info >> 4
        # prefer sized, global/weak, functions, then the shorter name
        rank = (0 if size else 1, 0 if bind in (1, 2) else 1, 0 if typ != STT_OBJECT else 1, len(name))
        out.append((value, size, name, rank))
    return out


def _table(elf, kind: str):
    for sec in elf.iter_sections():
        if sec["sh_type"] == kind:
            return sec
    return None


def _build_id(elf) -> str | None:
    for sec in elf.iter_sections():
        if sec["sh_type"] == "SHT_NOTE":
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID" and isinstance(note["n_desc"], str):
                    return note["n_desc"]
    return None


def _debug_file(path: str, elf) -> str | None:
    """The separate debug file of ``path`` (build-id, then .gnu_debuglink), if installed."""
    try:
        bid = _build_id(elf)
    except Exception:
        bid = None
    if bid and len(bid) > 2:
        cand = f"{DEBUG_ROOT}/.build-id/{bid[:2]}/{bid[2:]}.debug"
        if os.path.isfile(cand):
            return cand
    sec = elf.get_section_by_name(".gnu_debuglink")
    if sec is None:
        return None
    raw = sec.data()
    name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    if not name or "/" in name or len(raw) < 4:
        return None
    crc = struct.unpack_from("<I" if elf.little_endian else ">I", raw, len(raw) - 4)[0]
    d = os.path.dirname(os.path.realpath(path))
    for cand in (os.path.join(d, name), os.path.join(d, ".debug", name), DEBUG_ROOT + os.path.join(d, name)):
        if os.path.realpath(cand) != os.path.realpath(path) and os.path.isfile(cand):
            try:
                with open(cand, "rb") as f:
                    if zlib.crc32(f.read()) & 0xFFFFFFFF == crc:
                        return cand
            except OSError:
                continue
    return None


def _symbols_from(path: str, elf, size: int) -> tuple[list, str]:
    sec = _table(elf, "SHT_SYMTAB")
    if sec is not None and sec["sh_offset"] + sec["sh_size"] <= size:
        syms = _read_symbols(elf, sec)
        if syms:
            return syms, ".symtab"
    dbg = _debug_file(path, elf)
    if dbg is not None:
        try:
            from elftools.elf.elffile import ELFFile

            with open(dbg, "rb") as f:
                delf = ELFFile(f)
                dsec = _table(delf, "SHT_SYMTAB")
                dsize = os.fstat(f.fileno()).st_size
                if dsec is not None and dsec["sh_offset"] + dsec["sh_size"] <= dsize:
                    syms = _read_symbols(delf, dsec)
                    if syms:
                        return syms, f".symtab of {dbg}"
        except Exception:
            pass
    sec = _table(elf, "SHT_DYNSYM")
    if sec is not None and sec["sh_offset"] + sec["sh_size"] <= size:
        syms = _read_symbols(elf, sec)
        if syms:
            return syms, ".dynsym"
    return [], "none"


def parse_elf(path: str) -> ElfInfo | None:
    """Parse ``path``; None if it is not a readable, sane ELF file. Never raises."""
    try:
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(4) != b"\x7fELF":
                return None
            f.seek(0)
            elf = ELFFile(f)
            segments = []
            for seg in elf.iter_segments():
                h = seg.header
                t = h["p_type"]
                t = t if isinstance(t, int) else _PT_BY_NAME.get(t, -1)
                segments.append(
                    Segment(t, h["p_flags"], h["p_offset"], h["p_vaddr"], h["p_filesz"], h["p_memsz"])
                )
            sections = []
            for sec in elf.iter_sections():
                h = sec.header
                if h["sh_flags"] & SHF_ALLOC and h["sh_size"]:
                    t = h["sh_type"]
                    sections.append(
                        Section(
                            sec.name,
                            8 if t == "SHT_NOBITS" else 1,
                            h["sh_flags"],
                            h["sh_addr"],
                            h["sh_offset"],
                            h["sh_size"],
                        )
                    )
            sections.sort(key=lambda s: s.addr)
            raw, source = _symbols_from(path, elf, size)
            raw.sort(key=lambda s: (s[0], s[3]))
            symbols = []
            last = None
            for value, ssize, name, _rank in raw:
                if value == last:
                    continue  # an alias of the preferred symbol at this address
                last = value
                symbols.append((value, value + ssize, name))
            return ElfInfo(
                path, str(elf["e_type"]), str(elf["e_machine"]), segments, sections, symbols, source
            )
    except Exception:  # ELFError, struct.error, ValueError, KeyError, OSError... hostile input
        return None


_PT_BY_NAME = {"PT_" + v: k for k, v in PT_NAMES.items()}

_cache: dict[tuple, ElfInfo | None] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256


def load_elf(path: str) -> ElfInfo | None:
    """``parse_elf`` cached per (device, inode, mtime, size)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):  # a mapped device (/dev/dri/...) could block a read
        return None
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    info = parse_elf(path)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = info
    return info


_start = attrgetter("start")


def elf_path(vma) -> str | None:
    """The file behind a VMA if it could be an ELF we can open: an absolute, existing path."""
    p = vma.path
    if not p or not p.startswith("/") or vma.inode == 0 or p.endswith(" (deleted)"):
        return None
    return p


# ---------------------------------------------------------------- VMAs


def describe_vma(vma, *, bias: int | None = None, snapshot=None) -> list[str] | None:
    """Lines naming the ELF segment(s) and sections the VMA maps; None if not ELF-backed.

    Pass the ``snapshot`` the VMA comes from when you have it: the load bias is then
    taken from the file's lowest mapping, which is unambiguous; from one VMA alone a
    page shared by two segments (RELRO after .eh_frame) can be ambiguous.
    """
    try:
        if bias is None and snapshot is not None:
            path = elf_path(vma)
            elf = load_elf(path) if path else None
            if elf is not None:
                bias = Symbolizer()._bias(elf, vma, snapshot)
        return _describe(vma, bias)
    except Exception:
        return None


def _describe(vma, bias: int | None) -> list[str] | None:
    path = elf_path(vma)
    if path is None:
        return None
    elf = load_elf(path)
    if elf is None or not elf.loads:
        return None
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
    from ..procfs.reader import ProcReader

    try:
        data = ProcReader(0, proc_root).read_global("kallsyms")
    except Exception:
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
    """Addresses in one process to ``Symbol``s, with the ELF files cached per inode."""

    def __init__(self) -> None:
        self._bases: tuple[int, dict[str, tuple[int, int, str]]] | None = None

    def _base_vmas(self, snapshot) -> dict[str, tuple[int, int, str]]:
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

    def _bias(self, elf: ElfInfo, vma, snapshot) -> int | None:
        if snapshot is not None:
            base = self._base_vmas(snapshot).get(vma.path)
            if base is not None:
                b = elf.bias_for(*base)
                if b is not None:
                    return b
        return elf.bias_for(vma.start, vma.offset, vma.perms)

    def lookup(self, address: int, vma, snapshot=None) -> Symbol | None:
        """The symbol (or at least the ELF) ``address`` lies in; None if not in an ELF. Never raises."""
        try:
            return self._lookup(address, vma, snapshot)
        except Exception:
            return None

    def _lookup(self, address: int, vma, snapshot) -> Symbol | None:
        if vma is None:
            return None
        path = elf_path(vma)
        if path is None:
            # anonymous memory right after an ELF's last mapping: its .bss
            if snapshot is not None and not vma.path and vma.inode == 0:
                return self._bss(address, vma, snapshot)
            return None
        return self._in_elf(address, vma, path, snapshot)

    def _bss(self, address: int, vma, snapshot) -> Symbol | None:
        i = bisect.bisect_left(snapshot.vmas, vma.start, key=_start) - 1
        if i < 0:
            return None
        prev = snapshot.vmas[i]
        path = elf_path(prev)
        if prev.end != vma.start or path is None:
            return None
        return self._in_elf(address, prev, path, snapshot)

    def _in_elf(self, address: int, vma, path: str, snapshot) -> Symbol | None:
        """``address`` in the ELF file ``path`` that ``vma`` maps (its load bias from ``vma``)."""
        elf = load_elf(path)
        if elf is None:
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

    def symbolize(self, address: int, vma, snapshot=None) -> tuple[str, str] | None:
        """("func+0x12", dso) for a named address, else None."""
        s = self.lookup(address, vma, snapshot)
        if s is None or s.name is None:
            return None
        return s.text, s.dso
