"""Separate debug files (.gnu_debuglink) and files that declare more than they should.

A debug file is accepted only when its CRC matches, computed in bounded reads;
a huge (sparse) candidate is not read at all; a table declared larger than
the limits is refused. Memory is measured in a child process (ru_maxrss), so
what a hostile file costs is a number, not a feeling.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import pytest

from vmainspect.faults import elf

PROG = r"""
__attribute__((noinline)) int debug_only_function(int x) { return x * 3 + 1; }
int main(int argc, char **argv) { (void)argv; return debug_only_function(argc); }
"""


def _tools() -> None:
    for tool in ("gcc", "objcopy", "strip"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")


@pytest.fixture
def stripped(tmp_path):
    """A stripped executable with .gnu_debuglink naming prog.debug beside it (no build-id)."""
    _tools()
    src = tmp_path / "prog.c"
    src.write_text(PROG)
    exe = tmp_path / "prog"
    subprocess.run(
        ["gcc", "-O1", "-g", "-Wl,--build-id=none", "-o", str(exe), str(src)], check=True, capture_output=True
    )
    dbg = tmp_path / "prog.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(dbg)], check=True, capture_output=True)
    subprocess.run(["strip", "--strip-all", str(exe)], check=True, capture_output=True)
    subprocess.run(
        ["objcopy", f"--add-gnu-debuglink={dbg}", str(exe)], check=True, capture_output=True, cwd=tmp_path
    )
    elf._cache.clear()
    return exe, dbg


def _child_parse(path) -> tuple[int, str]:
    """(max RSS in KiB, symsource) of a fresh process that parses ``path``."""
    code = (
        "import resource, sys\n"
        "from vmainspect.faults.elf import parse_elf\n"
        "info = parse_elf(sys.argv[1])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, info.symsource if info else None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    rss, source = out.stdout.split(" ", 1)
    return int(rss), source.strip()


def _baseline_rss() -> int:
    return _child_parse("/nonexistent")[0]


def test_debuglink_with_the_right_crc_gives_the_symbols(stripped):
    exe, dbg = stripped
    info = elf.parse_elf(str(exe))
    assert info is not None and info.symsource == f".symtab of {dbg}"
    assert "debug_only_function" in info.names


def test_debuglink_with_another_crc_is_refused(stripped):
    exe, dbg = stripped
    data = bytearray(dbg.read_bytes())
    data[-1] ^= 0xFF  # same file but one byte: another CRC
    dbg.write_bytes(bytes(data))
    info = elf.parse_elf(str(exe))
    assert info is not None and "debug_only_function" not in info.names
    assert info.symsource in (".dynsym", "none")


def test_sparse_3_gib_debuglink_file_is_not_read(stripped):
    """The file the debuglink names is 3 GiB (sparse): over the cap, so not a byte of it is read."""
    exe, dbg = stripped
    dbg.unlink()
    with open(dbg, "wb") as f:
        f.truncate(3 << 30)
    fd = os.open(dbg, os.O_RDONLY)
    try:
        assert elf.crc32_file(fd) is None
    finally:
        os.close(fd)
    base = _baseline_rss()
    rss, source = _child_parse(exe)
    assert source in (".dynsym", "none")
    assert rss - base < 32 << 10, (rss, base)  # KiB: far below the file's 3 GiB


def test_debuglink_file_under_the_cap_is_read_in_chunks(stripped, monkeypatch):
    """A sparse file just under the cap costs one chunk of memory, not its size."""
    exe, dbg = stripped
    dbg.unlink()
    with open(dbg, "wb") as f:
        f.truncate(elf.MAX_DEBUG_FILE - elf.CHUNK)
    base = _baseline_rss()
    rss, source = _child_parse(exe)
    # read to the end (no match), or given up at the per-file deadline on a slow machine
    assert source in (".dynsym", "none") or source.startswith("none (gave up after"), source
    assert rss - base < 32 << 10, (rss, base)


def test_crc_is_computed_streaming_and_equals_zlib(tmp_path):
    import zlib

    p = tmp_path / "blob"
    data = os.urandom(3 * elf.CHUNK + 12345)
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    try:
        assert elf.crc32_file(fd) == zlib.crc32(data) & 0xFFFFFFFF
        assert elf.crc32_file(fd, limit=len(data) - 1) is None
    finally:
        os.close(fd)


def _section_header_offsets(path: str) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        e = ELFFile(f)
        return {s.name: e["e_shoff"] + i * e["e_shentsize"] for i, s in enumerate(e.iter_sections())}


def test_a_table_declared_gigabytes_long_is_refused(tmp_path):
    """.dynsym says 2 GiB (the file is sparse to match): refused, not read; the headers still parse."""
    src = os.path.realpath("/bin/true")
    p = tmp_path / "huge.so"
    shutil.copy(src, p)
    off = _section_header_offsets(str(p))[".dynsym"]
    with open(p, "r+b") as f:
        f.seek(off + 32)  # Elf64_Shdr.sh_size
        f.write(struct.pack("<Q", 2 << 30))
        f.truncate(3 << 30)
    base = _baseline_rss()
    rss, source = _child_parse(p)
    assert source.startswith("none (a table of"), source
    assert rss - base < 32 << 10, (rss, base)


def test_too_many_headers_is_not_an_elf(tmp_path):
    src = os.path.realpath("/bin/true")
    p = tmp_path / "many.so"
    shutil.copy(src, p)
    with open(p, "r+b") as f:
        f.seek(0x3C)  # e_shnum
        f.write(struct.pack("<H", 0xFFF0))
    assert elf.parse_elf(str(p)) is None


def test_section_names_without_nul_cost_no_more_than_the_table(tmp_path):
    """A section-name table with no NUL in a large file: names are cut, the file is not scanned."""
    src = os.path.realpath("/bin/true")
    p = tmp_path / "names.so"
    shutil.copy(src, p)
    from elftools.elf.elffile import ELFFile

    with open(p, "rb") as f:
        e = ELFFile(f)
        sh = e.get_section(e["e_shstrndx"])
        off, size = sh["sh_offset"], sh["sh_size"]
    with open(p, "r+b") as f:
        f.seek(off)
        f.write(b"A" * size)
        f.seek(0, 2)
        f.write(b"A" * (64 << 20))  # 64 MiB with no NUL after the table
    info = elf.parse_elf(str(p))
    assert info is not None and all(s.name == "" for s in info.sections)
