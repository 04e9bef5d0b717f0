"""Symbolization on real ELF files (the Python binary, libpython, libc) and on hostile ones.

Known addresses come from a spawned process itself (ctypes: the dynamic
linker's answer for a symbol), and must come back as the same names.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from targets import spawn_target

from vmainspect.faults import elf
from vmainspect.faults.elf import ElfInfo, load_elf, parse_elf
from vmainspect.faults.symbolize import NOT_REACHABLE, Symbol, Symbolizer, describe_vma
from vmainspect.snapshot.collect import collect

CODE = """
libc.memset.restype = ctypes.c_void_p
def at(f):
    return ctypes.cast(f, ctypes.c_void_p).value
report["memset"] = at(libc.memset)
report["getpid"] = at(libc.getpid)
report["environ"] = ctypes.addressof(ctypes.c_void_p.in_dll(libc, "environ"))
report["PyLong_FromLong"] = at(ctypes.pythonapi.PyLong_FromLong)
report["Py_OptimizeFlag"] = ctypes.addressof(ctypes.c_int.in_dll(ctypes.pythonapi, "Py_OptimizeFlag"))
"""

MEMSET_FAMILY = ("memset", "__memset_")


@pytest.fixture(scope="module")
def proc():
    with spawn_target(CODE) as t:
        yield t, collect(t.pid)


def _lookup(snap, addr, sym=None):
    return (sym or Symbolizer()).lookup(addr, snap.vma_at(addr), snap)


def _has_libc_debug(snap, addr) -> bool:
    elf = load_elf(snap.vma_at(addr).path)
    return elf is not None and elf.symsource != ".dynsym"


def test_libc_functions(proc):
    t, snap = proc
    s = _lookup(snap, t.report["getpid"])
    assert s.name == "getpid" and s.offset == 0 and s.dso.endswith("/libc.so.6")
    m = _lookup(snap, t.report["memset"])
    assert m.dso.endswith("/libc.so.6")
    if _has_libc_debug(snap, t.report["memset"]):
        # the IFUNC implementation the dynamic linker chose, e.g. __memset_avx2_unaligned_erms
        assert m.name.startswith(MEMSET_FAMILY), m
        assert m.offset == 0
    else:
        assert m.name is None or m.name.startswith(MEMSET_FAMILY)


def test_ifunc_implementation_is_never_misnamed_without_debug_symbols(proc, monkeypatch):
    t, snap = proc
    monkeypatch.setattr(elf, "DEBUG_ROOT", "/nonexistent")
    monkeypatch.setattr(elf, "_cache", {})
    m = _lookup(snap, t.report["memset"])
    # .dynsym has no __memset_avx2_*: unnamed, not the exported function that precedes it
    assert m is not None and (m.name is None or m.name.startswith(MEMSET_FAMILY))
    if m.name is None:
        assert m.text.startswith("libc.so.6+0x")
    assert _lookup(snap, t.report["getpid"]).name == "getpid"


def test_libpython_function_and_data(proc):
    t, snap = proc
    s = _lookup(snap, t.report["PyLong_FromLong"])
    assert s.name == "PyLong_FromLong" and s.offset == 0
    assert "python" in os.path.basename(s.dso)
    d = _lookup(snap, t.report["Py_OptimizeFlag"])
    assert d.name == "Py_OptimizeFlag" and d.offset == 0
    inside = _lookup(snap, t.report["PyLong_FromLong"] + 5)
    assert inside.name == "PyLong_FromLong" and inside.offset == 5 and inside.text == "PyLong_FromLong+0x5"


def test_bss_object_in_the_anonymous_vma_after_the_file(proc):
    t, snap = proc
    addr = t.report["environ"]
    vma = snap.vma_at(addr)
    d = _lookup(snap, addr)
    assert d is not None and d.name == "environ" and d.dso.endswith("/libc.so.6")
    if vma.path is None:  # .bss past the file's last page: the anonymous VMA after it
        assert Symbolizer().lookup(addr, vma, None) is None  # needs the snapshot to find the ELF


def test_describe_vma_names_segments_and_sections(proc):
    t, snap = proc
    text = snap.vma_at(t.report["getpid"])
    lines = describe_vma(text, snapshot=snap)
    assert lines[0].startswith("ELF PIE executable or shared library")
    assert any(line.startswith("segment LOAD r-x") for line in lines)
    assert any(line.startswith("section .text ") for line in lines)
    assert not any(line.startswith("section .data ") for line in lines)
    # the libc mapping holding .data, and nothing executable there
    libc = [v for v in snap.vmas if v.path == text.path]
    data = [describe_vma(v, snapshot=snap) for v in libc if v.perms == "rw-p"]
    assert data and any(any(line.startswith("section .data ") for line in d) for d in data)
    anon = next(v for v in snap.vmas if v.path is None)
    assert describe_vma(anon) is None
    stack = next(v for v in snap.vmas if v.path == "[stack]")
    assert describe_vma(stack) is None


def test_relro_page_shared_with_the_previous_segment(proc):
    """Two r--p VMAs at the same file offset: the bias from the file's first mapping tells them apart."""
    _t, snap = proc
    exe = os.path.realpath(snap.process.exe or "")
    vmas = [v for v in snap.vmas if v.path == exe]
    pairs = [
        (a, b) for a, b in itertools.pairwise(vmas) if a.offset == b.offset and a.perms == b.perms == "r--p"
    ]
    if not pairs:
        pytest.skip("this Python binary has no page shared by two segments")
    first, relro = pairs[0]
    a = describe_vma(first, snapshot=snap)
    b = describe_vma(relro, snapshot=snap)
    assert any(line.startswith("segment LOAD r-- ") for line in a)
    assert not any("GNU_RELRO" in line for line in a)
    assert any(line.startswith("segment LOAD rw- ") for line in b)
    assert any(line.startswith("segment GNU_RELRO") for line in b)
    # from the VMA alone it cannot be told: said so, not guessed silently
    assert not any(line.startswith("note:") for line in b)
    assert describe_vma(relro)[-1].startswith("note: this file page belongs to two segments")


def test_non_pie_executable(tmp_path):
    """/usr/bin/python3 on Debian is ET_EXEC: loaded at its link addresses, bias 0."""
    exe = shutil.which("python3", path="/usr/bin")
    if exe is None:
        pytest.skip("no /usr/bin/python3")
    elf = parse_elf(os.path.realpath(exe))
    if elf is None or elf.etype != "ET_EXEC":
        pytest.skip("/usr/bin/python3 is not a non-PIE executable here")
    code = (
        "import ctypes, os, signal\n"
        "print(ctypes.cast(ctypes.pythonapi.PyLong_FromLong, ctypes.c_void_p).value, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGSTOP)\n"
    )
    p = subprocess.Popen([exe, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        addr = int(p.stdout.readline())
        snap = collect(p.pid)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    vma = snap.vma_at(addr)
    s = Symbolizer().lookup(addr, vma, snap)
    assert s.name == "PyLong_FromLong" and s.offset == 0
    if os.path.realpath(vma.path) == os.path.realpath(exe):
        assert s.vaddr == addr  # bias 0
        assert describe_vma(vma, snapshot=snap)[0].startswith("ELF executable (not PIE")


# ---------------------------------------------------------------- hostile files


def _small_elf() -> bytes:
    for cand in ("/bin/true", "/usr/bin/true"):
        if os.path.exists(cand):
            with open(cand, "rb") as f:
                return f.read()
    pytest.skip("no small ELF on this system")


SEED = None


def _seed() -> bytes:
    global SEED
    if SEED is None:
        SEED = _small_elf()
    return SEED


def _fake_vma(path: str, perms="r-xp", offset=0x1000, inode=None, dev=None):
    """A VMA mapping ``path``: its device and inode are the file's own unless given."""
    if inode is None or dev is None:
        try:
            st = os.stat(path)
            inode = st.st_ino if inode is None else inode
            dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}" if dev is None else dev
        except (OSError, TypeError, ValueError):
            inode, dev = 1 if inode is None else inode, "00:00" if dev is None else dev
    return SimpleNamespace(
        start=0x555500001000, end=0x555500003000, perms=perms, offset=offset, inode=inode, path=path, dev=dev
    )


def _check_hostile(data: bytes) -> None:
    """The documented outcome on any file: parse_elf gives an ElfInfo or None; lookups a Symbol or
    None; describe_vma lines or None. Nothing raises (only the errors pyelftools and the OS raise on
    bad input are caught inside, so anything else fails here)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.so")
        with open(path, "wb") as f:
            f.write(data)
        info = parse_elf(path)
        assert info is None or isinstance(info, ElfInfo)
        elf._cache.clear()
        for perms, off in (("r-xp", 0x1000), ("r--p", 0), ("rw-p", 0x3000)):
            vma = _fake_vma(path, perms, off)
            lines = describe_vma(vma)
            assert lines is None or all(isinstance(x, str) for x in lines)
            s = Symbolizer().lookup(0x555500001100, vma)
            assert s is None or (isinstance(s, Symbol) and s.reason is None and isinstance(s.text, str))
        if info is not None:
            info.symbol_at(0x1100)
            info.section_at(0x1100)


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data):
    _check_hostile(b"\x7fELF" + data)


@FUZZ
@given(st.integers(min_value=0, max_value=1 << 20))
def test_truncated_elf_never_crashes(n):
    seed = _seed()
    _check_hostile(seed[: n % (len(seed) + 1)])


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(0, 255)), min_size=1, max_size=16
    )
)
def test_byte_flips_never_crash(flips):
    data = bytearray(_seed())
    for pos, val in flips:
        data[pos % 4096 if pos % 3 else pos % len(data)] = val  # mostly headers
    _check_hostile(bytes(data))


def test_a_file_that_is_not_an_elf_is_none(tmp_path):
    p = tmp_path / "text"
    p.write_bytes(b"hello world\n" * 100)
    assert parse_elf(str(p)) is None
    assert Symbolizer().lookup(0x555500001100, _fake_vma(str(p))) is None
    assert describe_vma(_fake_vma(str(p))) is None


def test_missing_files_and_pseudo_paths_are_unsymbolized():
    for path in ("[heap]", None, "relative/lib.so"):
        vma = _fake_vma(path)
        assert describe_vma(vma) is None
        assert Symbolizer().lookup(0x555500001100, vma) is None


def test_a_file_that_is_not_the_mapped_one_is_never_read():
    """Same path, another inode (a container's binary, a replaced file): not reachable, not misnamed."""
    true = os.path.realpath("/bin/true")
    for vma in (_fake_vma(true, inode=1), _fake_vma(true, dev="ff:ff"), _fake_vma("/nonexistent/lib.so")):
        s = Symbolizer().lookup(0x555500001100, vma)
        assert s is not None and s.name is None and s.reason == NOT_REACHABLE
        assert s.text == "[unknown: file not reachable]"
        assert describe_vma(vma)[0].startswith("ELF details unavailable: file not reachable")
    # and the right inode is read
    assert Symbolizer().lookup(0x555500001100, _fake_vma(true)).reason is None


def test_elf_cache_reuses_the_parse():
    path = os.path.realpath("/bin/true")
    assert load_elf(path) is load_elf(path)
