"""procfs.parse on captured /proc bytes (tests/unit/fixtures) and hand-made input."""

from __future__ import annotations

import os

import pytest

from vmainspect.errors import BadInput
from vmainspect.model import (
    KIND_ANON_PRIVATE,
    KIND_ANON_SHARED,
    KIND_DELETED,
    KIND_FILE_PRIVATE,
    KIND_FILE_SHARED,
    KIND_GUARD,
    KIND_HEAP,
    KIND_HUGETLB,
    KIND_SHM,
    KIND_STACK,
    KIND_VDSO,
    KIND_VSYSCALL,
    KIND_VVAR,
    Fields,
    Vma,
    replace,
)
from vmainspect.procfs import parse
from vmainspect.procfs.parse import (
    VMFLAG_MEANINGS,
    ParseError,
    describe_flag,
    field_key,
    parse_btime,
    parse_cmdline,
    parse_smaps,
    parse_smaps_fields,
    parse_stat,
    parse_status_uid,
    vma_kind,
)

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name: str) -> bytes:
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


def naive_blocks(data: bytes) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Independent reading of smaps text: (header, {name: raw value}, flags line)."""
    out = []
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        if not line:
            continue
        head = line.split(" ", 1)[0]
        if "-" in head and not head.endswith(":"):
            out.append((line, {}, ""))
        elif line.startswith("VmFlags:"):
            h, f, _ = out[-1]
            out[-1] = (h, f, line)
        else:
            name, _, value = line.partition(":")
            out[-1][1][name] = value.strip()
    return out


# ------------------------------------------------------------------ smaps


@pytest.fixture(scope="module")
def known() -> list[Vma]:
    return parse_smaps(fixture("known_smaps"))


def test_every_block_becomes_a_vma_in_address_order(known):
    blocks = naive_blocks(fixture("known_smaps"))
    assert len(known) == len(blocks) > 20
    starts = [v.start for v in known]
    assert starts == sorted(starts)
    for v, (header, _, _) in zip(known, blocks):
        rng, perms, off, dev, ino = header.split()[:5]
        s, e = rng.split("-")
        assert (v.start, v.end, v.perms, v.offset, v.dev, v.inode) == (
            int(s, 16),
            int(e, 16),
            perms,
            int(off, 16),
            dev,
            int(ino),
        )


def test_every_field_in_bytes_and_snake_case(known):
    for v, (_, fields, flags_line) in zip(known, naive_blocks(fixture("known_smaps"))):
        expected = {}
        for name, raw in fields.items():
            number, *unit = raw.split()
            expected[field_key(name)] = int(number) * (1024 if unit == ["kB"] else 1)
        assert dict(v.smaps) == expected
        assert v.smaps["size"] == v.end - v.start
        assert v.flags == tuple(flags_line.split()[1:])
    sample = known[0].smaps
    for key in (
        "rss",
        "pss",
        "pss_dirty",
        "shared_clean",
        "shared_dirty",
        "private_clean",
        "private_dirty",
        "referenced",
        "anonymous",
        "ksm",
        "lazy_free",
        "anon_huge_pages",
        "swap",
        "swap_pss",
        "locked",
        "thp_eligible",
        "kernel_page_size",
        "mmu_page_size",
    ):
        assert key in sample, key
    assert sample["kernel_page_size"] == 4096


def test_paths_kinds_and_odd_names(known):
    by_path = {v.path: v for v in known if v.path and not v.perms.startswith("---")}
    spaced = [p for p in by_path if p.endswith("/private file (copy).bin")]
    assert len(spaced) == 1 and by_path[spaced[0]].kind == KIND_FILE_PRIVATE
    assert " fixture " in spaced[0]  # the directory name has spaces too
    deleted = [v for v in known if v.path and v.path.endswith("gone soon.bin (deleted)")]
    assert len(deleted) == 1 and deleted[0].kind == KIND_DELETED
    shared = [v for v in known if v.path and v.path.endswith("/shared.bin")]
    assert shared[0].kind == KIND_FILE_SHARED and shared[0].perms == "rw-s"
    assert by_path["/SYSV00000000 (deleted)"].kind == KIND_SHM
    assert by_path["/dev/zero (deleted)"].kind == KIND_ANON_SHARED
    assert by_path["/memfd:vmainspect-memfd (deleted)"].kind == KIND_FILE_SHARED
    assert by_path["[heap]"].kind == KIND_HEAP
    assert by_path["[stack]"].kind == KIND_STACK
    assert by_path["[vdso]"].kind == KIND_VDSO
    assert by_path["[vvar]"].kind == KIND_VVAR
    assert by_path["[vvar_vclock]"].kind == KIND_VVAR
    assert by_path["[vsyscall]"].kind == KIND_VSYSCALL
    anon = [v for v in known if v.path is None]
    assert anon and all(v.inode == 0 for v in anon)
    assert {v.kind for v in anon} == {KIND_ANON_PRIVATE, KIND_GUARD}
    fences = [v for v in known if v.path == "/dev/zero (deleted)" and v.perms == "---s"]
    assert fences and all(v.kind == KIND_GUARD for v in fences)  # no permissions wins over the path
    assert all(v.kind == KIND_GUARD for v in anon if v.perms.startswith("---"))


def test_fast_path_equals_general_path():
    for name in ("known_smaps", "handmade_smaps"):
        data = fixture(name)
        lines = data.split(b"\n")
        lines.pop()
        assert parse._parse_general(lines) == parse_smaps(data), name
    assert parse._parse_columnar(fixture("known_smaps")) is not None  # the fast path was used
    assert parse._parse_columnar(fixture("handmade_smaps")) is None  # blocks differ: general


def test_handmade_unknown_fields_are_kept():
    vmas = parse_smaps(fixture("handmade_smaps"))
    assert len(vmas) == 3
    a, b, c = vmas
    assert a.path == "/usr/bin/with space/odd name (deleted)" and a.kind == KIND_DELETED
    assert a.smaps["future_thing"] == 12 * 1024  # new kB field: bytes
    assert a.smaps["future_count"] == 7  # new plain field: as is
    assert a.smaps["thp_eligible"] == 0
    assert a.flags == ("rd", "ex", "mr", "mw", "me", "zz")
    assert b.path == "[anon:my buffer]" and b.kind == KIND_ANON_PRIVATE
    assert b.smaps == {
        "size": 12288,
        "rss": 8192,
        "pss": 8192,
        "private_dirty": 8192,
        "anonymous": 8192,
        "swap": 4096,
    }
    assert c.path is None and c.kind == KIND_GUARD and c.flags == ("mr", "mw", "me")


def test_unknown_field_on_the_fast_path():
    block = (
        b"00400000-00401000 r--p 00000000 08:02 17 /bin/x\n"
        b"Size:                  4 kB\nBrandNewField:        8 kB\nNewCount:       3\n"
        b"VmFlags: rd mr \n"
    )
    data = block + block.replace(b"00400000-00401000", b"00401000-00402000")
    assert parse._parse_columnar(data) is not None
    vmas = parse_smaps(data)
    assert [v.smaps for v in vmas] == [{"size": 4096, "brand_new_field": 8192, "new_count": 3}] * 2


def test_a_block_with_one_more_field_falls_back_and_still_parses():
    one = (
        b"00400000-00401000 r--p 00000000 08:02 17 /bin/x\n"
        b"Size:                  4 kB\nRss:                   4 kB\nVmFlags: rd \n"
    )
    two = (
        b"00401000-00402000 r--p 00000000 08:02 17 /bin/x\n"
        b"Size:                  4 kB\nRss:                   4 kB\nPss:                   2 kB\n"
        b"VmFlags: rd \n"
    )
    # same line count per block would be required by the fast path: it must notice
    assert parse._parse_columnar(one + two) is None
    assert [v.smaps for v in parse_smaps(one + two)] == [
        {"size": 4096, "rss": 4096},
        {"size": 4096, "rss": 4096, "pss": 2048},
    ]
    swapped = two.replace(
        b"Rss:                   4 kB\nPss:                   2 kB",
        b"Pss:                   2 kB\nRss:                   4 kB",
    )
    assert parse._parse_columnar(two + swapped) is None
    assert parse_smaps(two + swapped)[1].smaps == {"size": 4096, "pss": 2048, "rss": 4096}


def test_path_containing_vmflags_text_does_not_confuse_the_fast_path():
    block = (
        b"00400000-00401000 r--p 00000000 08:02 17 /tmp/VmFlags: rd wr \n"
        b"Size:                  4 kB\nVmFlags: rd mr \n"
    )
    vmas = parse_smaps(block * 1 + block.replace(b"00400000-00401000", b"00401000-00402000"))
    assert [v.path for v in vmas] == ["/tmp/VmFlags: rd wr "] * 2
    assert [v.flags for v in vmas] == [("rd", "mr")] * 2


def test_empty_and_bad_input():
    assert parse_smaps(b"") == []
    with pytest.raises(ParseError):
        parse_smaps(b"Rss: 4 kB\n")  # a field before any header
    with pytest.raises(ParseError):
        parse_smaps(b"this is not smaps\n")
    with pytest.raises(BadInput):  # ParseError is a BadInput: exit code 2
        parse_smaps(b"00400000-00401000 r--p zz 08:02 17\nSize: 4 kB\nVmFlags: rd \n")
    for bad in (b"0x400000-00401000", b"00400000-", b"1_000-2000", b"00400000+00401000", b"g0-10"):
        with pytest.raises(ParseError):
            parse_smaps(bad + b" r--p 00000000 08:02 17 /x\nSize: 4 kB\nVmFlags: rd \n")


def test_truncated_last_block_keeps_what_is_there():
    data = fixture("known_smaps")
    cut = data[: data.rindex(b"\nRss:") + 1]  # the last block loses all fields from Rss on
    vmas = parse_smaps(cut)
    assert len(vmas) == len(parse_smaps(data))
    assert "rss" not in vmas[-1].smaps and vmas[-1].flags == ()


def test_vmas_are_real_frozen_structs(known):
    v = known[0]
    same = Vma(**{name: getattr(v, name) for name in Vma.__struct_fields__})
    assert same == v and hash(same) == hash(v)  # hashable: no mutable dict inside
    assert replace(v, pages=None) == v
    with pytest.raises(AttributeError):
        v.start = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.smaps["rss"] = 0  # type: ignore[index]
    assert dict(v.smaps) == v.smaps and isinstance(v.smaps, Fields)


def test_with_pages_equals_replace(known):
    from vmainspect.model import PageCounts, PageInfo, PageRun

    infos = [
        PageInfo(
            PageCounts(i, 0, 0, i, 0, None, None, None, None, None), (PageRun(0, v.npages(4096), "absent"),)
        )
        for i, v in enumerate(known)
    ]
    got = parse.with_pages(known, infos)
    assert got == [replace(v, pages=p) for v, p in zip(known, infos)]
    assert all(type(v) is Vma for v in got) and known[0].pages is None  # originals untouched


# ------------------------------------------------------------------ names, kinds, flags


@pytest.mark.parametrize(
    "name,key",
    [
        ("Rss", "rss"),
        ("Pss_Dirty", "pss_dirty"),
        ("Shared_Clean", "shared_clean"),
        ("KSM", "ksm"),
        ("AnonHugePages", "anon_huge_pages"),
        ("THPeligible", "thp_eligible"),
        ("ProtectionKey", "protection_key"),
        ("MMUPageSize", "mmu_page_size"),
        ("SwapPss", "swap_pss"),
        ("LazyFree", "lazy_free"),
        ("FilePmdMapped", "file_pmd_mapped"),
        ("BrandNewThing", "brand_new_thing"),
        ("Foo_BAR", "foo_bar"),
        (b"Private_Hugetlb", "private_hugetlb"),
    ],
)
def test_field_key(name, key):
    assert field_key(name) == key


@pytest.mark.parametrize(
    "perms,path,kind",
    [
        ("rw-p", "[heap]", KIND_HEAP),
        ("rw-p", "[stack]", KIND_STACK),
        ("rw-p", "[stack:123]", KIND_STACK),
        ("r-xp", "[vdso]", KIND_VDSO),
        ("r--p", "[vvar]", KIND_VVAR),
        ("--xp", "[vsyscall]", KIND_VSYSCALL),
        ("r--p", "/usr/lib/libc.so.6", KIND_FILE_PRIVATE),
        ("rw-s", "/data/x", KIND_FILE_SHARED),
        ("rw-p", None, KIND_ANON_PRIVATE),
        ("rw-s", None, KIND_ANON_SHARED),
        ("---p", None, KIND_GUARD),
        ("---p", "/usr/lib/libc.so.6", KIND_GUARD),
        ("r--p", "/tmp/x (deleted)", KIND_DELETED),
        ("rw-s", "/SYSV0000002a (deleted)", KIND_SHM),
        ("rw-s", "/dev/zero (deleted)", KIND_ANON_SHARED),
        ("rw-p", "[anon:buf]", KIND_ANON_PRIVATE),
        ("rw-s", "[anon_shmem:x]", KIND_ANON_SHARED),
        ("rw-s", "/memfd:x (deleted)", KIND_FILE_SHARED),
    ],
)
def test_vma_kind(perms, path, kind):
    assert vma_kind(perms, path) == kind


def test_hugetlb_kind_comes_from_vmflags_ht():
    # a MAP_HUGETLB mapping: anonymous by its maps line, hugetlbfs by its flags
    block = (
        b"7f0000000000-7f0000200000 rw-p 00000000 00:0f 1234 /anon_hugepage (deleted)\n"
        b"Size: 2048 kB\nKernelPageSize: 2048 kB\nRss: 0 kB\nPrivate_Hugetlb: 2048 kB\n"
        b"VmFlags: rd wr mr mw me ac ht \n"
        b"7f0000200000-7f0000201000 rw-p 00000000 00:00 0 \nSize: 4 kB\nRss: 4 kB\nVmFlags: rd wr mr mw me ac \n"
    )
    huge, plain = parse_smaps(block)
    assert huge.kind == KIND_HUGETLB and plain.kind == KIND_ANON_PRIVATE
    assert vma_kind("rw-s", "/dev/hugepages/x", ("rd", "wr", "sh", "ht")) == KIND_HUGETLB
    assert vma_kind("---p", None, ("ht",)) == KIND_GUARD  # no permissions first


def test_deleted_is_the_kernels_word_not_the_name():
    (v,) = parse_smaps(b"7f0000000000-7f0000001000 r--p 00000000 fe:01 77 /tmp/x (deleted)\nSize: 4 kB\n")
    assert v.kind == KIND_DELETED  # by name alone, when nothing else is known
    assert vma_kind(v.perms, v.path, v.flags, unlinked=False) == KIND_FILE_PRIVATE
    assert vma_kind(v.perms, v.path, v.flags, unlinked=True) == KIND_DELETED
    (kept,) = parse.with_kinds([v], {v.start: False})
    assert kept.kind == KIND_FILE_PRIVATE and kept.path == v.path
    assert parse.with_kinds([v], {v.start: True}) == [v]
    assert parse.maybe_unlinked(v) and not parse.maybe_unlinked(replace(v, path="/memfd:a (deleted)"))


def test_vmflag_meanings_cover_the_documented_codes():
    documented = [
        "rd",
        "wr",
        "ex",
        "sh",
        "mr",
        "mw",
        "me",
        "ms",
        "gd",
        "pf",
        "dw",
        "lo",
        "io",
        "sr",
        "rr",
        "dc",
        "de",
        "ac",
        "nr",
        "ht",
        "sf",
        "ar",
        "wf",
        "dd",
        "sd",
        "mm",
        "hg",
        "nh",
        "mg",
        "bt",
        "mt",
        "um",
        "uw",
        "ui",
        "ss",
        "sl",
        "lf",
        "dp",
        "gu",
    ]
    assert set(documented) <= set(VMFLAG_MEANINGS)
    assert VMFLAG_MEANINGS["rd"] == "readable" and VMFLAG_MEANINGS["ac"] == "area is accountable"
    assert "unknown" in describe_flag("zz")
    for v in parse_smaps(fixture("known_smaps")):
        for f in v.flags:
            assert f in VMFLAG_MEANINGS, f  # this kernel prints nothing we cannot explain


# ------------------------------------------------------------------ rollup, stat, status, cmdline


def test_smaps_rollup_fixture():
    totals = parse_smaps_fields(fixture("known_smaps_rollup"))
    for key in ("rss", "pss", "pss_anon", "pss_file", "pss_shmem", "private_dirty", "swap"):
        assert key in totals
    assert totals["pss"] == totals["pss_anon"] + totals["pss_file"] + totals["pss_shmem"]
    rss = sum(v.smaps["rss"] for v in parse_smaps(fixture("known_smaps")))
    assert totals["rss"] == rss  # captured together from a stopped process
    assert parse_smaps_fields(b"") == {}


def test_stat_is_parsed_after_the_last_paren():
    st = parse_stat(fixture("known_stat"))
    assert st.comm == "odd) (name"
    assert st.state == "T"
    raw = fixture("known_stat").decode()
    fields = raw[raw.rindex(")") + 2 :].split()
    assert (st.ppid, st.minflt, st.majflt, st.num_threads, st.starttime) == (
        int(fields[1]),
        int(fields[7]),
        int(fields[9]),
        int(fields[17]),
        int(fields[19]),
    )
    assert st.pid == int(raw.split()[0])
    assert st.flags == int(fields[6]) and not st.kernel_thread
    assert parse_stat(b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 6 0 0").kernel_thread


@pytest.mark.parametrize(
    "bad", [b"", b"123", b"12 (x) S 1", b"12 (x) S a b c d e f g h i j k l m n o p q r s t"]
)
def test_bad_stat(bad):
    with pytest.raises(ParseError):
        parse_stat(bad)


def test_status_cmdline_btime():
    assert parse_status_uid(fixture("known_status")) == 0
    assert parse_status_uid(b"Name:\tx\nUid:\t1000\t1001\t1002\t1003\n") == 1000
    assert parse_status_uid(b"Name:\tx\n") is None
    args = parse_cmdline(fixture("known_cmdline"))
    assert args[0].endswith("python3") or "python" in args[0]
    assert args[1] == "-c"
    assert parse_cmdline(b"") == ()
    assert parse_cmdline(b"a\0b c\0\0d\0") == ("a", "b c", "", "d")
    assert parse_cmdline(b"\xff\0") == ("\\xff",)
    assert parse_btime(b"cpu 1 2\nbtime 1700000000\nprocesses 5\n") == 1700000000
    assert parse_btime(b"cpu 1 2\n") is None


def test_non_utf8_path_is_kept_printable():
    block = b"00400000-00401000 r--p 00000000 08:02 17 /tmp/\xff\xfe.bin\nSize: 4 kB\nVmFlags: rd \n"
    (v,) = parse_smaps(block)
    assert v.path == "/tmp/\\xff\\xfe.bin"
    v.path.encode("utf-8")  # always encodable: JSON output cannot fail on it


# --- /proc/PID/status memory lines (procfs.vitals) ---------------------------

STATUS_MEM = b"""Name:\tpython3
State:\tS (sleeping)
VmPeak:\t  220000 kB
VmRSS:\t   10240 kB
RssAnon:\t    6000 kB
VmSwap:\t      12 kB
Threads:\t1
"""


def test_status_memory_lines_in_bytes():
    from vmainspect.procfs.procstat import parse_status_memory

    mem = parse_status_memory(STATUS_MEM)
    assert (mem.rss, mem.swap) == (10240 * 1024, 12 * 1024)


def test_status_without_a_memory_map_has_no_rss():
    from vmainspect.procfs.procstat import parse_status_memory

    mem = parse_status_memory(b"Name:\tkthreadd\nState:\tS (sleeping)\nThreads:\t1\n")
    assert (mem.rss, mem.swap) == (None, None)


def test_a_malformed_status_memory_line_is_a_parse_error():
    from vmainspect.procfs.procstat import ParseError, parse_status_memory

    with pytest.raises(ParseError, match="VmRSS"):
        parse_status_memory(b"VmRSS:\t  12 MB\n")
