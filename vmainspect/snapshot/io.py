"""The snapshot JSON contract: ``vmainspect/snapshot@1``.

The classes in ``model`` are the format: msgspec encodes them, and decodes
and validates JSON into them (types, ranges, patterns; a wrong field is one
line naming its JSON path, e.g. ``Expected `int` >= 0 - at `$.vmas[3].start```).
What a type cannot say (VMAs in address order, aligned to the page size,
page runs covering their VMA exactly, counts within the VMA, 64-bit upper
bounds) is checked here after decoding (``check``), with the same kind of
message. Layout field by field: docs/json-formats.md; the JSON Schema shipped
in the package (``schema()``) is generated from the same classes
(scripts/gen_schemas.py).

Unknown fields are ignored (additive fields keep @1); a document of another
major version, or another kind, is refused by name. Every failure is
``BadInput`` (exit 2).

Fault ticks and TUI frames are not part of a snapshot: a snapshot is one look
at a process. Rates over time live in recordings (``vmainspect/recording@1``),
which embed snapshots through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from itertools import accumulate, repeat
from operator import and_, attrgetter, le, lt, or_
from typing import Any

import msgspec

from .. import fileio
from ..errors import BadInput
from ..model import (
    SNAPSHOT_SCHEMA,
    U64_MAX,
    PageInfo,
    Snapshot,
    Vma,
)
from ..safetext import json_visible, printable

SCHEMA = SNAPSHOT_SCHEMA
_NAME, _, _MAJOR = SCHEMA.partition("@")
MAX_ADDRESS = 1 << 64
MAX_FILE = 1 << 30  # load() refuses larger files (a 20k-VMA snapshot with pages is ~20 MB)
COUNT_FIELDS = ("present", "swapped", "file", "anon", "exclusive", "dirty", "zero", "thp", "ksm", "shared")


class _Recording(msgspec.Struct, tag_field="schema", tag="vmainspect/recording@1"):
    """A recording's header line: recognised only to say "not a snapshot"."""


class _Head(msgspec.Struct):
    """Just the ``schema`` key, to explain a document that is not a snapshot."""

    schema: Any = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Snapshot | _Recording)
_HEAD = msgspec.json.Decoder(_Head)


# --------------------------------------------------------------------------
# model -> plain data and JSON text


def to_dict(s: Snapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready plain data (the ``vmainspect/snapshot@1`` layout).

    Arrays are tuples (page runs, flags: recordings align runs by value and
    use them as keys) or lists; objects are dicts. Nothing mutable is shared
    with the snapshot.
    """
    d: dict[str, Any] = msgspec.to_builtins(s)
    d["vmas"] = list(d["vmas"])
    for v in d["vmas"]:
        p = v.get("pages")
        if p is not None:
            p["runs"] = list(map(tuple, p["runs"]))
    return d


def encode(s: Snapshot) -> bytes:
    """Compact JSON (UTF-8 bytes, no trailing newline); C1 controls and bidi marks in names
    and paths written as ``\\uXXXX`` (safetext.json_visible)."""
    try:
        out = _ENCODER.encode(s)
    except UnicodeEncodeError:
        out = _ENCODER.encode(_text_only(msgspec.to_builtins(s)))
    return bytes(json_visible(out))


def encode_line(s: Snapshot) -> bytearray:
    """``encode(s)`` and a newline, in one buffer: no second copy of a text
    that is tens of MB with page runs (the snapshot command writes this)."""
    buf = bytearray()
    try:
        _ENCODER.encode_into(s, buf)
    except UnicodeEncodeError:
        buf = bytearray(encode(s))
    visible = json_visible(buf)
    buf = visible if isinstance(visible, bytearray) else bytearray(visible)
    buf += b"\n"
    return buf


def _text_only(x: Any) -> Any:
    """``x`` with lone surrogates in strings (``os`` functions return them for
    bytes that are not UTF-8) written as ``\\xNN``, as procfs.parse does:
    JSON text must be valid Unicode."""
    if type(x) is str:
        return _LONE.sub(_escape_lone, x)
    if type(x) is dict:
        return {_text_only(k): _text_only(v) for k, v in x.items()}
    if type(x) is list or type(x) is tuple:
        return [_text_only(v) for v in x]
    return x


_LONE = re.compile("[\ud800-\udfff]")


def _escape_lone(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\u{c:04x}"


_HEAD_FIELDS = ("taken_at", "host", "process", "capabilities", "totals")


def dumps(s: Snapshot, *, indent: int | None = None) -> str:
    """Serialize to JSON text (no trailing newline).

    ``indent=None``: one compact line. ``indent=N``: the top level is indented,
    and each VMA is one compact line (grep- and diff-friendly).
    """
    if indent is None:
        return encode(s).decode()
    pad = " " * indent
    enc: Any = _ENCODER.encode
    try:
        enc(s.process)
        vmas = enc(s.vmas)
        files = enc(s.files) if s.files else None
    except UnicodeEncodeError:
        return msgspec.json.format(encode(s), indent=indent).decode()  # encode() escaped them
    head = [f'{pad}"schema": {enc(SCHEMA).decode()}']
    head += [f'{pad}"{k}": {_indented(enc(getattr(s, k)), indent)}' for k in _HEAD_FIELDS]
    head.append(f'{pad}"vmas": ' + _lines(vmas, b'{"start":', pad))
    if files is not None:  # omitted when not collected, like the encoder does
        head.append(f'{pad}"files": ' + _lines(files, b'{"path":', pad))
    text = "{\n" + ",\n".join(head) + "\n}"
    if text.isascii():
        return text
    return bytes(json_visible(text.encode())).decode()


def _lines(array: bytes, first_key: bytes, pad: str) -> str:
    """A compact top-level array of objects (each starting with ``first_key``)
    with one item per line. The split is one C-level replace: ``},{"key":``
    cannot occur inside a JSON string, where a quote is always escaped."""
    if array == b"[]":
        return "[]"
    nl = b"\n" + pad.encode() * 2
    body = array[1:-1].replace(b"}," + first_key, b"}," + nl + first_key)
    return f"[\n{pad * 2}" + body.decode() + f"\n{pad}]"


def _indented(compact: bytes, indent: int) -> str:
    """A small object of the top level, indented one level deeper (its fields one per line)."""
    text = msgspec.json.format(compact, indent=indent).decode()
    return text.replace("\n", "\n" + " " * indent)


def save(s: Snapshot, path: str, *, indent: int | None = 1) -> str:
    """Write the snapshot to ``path`` atomically (see fileio.write_text)."""
    return fileio.write_text(path, dumps(s, indent=indent) + "\n")


# --------------------------------------------------------------------------
# JSON text / plain data -> model (validating)


def _explain(data: bytes | str | None, obj: object, e: msgspec.ValidationError) -> BadInput:
    """One line for a document that did not decode as a snapshot."""
    try:
        if obj is not None:
            name = obj.get("schema") if type(obj) is dict else None
            is_obj = type(obj) is dict
            has = is_obj and "schema" in obj  # type: ignore[operator]
        else:
            assert data is not None
            head = _HEAD.decode(data)
            name, is_obj, has = head.schema, True, head.schema is not None
    except msgspec.ValidationError:  # not an object at all
        name, is_obj, has = None, False, False
    except msgspec.DecodeError:  # malformed after the part that did not validate
        return BadInput(printable(str(e)))  # msgspec quotes the bad value: a newline in it too
    if not is_obj:
        return BadInput(f"not a vmainspect snapshot: {printable(str(e))}")
    if not has:
        return BadInput('not a vmainspect snapshot (no "schema" field)')
    if type(name) is not str:
        return BadInput(
            f'not a vmainspect snapshot ("schema" is {msgspec.json.encode(name)[:40].decode("utf-8", "replace")})'
        )
    if name != SCHEMA:
        shown = msgspec.json.encode(name[:60]).decode()[1:-1]
        if name.partition("@")[0] == _NAME:
            return BadInput(f"this file is {shown}; this vmainspect reads @{_MAJOR}")
        return BadInput(f"not a vmainspect snapshot: this file is {shown}")
    return BadInput(printable(str(e)))


def _result(out: object) -> Snapshot:
    if type(out) is _Recording:
        raise BadInput("not a vmainspect snapshot: this is a recording (vmainspect/recording@1)")
    assert type(out) is Snapshot
    check(out)
    return out


def from_dict(d: object) -> Snapshot:
    """Rebuild a Snapshot from plain data (e.g. ``json.loads`` output); BadInput (one line) on anything wrong."""
    try:
        out = msgspec.convert(d, Snapshot | _Recording)
    except msgspec.ValidationError as e:
        raise _explain(None, d, e) from None
    except RecursionError:
        raise BadInput("not a vmainspect snapshot: nested too deeply") from None
    return _result(out)


def loads(text: str | bytes) -> Snapshot:
    """Parse snapshot JSON text; BadInput (one line) on anything wrong."""
    if isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    else:
        data = bytes(text)
    if data.startswith(b"\xef\xbb\xbf"):  # a BOM some editors add is fine
        data = data[3:]
    if not data.strip():
        raise BadInput("not a vmainspect snapshot: the file is empty")
    try:
        out = _DECODER.decode(data)
    except msgspec.ValidationError as e:
        raise _explain(data, None, e) from None
    except RecursionError:
        raise BadInput("not a vmainspect snapshot: nested too deeply") from None
    except msgspec.DecodeError as e:
        msg = str(e)
        if "truncated" in msg:
            raise BadInput("not a vmainspect snapshot: the JSON ends early (truncated?)") from None
        raise BadInput(f"not a vmainspect snapshot: invalid JSON: {msg}") from None
    return _result(out)


def load(path: str) -> Snapshot:
    """Read a snapshot file; BadInput (one line, naming the file) on any failure."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
            # /dev/zero, a binary or a never-ending pipe: fail at once, not after
            # reading gigabytes
            first = data.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
            if first not in (b"{", b""):
                raise BadInput(f"{path}: not a vmainspect snapshot: it does not start with '{{'")
            data += f.read(MAX_FILE + 1 - len(data))
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_FILE:
        raise BadInput(f"{path}: not a vmainspect snapshot: larger than {MAX_FILE:,} bytes")
    try:
        return loads(data)
    except BadInput as e:
        raise BadInput(f"{path}: {e}") from None


# --------------------------------------------------------------------------
# what the types cannot say


def _bad(where: str, problem: str) -> BadInput:
    return BadInput(f"{problem} - at `$.{where}`")


_start = attrgetter("start")
_end = attrgetter("end")
_offset = attrgetter("offset")
_inode = attrgetter("inode")
_smaps = attrgetter("smaps")


def check(s: Snapshot) -> None:
    """Raise BadInput (naming the JSON path) unless ``s`` is consistent:
    the checks a decoded document needs beyond its types."""
    try:
        datetime.fromisoformat(s.taken_at)
    except ValueError:
        raise _bad("taken_at", f"{s.taken_at[:40]!r} is not a valid time") from None
    ps = s.host.page_size
    if ps & (ps - 1):
        raise _bad("host.page_size", f"{ps} is not a power of two")
    ct = s.process.create_time
    if ct is not None and not math.isfinite(ct):
        raise _bad("process.create_time", "expected seconds since the epoch or null")
    if s.totals and max(s.totals.values()) > U64_MAX:
        raise _bad("totals", "a value is out of range (expected in [0, 2^64))")
    vmas = s.vmas
    if not vmas:
        return
    starts = list(map(_start, vmas))
    ends = list(map(_end, vmas))
    mask = ps - 1
    if (
        not all(map(lt, starts, ends))
        or not all(map(le, ends[:-1], starts[1:]))
        or ends[-1] > MAX_ADDRESS
        or any(map(and_, map(or_, starts, ends), repeat(mask)))
        or max(map(_offset, vmas)) > U64_MAX
        or max(map(_inode, vmas)) > U64_MAX
        or max(map(max, filter(None, map(dict.values, map(_smaps, vmas)))), default=0) > U64_MAX
    ):
        _find_bad_vma(vmas, ps)
    with_pages = [(i, v) for i, v in enumerate(vmas) if v.pages is not None]
    if with_pages and not s.capabilities.pages:
        raise _bad(f"vmas[{with_pages[0][0]}].pages", "present, but capabilities.pages is false")
    checked: set[tuple[int, PageInfo]] = set()  # equal pages of equal-sized VMAs: checked once
    for i, v in with_pages:
        assert v.pages is not None
        key = ((v.end - v.start) // ps, v.pages)
        if key not in checked:
            _check_pages(v.pages, key[0], f"vmas[{i}].pages")
            checked.add(key)


def _find_bad_vma(vmas: tuple[Vma, ...], ps: int) -> None:
    prev_end = 0
    for i, v in enumerate(vmas):
        where = f"vmas[{i}]"
        if v.start >= v.end:
            raise _bad(where, f"start {v.start:#x} is not below end {v.end:#x}")
        if v.start < prev_end:
            raise _bad(
                where, f"starts at {v.start:#x}, inside or before the previous VMA (must be in address order)"
            )
        if v.end > MAX_ADDRESS:
            raise _bad(f"{where}.end", "out of range (expected <= 2^64)")
        if (v.start | v.end) % ps:
            raise _bad(where, f"{v.start:#x}-{v.end:#x} is not aligned to the page size {ps}")
        if v.offset > U64_MAX:
            raise _bad(f"{where}.offset", "out of range (expected < 2^64)")
        if v.inode > U64_MAX:
            raise _bad(f"{where}.inode", "out of range (expected < 2^64)")
        if v.smaps and max(v.smaps.values()) > U64_MAX:
            raise _bad(f"{where}.smaps", "a value is out of range (expected in [0, 2^64))")
        prev_end = v.end


_first = attrgetter("first")
_count = attrgetter("count")


def _check_pages(p: PageInfo, npages: int, where: str) -> None:
    runs = p.runs
    if runs:
        ends = list(accumulate(map(_count, runs)))
        ok = runs[0].first == 0 and ends[-1] == npages and list(map(_first, runs[1:])) == ends[:-1]
    else:
        ok = npages == 0
    if not ok:
        nxt = 0
        for i, r in enumerate(runs):
            if r.first != nxt:
                raise _bad(
                    f"{where}.runs[{i}]",
                    f"starts at page {r.first}, expected {nxt} (runs must cover the VMA in order)",
                )
            nxt = r.first + r.count
            if nxt > npages:
                raise _bad(f"{where}.runs[{i}]", f"runs past the VMA's end ({npages} pages)")
        raise _bad(f"{where}.runs", f"cover {nxt} pages, the VMA has {npages}")
    c = p.counts
    known = [
        x
        for x in (c.present, c.swapped, c.file, c.anon, c.exclusive, c.dirty, c.zero, c.thp, c.ksm, c.shared)
        if x is not None
    ]
    if max(known) > npages:
        for k in COUNT_FIELDS:
            x = getattr(c, k)
            if x is not None and x > npages:
                raise _bad(f"{where}.counts.{k}", f"{x} is more than the VMA's {npages} pages")
    if p.shared_runs:
        lo = 0
        for i, (first, count) in enumerate(p.shared_runs):
            if first < lo or first + count > npages:
                raise _bad(
                    f"{where}.shared_runs[{i}]", "runs must be in order, not overlap, and lie inside the VMA"
                )
            lo = first + count


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``vmainspect/snapshot@1``, shipped with the package."""
    from ..schemas import load as load_schema

    return load_schema(SCHEMA)
