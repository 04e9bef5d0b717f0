"""ELF files, parsed with bounded work: segments, allocated sections, symbol tables, debug files.

Every ELF file comes from a process that may be hostile (vmainspect often
runs as root), so nothing a file declares is trusted with memory or time:

- pyelftools reads the ELF header, program headers and section headers; a
  file declaring more than ``MAX_HEADERS`` of either is refused before any is
  parsed;
- symbol and string tables are read raw (``pread`` of ``sh_size`` bytes,
  never pyelftools' ``data()``, which would inflate an ``SHF_COMPRESSED``
  section) and only up to ``MAX_TABLE`` bytes each;
- a separate debug file is found by build-id (``/usr/lib/debug/.build-id``,
  inside the process's root first) and then accepted only when its own
  build-id is the binary's; or by ``.gnu_debuglink``, accepted only when its
  CRC32 matches, computed in ``CHUNK``-sized reads over at most
  ``MAX_DEBUG_FILE`` bytes (a larger file is not read at all);
- the whole parse of one file stops at ``DEADLINE_S`` seconds (symbols are
  then left out and ``symsource`` says so).

A truncated, corrupt or hostile file is "not an ELF here": ``parse_elf``
returns None for the errors pyelftools and the OS raise on such input
(``ELFError``, ``OSError``, ``struct.error``, ``ValueError``...), and its
symbols are decoded with ``struct.iter_unpack`` into sorted arrays searched
with ``bisect``. Symbols come from ``.symtab``, else the debug file's, else
``.dynsym``. A stripped libc has only ``.dynsym``, where the IFUNC
implementations (``__memset_avx2_...``) are missing: their addresses stay
unnamed rather than being given the name of whatever exported function
precedes them.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ..procfs.mapped import open_in_root
from ..procfs.reader import ProcReader
from .elfinfo import PT_NAMES, SHT_NOBITS, ElfInfo, Section, Segment

DEBUG_ROOT = "/usr/lib/debug"
MAX_HEADERS = 4096  # program or section headers in one file (real files: tens)
MAX_TABLE = 64 << 20  # bytes of one symbol or string table (libxul's .symtab: ~20 MiB)
MAX_NOTE = 4096  # bytes of a build-id note section
MAX_NAME = 4096  # bytes of one symbol name (longer ones are left out)
MAX_DEBUG_FILE = 512 << 20  # a .gnu_debuglink candidate larger than this is not read for its CRC
CHUNK = 1 << 20  # read size for the CRC
DEADLINE_S = 5.0  # one file's parse

_PT_BY_NAME = {"PT_" + v: k for k, v in PT_NAMES.items()}
SHF_ALLOC = 0x2
STT_OBJECT, STT_FUNC, STT_GNU_IFUNC = 1, 2, 10
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00
NT_GNU_BUILD_ID = 3

RawSymbol = tuple[int, int, str, tuple[int, int, int, int]]  # value, size, name, rank


class Hostile(Exception):
    """A file declares more than the limits above allow."""


def _parse_errors() -> tuple[type[BaseException], ...]:
    """What parsing a bad file raises: pyelftools' ELFError (ELFParseError on short reads,
    construct errors wrapped in it), ``Hostile`` (limits above), and from reads and seeks at
    offsets the file declares OSError (EINVAL) and ValueError (an offset past 2**63). These
    were all that 4,000 mutated ELF files raised (tests/unit/test_symbolize.py fuzzes)."""
    from elftools.common.exceptions import ELFError

    return (ELFError, Hostile, OSError, ValueError)


# ---------------------------------------------------------------- raw reads


def _pread(f: IO[bytes], offset: int, size: int, cap: int) -> bytes:
    """``size`` bytes at ``offset``, refused past ``cap``; short at the end of the file."""
    if size < 0 or offset < 0 or size > cap:
        raise Hostile(f"a table of {size} bytes (limit {cap})")
    return os.pread(f.fileno(), size, offset)


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TimeoutError


def _headers(elf: Any) -> tuple[int, int]:
    """(program headers, section headers) the file declares, refused over MAX_HEADERS."""
    nph = elf["e_phnum"]
    nsh = elf["e_shnum"]
    if nsh == 0 and elf["e_shoff"]:
        nsh = elf._get_section_header(0)["sh_size"]  # the extended count (e_shnum overflow)
    if nph > MAX_HEADERS or nsh > MAX_HEADERS:
        raise Hostile(f"{nph} program / {nsh} section headers")
    return nph, nsh


@dataclass(frozen=True)
class _Sec:
    """One section header and its name (pyelftools' section objects are not built: some of their
    constructors follow ``sh_link`` to other sections, which a hostile file can make a cycle)."""

    name: str
    hdr: Any

    def __getitem__(self, key: str) -> Any:
        return self.hdr[key]


def _sections(elf: Any, f: IO[bytes], nsh: int) -> list[_Sec]:
    """The section headers, named from the section-name string table (bounded, NUL-terminated)."""
    hdrs = [elf._get_section_header(i) for i in range(nsh)]
    names = b""
    idx = elf["e_shstrndx"]
    if idx == 0xFFFF and hdrs:  # SHN_XINDEX: the index is in section 0's sh_link
        idx = hdrs[0]["sh_link"]
    if 0 < idx < nsh and hdrs[idx]["sh_type"] != "SHT_NOBITS":
        names = _pread(f, hdrs[idx]["sh_offset"], hdrs[idx]["sh_size"], MAX_TABLE)
    out = []
    for h in hdrs:
        off = h["sh_name"]
        end = names.find(b"\0", off, off + 256) if off < len(names) else -1
        out.append(_Sec(names[off:end].decode("utf-8", "replace") if end >= 0 else "", h))
    return out


def _read_symbols(elf: Any, f: IO[bytes], secs: list[_Sec], sec: _Sec, budget: _Budget) -> list[RawSymbol]:
    """(value, size, name, rank) for the defined function/object symbols of one table."""
    data = _pread(f, sec["sh_offset"], sec["sh_size"], MAX_TABLE)
    link = sec["sh_link"]
    if not 0 < link < len(secs) or secs[link]["sh_type"] == "SHT_NOBITS":
        return []
    strs = _pread(f, secs[link]["sh_offset"], secs[link]["sh_size"], MAX_TABLE)
    le = elf.little_endian
    if elf.elfclass == 64:
        fmt, ent = ("<" if le else ">") + "IBBHQQ", 24
    else:
        fmt, ent = ("<" if le else ">") + "IIIBBH", 16
    usable = len(data) - len(data) % ent
    out = []
    wide = elf.elfclass == 64
    nstrs = len(strs)
    for k, rec in enumerate(struct.iter_unpack(fmt, data[:usable])):
        if not k & 0xFFFF:
            budget.check()
        if wide:
            name_off, info, _other, shndx, value, size = rec
        else:
            name_off, value, size, info, _other, shndx = rec
        typ = info & 0xF
        if typ not in (STT_FUNC, STT_OBJECT, STT_GNU_IFUNC) or value == 0:
            continue
        if shndx == SHN_UNDEF or shndx >= SHN_LORESERVE or name_off >= nstrs:
            continue
        end = strs.find(b"\0", name_off, name_off + MAX_NAME)
        if end <= name_off:
            continue
        name = strs[name_off:end].decode("utf-8", "replace")
        bind = info >> 4
        # prefer sized, global/weak, functions, then the shorter name
        rank = (0 if size else 1, 0 if bind in (1, 2) else 1, 0 if typ != STT_OBJECT else 1, len(name))
        out.append((value, size, name, rank))
    return out


def _table(secs: list[_Sec], kind: str) -> _Sec | None:
    for sec in secs:
        if sec["sh_type"] == kind:
            return sec
    return None


def build_id(elf: Any, f: IO[bytes], secs: list[_Sec]) -> str | None:
    """The NT_GNU_BUILD_ID note's bytes in hex, from the file's SHT_NOTE sections."""
    order = ">" if not elf.little_endian else "<"
    for sec in secs:
        if sec["sh_type"] != "SHT_NOTE" or sec["sh_size"] > MAX_NOTE:
            continue
        raw = _pread(f, sec["sh_offset"], sec["sh_size"], MAX_NOTE)
        pos = 0
        while pos + 12 <= len(raw):
            namesz, descsz, ntype = struct.unpack_from(order + "III", raw, pos)
            name_end = pos + 12 + ((namesz + 3) & ~3)
            desc_end = name_end + ((descsz + 3) & ~3)
            if desc_end > len(raw):
                break
            if (
                ntype == NT_GNU_BUILD_ID
                and raw[pos + 12 : pos + 12 + namesz].rstrip(b"\0") == b"GNU"
                and descsz
            ):
                return raw[name_end : name_end + descsz].hex()
            pos = desc_end
    return None


def crc32_file(fd: int, limit: int = MAX_DEBUG_FILE, budget: _Budget | None = None) -> int | None:
    """CRC32 of a whole file read in CHUNK-sized pieces; None if it is larger than ``limit``.
    ``budget``: TimeoutError once the parse's time is up (checked between chunks)."""
    if os.fstat(fd).st_size > limit:
        return None
    crc, pos = 0, 0
    while True:
        if budget is not None:
            budget.check()
        chunk = os.pread(fd, CHUNK, pos)
        if not chunk:
            return crc & 0xFFFFFFFF
        pos += len(chunk)
        if pos > limit:  # the file grew while read
            return None
        crc = zlib.crc32(chunk, crc)


# ---------------------------------------------------------------- debug files


@dataclass(frozen=True)
class Where:
    """Where a binary lives, to find its debug files: the process (its root) and the path it maps."""

    reader: ProcReader | None  # the process (its root), or None: this process's view only
    path: str  # as in maps, " (deleted)" removed


def _debug_elf(
    where: Where, elf: Any, f: IO[bytes], secs: list[_Sec], budget: _Budget
) -> tuple[list[RawSymbol], str] | None:
    """Symbols of the binary's separate debug file, by build-id then .gnu_debuglink."""
    bid = build_id(elf, f, secs)
    if bid and len(bid) > 2:
        fd = open_in_root(where.reader, f"{DEBUG_ROOT}/.build-id/{bid[:2]}/{bid[2:]}.debug")
        if fd is not None:
            got = _symtab_of(fd, budget, lambda d, df, ds: build_id(d, df, ds) == bid)
            if got:
                return got, f".symtab of {DEBUG_ROOT}/.build-id/{bid[:2]}/{bid[2:]}.debug"
    link = next((s for s in secs if s.name == ".gnu_debuglink"), None)
    if link is None:
        return None
    raw = _pread(f, link["sh_offset"], link["sh_size"], MAX_NOTE)
    name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    if not name or "/" in name or len(raw) < 8:
        return None
    want = struct.unpack_from("<I" if elf.little_endian else ">I", raw, len(raw) - 4)[0]
    d = os.path.dirname(where.path)
    for cand in (os.path.join(d, name), os.path.join(d, ".debug", name), DEBUG_ROOT + os.path.join(d, name)):
        if cand == where.path:
            continue
        fd = open_in_root(where.reader, cand)
        if fd is None:
            continue
        try:
            ok = crc32_file(fd, budget=budget) == want
        except OSError:
            ok = False
        except TimeoutError:
            os.close(fd)
            raise
        if not ok:
            os.close(fd)
            continue
        got = _symtab_of(fd, budget, None)
        if got:
            return got, f".symtab of {cand}"
    return None


def _symtab_of(
    fd: int, budget: _Budget, accept: Callable[[Any, IO[bytes], list[_Sec]], bool] | None
) -> list[RawSymbol] | None:
    """The .symtab symbols of the debug file open on ``fd`` (closed here), if ``accept`` says it fits."""
    from elftools.elf.elffile import ELFFile

    with open(fd, "rb") as f:
        try:
            if f.read(4) != b"\x7fELF":
                return None
            f.seek(0)
            delf = ELFFile(f)
            secs = _sections(delf, f, _headers(delf)[1])
            if accept is not None and not accept(delf, f, secs):
                return None
            sec = _table(secs, "SHT_SYMTAB")
            return _read_symbols(delf, f, secs, sec, budget) if sec is not None else None
        except _parse_errors():
            return None


# ---------------------------------------------------------------- the parse


def _symbols_from(
    where: Where | None, elf: Any, f: IO[bytes], secs: list[_Sec], budget: _Budget
) -> tuple[list[RawSymbol], str]:
    sec = _table(secs, "SHT_SYMTAB")
    if sec is not None:
        syms = _read_symbols(elf, f, secs, sec, budget)
        if syms:
            return syms, ".symtab"
    if where is not None:
        got = _debug_elf(where, elf, f, secs, budget)
        if got is not None:
            return got
    sec = _table(secs, "SHT_DYNSYM")
    if sec is not None:
        syms = _read_symbols(elf, f, secs, sec, budget)
        if syms:
            return syms, ".dynsym"
    return [], "none"


def parse_elf_fd(fd: int, path: str, where: Where | None = None) -> ElfInfo | None:
    """Parse the file open on ``fd`` (not closed here); None if it is not a sane ELF file."""
    from elftools.elf.elffile import ELFFile

    budget = _Budget(DEADLINE_S)
    try:
        with open(fd, "rb", closefd=False) as f:
            if f.read(4) != b"\x7fELF":
                return None
            f.seek(0)
            elf = ELFFile(f)
            nph, nsh = _headers(elf)
            segments = []
            for i in range(nph):
                h = elf._get_segment_header(i)
                t = h["p_type"]
                t = t if isinstance(t, int) else _PT_BY_NAME.get(t, -1)
                segments.append(
                    Segment(t, h["p_flags"], h["p_offset"], h["p_vaddr"], h["p_filesz"], h["p_memsz"])
                )
            secs = _sections(elf, f, nsh)
            sections = []
            for sec in secs:
                h = sec.hdr
                if h["sh_flags"] & SHF_ALLOC and h["sh_size"]:
                    t = h["sh_type"]
                    sections.append(
                        Section(
                            sec.name,
                            SHT_NOBITS if t == "SHT_NOBITS" else 1,
                            h["sh_flags"],
                            h["sh_addr"],
                            h["sh_offset"],
                            h["sh_size"],
                        )
                    )
            sections.sort(key=lambda s: s.addr)
            try:
                raw, source = _symbols_from(where, elf, f, secs, budget)
            except TimeoutError:
                raw, source = [], f"none (gave up after {DEADLINE_S:g} s)"
            except Hostile as e:
                raw, source = [], f"none ({e})"
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
    except _parse_errors():
        return None


def parse_elf(path: str) -> ElfInfo | None:
    """Parse the regular file at ``path`` (this process's view); None if not a sane ELF file."""
    fd = open_in_root(None, path)
    if fd is None:
        return None
    try:
        return parse_elf_fd(fd, path, Where(None, path))
    finally:
        os.close(fd)


_cache: dict[tuple[int, int, int, int], ElfInfo | None] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256


def load_elf_fd(fd: int, path: str, where: Where | None) -> ElfInfo | None:
    """``parse_elf_fd`` cached per (device, inode, mtime, size) of the open file."""
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    info = parse_elf_fd(fd, path, where)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = info
    return info


def load_elf(path: str) -> ElfInfo | None:
    """``load_elf_fd`` on a path as this process sees it (tests, tools): None if not a regular ELF file."""
    fd = open_in_root(None, path)
    if fd is None:
        return None
    try:
        return load_elf_fd(fd, path, Where(None, path))
    finally:
        os.close(fd)
