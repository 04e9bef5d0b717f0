"""Pure parsers of smaps and smaps_rollup: bytes read from /proc in, VMAs out (stdlib only).

Nothing here opens a file: ``procfs.reader`` reads, these functions parse, so
tests feed them captured fixture bytes.

smaps is parsed *columnar*: in one smaps buffer every VMA block carries the
same field names in the same order, so the buffer is split into lines once,
each field becomes one column (``lines[j::k]``), the layout is verified per
column with one ``bytes.count`` and all numbers are converted in one pass.
A buffer whose blocks differ (a hand-made file, an odd kernel) falls back to
a plain line-by-line parser that gives the same result. At 20,000 VMAs the
columnar path is several times faster than a per-line loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..model import (
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
    PageInfo,
    Vma,
    VmaKind,
    replace,
)
from .procstat import (
    DEAD_STATES,
    PF_EXITING,
    PF_KTHREAD,
    ParseError,
    StatInfo,
    parse_btime,
    parse_cmdline,
    parse_stat,
    parse_status_uid,
)
from .vmflags import VMFLAG_MEANINGS, describe_flag

# The stat/status/cmdline parsers live in procstat.py and are re-exported here,
# where callers have always found them.
__all__ = [
    "DEAD_STATES",
    "PF_EXITING",
    "PF_KTHREAD",
    "VMFLAG_MEANINGS",
    "ParseError",
    "StatInfo",
    "decode_path",
    "describe_flag",
    "field_key",
    "maybe_unlinked",
    "parse_btime",
    "parse_cmdline",
    "parse_smaps",
    "parse_smaps_fields",
    "parse_stat",
    "parse_status_uid",
    "vma_kind",
    "with_kinds",
    "with_pages",
]


_K = TypeVar("_K")
_V = TypeVar("_V")


# ---------------------------------------------------------------- field names

# smaps/smaps_rollup field -> JSON key. Generic CamelCase -> snake_case gets
# most right; the acronyms (THP, KSM, MMU) need the table.
_KNOWN_KEYS = {
    "Size": "size",
    "KernelPageSize": "kernel_page_size",
    "MMUPageSize": "mmu_page_size",
    "Rss": "rss",
    "Pss": "pss",
    "Pss_Dirty": "pss_dirty",
    "Pss_Anon": "pss_anon",
    "Pss_File": "pss_file",
    "Pss_Shmem": "pss_shmem",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty",
    "Referenced": "referenced",
    "Anonymous": "anonymous",
    "KSM": "ksm",
    "LazyFree": "lazy_free",
    "AnonHugePages": "anon_huge_pages",
    "ShmemHugePages": "shmem_huge_pages",
    "ShmemPmdMapped": "shmem_pmd_mapped",
    "FilePmdMapped": "file_pmd_mapped",
    "Shared_Hugetlb": "shared_hugetlb",
    "Private_Hugetlb": "private_hugetlb",
    "Swap": "swap",
    "SwapPss": "swap_pss",
    "Locked": "locked",
    "THPeligible": "thp_eligible",
    "ProtectionKey": "protection_key",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_key_cache: dict[bytes, str] = {}


def field_key(name: bytes | str) -> str:
    """smaps field name -> snake_case key: ``Pss_Dirty`` -> ``pss_dirty``, ``KSM`` -> ``ksm``.

    Unknown names (a newer kernel) are converted generically:
    ``FooBarBaz`` -> ``foo_bar_baz``, ``Foo_BAR`` -> ``foo_bar``.
    """
    raw = name if isinstance(name, bytes) else name.encode()
    key = _key_cache.get(raw)
    if key is None:
        text = raw.decode("ascii", "replace").strip()
        key = _KNOWN_KEYS.get(text)
        if key is None:
            key = _CAMEL.sub("_", text).lower()
            key = re.sub(r"[^a-z0-9]+", "_", key).strip("_") or "field"
        _key_cache[raw] = key
    return key


# ---------------------------------------------------------------- paths, kinds


def decode_path(raw: bytes) -> str:
    """A path as the kernel prints it. Bytes that are not UTF-8 become ``\\xNN``
    (backslashreplace): JSON text must be valid Unicode, and a lone surrogate
    would break writing it."""
    return raw.decode("utf-8", "backslashreplace")


_SPECIAL_KINDS: dict[str, VmaKind] = {
    "[heap]": KIND_HEAP,
    "[stack]": KIND_STACK,
    "[vdso]": KIND_VDSO,
    "[vvar]": KIND_VVAR,
    "[vvar_vclock]": KIND_VVAR,
    "[vsyscall]": KIND_VSYSCALL,
}
_DELETED = " (deleted)"


def vma_kind(
    perms: str, path: str | None, flags: tuple[str, ...] = (), unlinked: bool | None = None
) -> VmaKind:
    """Classify a VMA from its maps header and VmFlags.

    Order matters: the kernel's special names first, then no-permission
    regions (guard pages, PROT_NONE reservations: whatever backs them),
    hugetlbfs mappings (VmFlags ``ht``), SysV shm (``/SYSV<key> (deleted)``),
    shared anonymous memory (the kernel names it ``/dev/zero (deleted)``),
    unlinked files, then anonymous or file by ``p``/``s``. A memfd
    (``/memfd:NAME (deleted)``) was never linked, so it is a shared/private
    *file* (shmem-backed), not a deleted one.

    ``unlinked`` is the kernel's word on a path ending in `` (deleted)``
    (``procfs.mapped.file_unlinked``): False for a real file of that name. None decides by
    the name alone (the kernel appends the suffix to unlinked files; see
    docs/kernel-notes.md, "(deleted) in maps").
    """
    if path is not None:
        kind = _SPECIAL_KINDS.get(path)
        if kind is not None:
            return kind
        if path.startswith("[stack:"):  # old kernels: thread stacks
            return KIND_STACK
    shared = perms[3:4] == "s"
    if perms[:3] == "---":
        return KIND_GUARD
    if "ht" in flags:
        return KIND_HUGETLB
    if path is None:
        return KIND_ANON_SHARED if shared else KIND_ANON_PRIVATE
    if path.startswith("/SYSV"):
        return KIND_SHM
    if path.startswith("[anon_shmem:") or path == "/dev/zero (deleted)":
        return KIND_ANON_SHARED
    if path.startswith("["):  # [anon:NAME] and other kernel names
        return KIND_ANON_SHARED if shared else KIND_ANON_PRIVATE
    if path.endswith(_DELETED) and not path.startswith("/memfd:") and unlinked is not False:
        return KIND_DELETED
    return KIND_FILE_SHARED if shared else KIND_FILE_PRIVATE


def maybe_unlinked(v: Vma) -> bool:
    """Is ``v`` a file mapping whose kind depends on whether its file is unlinked?"""
    p = v.path
    return (
        p is not None
        and p.endswith(_DELETED)
        and p.startswith("/")
        and not p.startswith(("/memfd:", "/SYSV", "/dev/zero "))
    )


def with_kinds(vmas: list[Vma], unlinked: dict[int, bool]) -> list[Vma]:
    """``vmas`` with the kind of each VMA in ``unlinked`` (start -> the kernel's
    word, from ``procfs.mapped.file_unlinked``) decided again."""
    out = list(vmas)
    for i, v in enumerate(out):
        u = unlinked.get(v.start)
        if u is not None:
            kind = vma_kind(v.perms, v.path, v.flags, u)
            if kind != v.kind:
                out[i] = replace(v, kind=kind)
    return out


# ---------------------------------------------------------------- smaps

_HEADER = re.compile(
    rb"([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][-psS]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) ([0-9]+)(?: +(.*))?\Z"
)


class _Memo(dict[_K, _V]):
    """dict with a factory for missing keys (used to decode repeated bytes once)."""

    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[_K], _V]) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key: _K) -> _V:
        value = self[key] = self.factory(key)
        return value


def _flags_of(line: bytes) -> tuple[str, ...]:
    # b"rd wr mr mw me ac " -> ("rd", "wr", ...); a leading "VmFlags:" is dropped
    words = line.split()
    if words and words[0] == b"VmFlags:":
        del words[0]
    return tuple(w.decode("ascii", "replace") for w in words)


_REST = re.compile(rb"([-r][-w][-x][-psS]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) ([0-9]+)(?: +(.*))?\Z")


def _bad_header(headers: Iterable[bytes]) -> ParseError:
    for h in headers:
        if _HEADER.match(h) is None:
            return ParseError(f"smaps: not a mapping header: {h[:80]!r}")
    return ParseError("smaps: unreadable mapping headers")


def _make_vmas(headers: list[bytes], flags: list[tuple[str, ...]], smaps: list[Fields]) -> list[Vma]:
    """Build Vma objects from header lines, flag tuples and smaps fields (hot path).

    A header is ``START-END`` plus the rest (perms, offset, device, inode,
    path); the rest repeats a lot (every anonymous region, every segment of a
    library), so each distinct rest is parsed and classified once. All
    per-VMA work runs inside C-level ``map`` calls, down to the Struct
    constructor.
    """
    n = len(headers)
    if n == 0:
        return []
    rng_col, _, rest_col = zip(*map(bytes.partition, headers, [b" "] * n))
    se = list(map(bytes.split, rng_col, [b"-"] * n))
    if set(map(len, se)) != {2} or b"".join(rng_col).translate(None, b"0123456789abcdef-"):
        raise _bad_header(headers)  # int(x, 16) alone would accept "0x10" or "1_0"
    s_col, e_col = zip(*se)
    del se
    paths = _Memo(decode_path)

    def template(rest: bytes) -> tuple[str, int, str, int, str | None, VmaKind]:
        m = _REST.match(rest)
        if m is None:
            raise _bad_header(headers)
        perms_b, off, dev, ino, path_b = m.groups()
        perms = perms_b.decode()
        path = paths[path_b] if path_b else None
        return perms, int(off, 16), dev.decode(), int(ino), path, vma_kind(perms, path)

    perms, offsets, devs, inodes, path_col, kinds = zip(*map(_Memo(template).__getitem__, rest_col))
    try:
        starts = list(map(int, s_col, [16] * n))
        ends = list(map(int, e_col, [16] * n))
    except ValueError:
        raise _bad_header(headers) from None
    vmas = list(map(Vma, starts, ends, perms, offsets, devs, inodes, path_col, kinds, flags, smaps))
    for i in [i for i, f in enumerate(flags) if "ht" in f]:  # hugetlbfs: the kind needs the flags
        v = vmas[i]
        vmas[i] = replace(v, kind=vma_kind(v.perms, v.path, v.flags))
    return vmas


def with_pages(vmas: list[Vma], infos: list[PageInfo]) -> list[Vma]:
    """``replace(v, pages=info)`` for many VMAs at once (same result, C-level)."""
    return [replace(v, pages=p) for v, p in zip(vmas, infos)]


def parse_smaps(data: bytes) -> list[Vma]:
    """All VMAs of a /proc/PID/smaps buffer, in file (= address) order.

    Every ``Name: N kB`` field becomes ``smaps[field_key(Name)] = N * 1024``;
    fields without ``kB`` (THPeligible, ProtectionKey) keep their number;
    fields a newer kernel adds are kept the same way. ``VmFlags`` becomes
    ``Vma.flags``. An empty buffer (kernel thread, zombie) gives ``[]``.
    """
    if not data:
        return []
    fast = _parse_columnar(data)
    if fast is not None:
        return fast
    lines = data.split(b"\n")
    return _parse_general(lines)


_NOT_DIGIT = bytes(c if 48 <= c <= 57 else 32 for c in range(256))  # translate: keep digits, rest -> space
_SKELETON_DELETE = b"0123456789 \t"
# "\nVmFlags: FLAGS\n" and the next header line: a path cannot contain a newline
# (the kernel prints it as \\012), so this only matches real VmFlags lines.
_BLOCKS = re.compile(rb"\nVmFlags: ([^\n]*)\n(?:([^\n]*)\n)?")


def _parse_columnar(data: bytes) -> list[Vma] | None:
    """The fast path, or None when the blocks do not all share one layout.

    One regex split at the ``VmFlags`` lines (and the header line after each)
    cuts the buffer into flags, headers and field texts, copying it once.
    Blocks whose field text
    is identical (many VMAs of a big process have the same figures) are
    parsed once and share one smaps dict. The distinct field texts are
    joined into one buffer; deleting digits and blanks from it must give the
    first block's skeleton (``Size:kB`` ...) once per block: that single
    comparison proves every block has the same fields in the same order.
    Mapping every non-digit to a blank then leaves exactly one number per
    field line, in block order, converted once per distinct value.
    Snapshots are immutable: nothing may write into ``Vma.smaps``.
    """
    if not data.endswith(b"\n"):
        return None
    # [header0 + fields0, flags0, header1, fields1, flags1, ..., flagsN-1, None, b""]
    pieces = _BLOCKS.split(data)
    n = len(pieces) // 3
    if n < 1 or pieces[-1] or pieces[-2] is not None:
        return None
    head, sep, fields0 = pieces[0].partition(b"\n")
    header_col = [head] + pieces[2:-2:3]
    field_col = [fields0] + pieces[3:-1:3]
    flag_col = pieces[1::3]
    del pieces
    if not sep or None in header_col or len(header_col) != n or len(field_col) != n:
        return None
    first = field_col[0].split(b"\n")
    keys: list[str] = []
    kb: list[bool] = []
    for line in first:
        name, sep, rest = line.partition(b":")
        if not sep or not name or b" " in name:
            return None
        keys.append(field_key(name))
        kb.append(rest.endswith(b" kB"))
    m = len(keys)
    if len(set(keys)) != m:
        return None
    distinct = list(dict.fromkeys(field_col))
    u = len(distinct)
    body = b"\n".join(distinct)
    skeleton = distinct[0].translate(None, _SKELETON_DELETE)
    if body.translate(None, _SKELETON_DELETE) != b"\n".join([skeleton] * u):
        return None
    tokens = body.translate(_NOT_DIGIT).split()
    del body
    if len(tokens) != u * m:
        return None
    as_kb = _Memo(_kb_value)
    as_int = _Memo(int)
    columns = [list(map((as_kb if kb[p] else as_int).__getitem__, tokens[p::m])) for p in range(m)]
    del tokens
    dicts = map(Fields, map(zip, [keys] * u, zip(*columns)))
    by_text = dict(zip(distinct, dicts))
    smaps = list(map(by_text.__getitem__, field_col))
    memo = _Memo(_flags_of)
    flags = list(map(memo.__getitem__, flag_col))
    return _make_vmas(header_col, flags, smaps)


def _kb_value(token: bytes) -> int:
    return int(token) << 10


def _field_value(rest: bytes) -> int | None:
    parts = rest.split()
    if not parts or not parts[0].isdigit():
        return None
    value = int(parts[0])
    if len(parts) > 1 and parts[1] == b"kB":
        value <<= 10
    return value


def _parse_general(lines: list[bytes]) -> list[Vma]:
    """Line by line: any mix of fields per block, in any order."""
    headers: list[bytes] = []
    flags: list[tuple[str, ...]] = []
    smaps: list[dict[str, int]] = []
    cur: dict[str, int] | None = None
    memo = _Memo(_flags_of)
    for line in lines:
        if not line.strip():
            continue
        name, sep, rest = line.partition(b":")
        if sep and b" " not in name and b"-" not in name:
            if cur is None:
                raise ParseError(f"smaps: field before the first mapping header: {line[:80]!r}")
            if name == b"VmFlags":
                flags[-1] = memo[line]
                continue
            value = _field_value(rest)
            if value is not None:  # a non-numeric field would break the int contract: skipped
                cur[field_key(name)] = value
            continue
        if _HEADER.match(line) is None:
            raise ParseError(f"smaps: neither a mapping header nor a field: {line[:80]!r}")
        headers.append(line)
        flags.append(())
        cur = {}
        smaps.append(cur)
    return _make_vmas(headers, flags, list(map(Fields, smaps)))


def parse_smaps_fields(data: bytes) -> Fields:
    """``Name: N kB`` lines of one block (smaps_rollup) -> {key: bytes}.

    The header line (``...-... ---p ... [rollup]``) is skipped; an empty
    buffer gives ``{}``.
    """
    out: dict[str, int] = {}
    for line in data.split(b"\n"):
        name, sep, rest = line.partition(b":")
        if not sep or b" " in name or name == b"VmFlags":
            continue
        value = _field_value(rest)
        if value is not None:
            out[field_key(name)] = value
    return Fields(out)
