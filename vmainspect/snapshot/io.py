"""The snapshot JSON contract: ``vmainspect/snapshot@1`` (stdlib only).

``to_dict``/``from_dict`` map the model 1:1 to plain JSON data; ``dumps``,
``loads``, ``save`` and ``load`` add text and files. The encoder lives in
``snapshot_encode`` (re-exported here); this module holds the validating
decoder. The layout is documented
field by field in docs/snapshot-format.md, and as a JSON Schema shipped in the
package (``schema()``).

``from_dict`` trusts nothing: a corrupt, truncated or hostile document raises
``BadInput`` with one line naming the offending field, never a TypeError or
KeyError traceback. Unknown fields are ignored (additive fields keep @1);
an unknown major version is refused.

Fault ticks and TUI frames are not part of a snapshot: a snapshot is one look
at a process. Rates over time live in recordings (``vmainspect/recording@1``),
which embed snapshots through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from datetime import datetime
from itertools import accumulate
from operator import itemgetter

from .. import fileio
from ..errors import BadInput
from ..model import (
    PAGE_STATES,
    SNAPSHOT_SCHEMA,
    VMA_KINDS,
    Capabilities,
    HostInfo,
    PageCounts,
    PageInfo,
    PageRun,
    ProcessInfo,
    Snapshot,
    Vma,
)
from .encode import COUNT_FIELDS, _no_gc, dumps, to_dict  # noqa: F401 (public API)

SCHEMA = SNAPSHOT_SCHEMA
_NAME, _, _MAJOR = SCHEMA.partition("@")
MAX_ADDRESS = 1 << 64
MAX_FILE = 1 << 30  # load() refuses larger files (a 20k-VMA snapshot with pages is ~20 MB)

_COUNTS_KNOWN = COUNT_FIELDS[:5]  # always known when pages were collected
_COUNTS_NULLABLE = COUNT_FIELDS[5:]  # null where unknown (no root)


# --------------------------------------------------------------------------
# model -> plain data and JSON text: see snapshot_encode.py


def save(s: Snapshot, path: str, *, indent: int | None = 1) -> str:
    """Write the snapshot to ``path`` atomically (see fileio.write_text)."""
    return fileio.write_text(path, dumps(s, indent=indent) + "\n")


# --------------------------------------------------------------------------
# plain data -> model (validating)


def _show(v: object) -> str:
    """A value for an error message: short, one line, never raising."""
    if type(v) is int and v.bit_length() > 100:
        return f"a {v.bit_length()}-bit integer"
    r = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return r if len(r) <= 40 else r[:37] + "..."


def _bad(where: str, problem: str) -> BadInput:
    return BadInput(f"{where}: {problem}" if where else problem)


def _obj(d: object, where: str) -> dict:
    if type(d) is not dict:
        raise _bad(where, f"expected an object, got {_show(d)}")
    return d


def _get(d: dict, key: str, where: str) -> object:
    try:
        return d[key]
    except KeyError:
        raise _bad(where, f"missing field {key!r}") from None


def _int(
    d: dict, key: str, where: str, lo: int = 0, hi: int | None = None, nullable: bool = False
) -> int | None:
    v = _get(d, key, where)
    if v is None and nullable:
        return None
    if type(v) is not int:
        what = "an integer or null" if nullable else "an integer"
        raise _bad(f"{where}.{key}" if where else key, f"expected {what}, got {_show(v)}")
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise _bad(f"{where}.{key}" if where else key, f"{_show(v)} is out of range (expected {rng})")
    return v


def _str(d: dict, key: str, where: str, nullable: bool = False) -> str | None:
    v = _get(d, key, where)
    if v is None and nullable:
        return None
    if type(v) is not str:
        what = "a string or null" if nullable else "a string"
        raise _bad(f"{where}.{key}", f"expected {what}, got {_show(v)}")
    return v


def _bool(d: dict, key: str, where: str, nullable: bool = False) -> bool | None:
    v = _get(d, key, where)
    if v is None and nullable:
        return None
    if type(v) is not bool:
        what = "true, false or null" if nullable else "true or false"
        raise _bad(f"{where}.{key}", f"expected {what}, got {_show(v)}")
    return v


def _strs(d: dict, key: str, where: str) -> tuple[str, ...]:
    v = _get(d, key, where)
    if type(v) not in _SEQ:
        raise _bad(f"{where}.{key}", f"expected a list of strings, got {_show(v)}")
    for i, x in enumerate(v):
        if type(x) is not str:
            raise _bad(f"{where}.{key}[{i}]", f"expected a string, got {_show(x)}")
    return tuple(v)


_SEQ = frozenset((list, tuple))  # JSON arrays; to_dict output uses tuples
_KEY_RE = re.compile(r"[a-z0-9_]{1,128}\Z")  # what procfs.parse.field_key makes
_good_keys: set[str] = set()  # smaps keys already checked (a cache: 20k VMAs share ~25 keys)
_INT_ONLY = {int}
_STR_ONLY = {str}


def _fields(v: object, where: str) -> dict:
    """A smaps-style object: snake_case name -> non-negative integer."""
    if type(v) is not dict:
        raise _bad(where, f"expected an object of integers, got {_show(v)}")
    if not v:
        return {}
    vals = v.values()
    if (
        set(map(type, vals)) == _INT_ONLY
        and min(vals) >= 0
        and max(vals) < MAX_ADDRESS
        and _good_keys.issuperset(v)
    ):
        return v.copy()  # the Snapshot must not share a dict its caller may change
    for k, x in v.items():
        if type(k) is not str or not _KEY_RE.match(k):
            raise _bad(where, f"field name {_show(k)} is not lower-case snake_case")
        if type(x) is not int:
            raise _bad(f"{where}.{k}", f"expected an integer, got {_show(x)}")
        if not 0 <= x < MAX_ADDRESS:
            raise _bad(f"{where}.{k}", f"{_show(x)} is out of range (expected in [0, 2^64))")
        if len(_good_keys) < 4096:
            _good_keys.add(k)
    return v.copy()


_DEV_RE = re.compile(r"[0-9a-f]{1,8}:[0-9a-f]{1,8}\Z")
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]00:00)\Z")
_KINDS = frozenset(VMA_KINDS)
_STATES = {s: s for s in PAGE_STATES}  # also interns the state strings


_COUNT_SET = frozenset(COUNT_FIELDS)


def _counts_checked(c: object, cw: str, npages: int) -> PageCounts:
    c = _obj(c, cw)
    vals = [_int(c, k, cw, 0, npages) for k in _COUNTS_KNOWN]
    vals += [_int(c, k, cw, 0, npages, nullable=True) for k in _COUNTS_NULLABLE]
    return PageCounts(*vals)


def _pages(d: object, where: str, npages: int) -> PageInfo:
    d = _obj(d, where)
    c = d.get("counts")
    if type(c) is dict and c.keys() >= _COUNT_SET:
        vals = list(map(c.__getitem__, COUNT_FIELDS))
        known = [x for x in vals if x is not None]
        if (
            set(map(type, vals[:5])) == _INT_ONLY
            and set(map(type, known)) == _INT_ONLY
            and min(known) >= 0
            and max(known) <= npages
        ):
            counts = PageCounts(*vals)
        else:
            counts = _counts_checked(c, f"{where}.counts", npages)
    else:
        counts = _counts_checked(_get(d, "counts", where), f"{where}.counts", npages)

    runs_in = _get(d, "runs", where)
    if type(runs_in) not in _SEQ:
        raise _bad(f"{where}.runs", f"expected a list, got {_show(runs_in)}")
    fast = _runs_fast(runs_in, npages)
    if fast is not None:
        return PageInfo(counts=counts, runs=fast, shared_runs=_shared_runs(d, where, npages))
    runs = []
    append = runs.append
    nxt = 0
    states = _STATES
    for i, r in enumerate(runs_in):
        if type(r) not in _SEQ or len(r) != 3:
            raise _bad(f"{where}.runs[{i}]", f"expected [first, count, state], got {_show(r)}")
        first, count, state = r
        if type(first) is not int or type(count) is not int or type(state) is not str:
            raise _bad(f"{where}.runs[{i}]", "expected [integer, integer, string]")
        if first != nxt:
            raise _bad(
                f"{where}.runs[{i}]",
                f"starts at page {_show(first)}, expected {nxt} (runs must cover the VMA in order)",
            )
        if count < 1:
            raise _bad(f"{where}.runs[{i}]", f"page count {count} is not positive")
        st = states.get(state)
        if st is None:
            raise _bad(f"{where}.runs[{i}]", f"unknown page state {_show(state)}")
        nxt = first + count
        if nxt > npages:
            raise _bad(f"{where}.runs[{i}]", f"runs past the VMA's end ({npages} pages)")
        append(PageRun(first, count, st))
    if nxt != npages:
        raise _bad(f"{where}.runs", f"cover {nxt} pages, the VMA has {npages}")
    return PageInfo(counts=counts, runs=tuple(runs), shared_runs=_shared_runs(d, where, npages))


def _runs_fast(runs_in: list, npages: int) -> tuple[PageRun, ...] | None:
    """Validate and build all runs with C-level passes (zip, set, accumulate);
    None if anything is off, and the caller's loop finds and names it."""
    if not runs_in or not _SEQ.issuperset(set(map(type, runs_in))) or set(map(len, runs_in)) != {3}:
        return None
    firsts, counts, states = zip(*runs_in)
    if (
        set(map(type, firsts)) != _INT_ONLY
        or set(map(type, counts)) != _INT_ONLY
        or set(map(type, states)) != _STR_ONLY
        or not _STATES.keys() >= set(states)
        or min(counts) < 1
    ):
        return None
    ends = list(accumulate(counts))
    if ends[-1] != npages or firsts[0] != 0 or list(firsts[1:]) != ends[:-1]:
        return None
    return tuple(map(PageRun, firsts, counts, map(_STATES.__getitem__, states)))


def _shared_runs(d: dict, where: str, npages: int) -> tuple[tuple[int, int], ...] | None:
    sr_in = _get(d, "shared_runs", where)
    shared: tuple[tuple[int, int], ...] | None = None
    if sr_in is not None:
        if type(sr_in) not in _SEQ:
            raise _bad(f"{where}.shared_runs", f"expected a list or null, got {_show(sr_in)}")
        out = []
        lo = 0
        for i, r in enumerate(sr_in):
            if type(r) not in _SEQ or len(r) != 2 or type(r[0]) is not int or type(r[1]) is not int:
                raise _bad(f"{where}.shared_runs[{i}]", "expected [first, count] integers")
            first, count = r
            if first < lo or count < 1 or first + count > npages:
                raise _bad(
                    f"{where}.shared_runs[{i}]", "runs must be in order, not overlap, and lie inside the VMA"
                )
            lo = first + count
            out.append((first, count))
        shared = tuple(out)
    return shared


_OK_PERMS = frozenset(r + w + x + p for r in "r-" for w in "w-" for x in "x-" for p in "psS-")
_good_devs: set[str] = set()


def _vma_checked(d: object, where: str, page_size: int, pages_ok: bool, prev_end: int) -> Vma:
    d = _obj(d, where)
    start = _int(d, "start", where, 0, MAX_ADDRESS - 1)
    end = _int(d, "end", where, 0, MAX_ADDRESS)
    if start >= end:
        raise _bad(where, f"start {start:#x} is not below end {end:#x}")
    if start < prev_end:
        raise _bad(
            where, f"starts at {start:#x}, inside or before the previous VMA (must be in address order)"
        )
    if start % page_size or end % page_size:
        raise _bad(where, f"{start:#x}-{end:#x} is not aligned to the page size {page_size}")
    perms = _str(d, "perms", where)
    if perms not in _OK_PERMS:
        raise _bad(f"{where}.perms", f"{_show(perms)} is not like 'rw-p'")
    offset = _int(d, "offset", where, 0, MAX_ADDRESS - 1)
    dev = _str(d, "dev", where)
    if not _DEV_RE.match(dev):
        raise _bad(f"{where}.dev", f"{_show(dev)} is not like 'fe:01'")
    if len(_good_devs) < 4096:
        _good_devs.add(dev)
    inode = _int(d, "inode", where, 0, MAX_ADDRESS - 1)
    path = _str(d, "path", where, nullable=True)
    kind = _str(d, "kind", where)
    if kind not in _KINDS:
        raise _bad(f"{where}.kind", f"unknown kind {_show(kind)}")
    flags = _strs(d, "flags", where)
    smaps = _fields(_get(d, "smaps", where), f"{where}.smaps")
    pages_in = d.get("pages")
    pages = None
    if pages_in is not None:
        if not pages_ok:
            raise _bad(f"{where}.pages", "present, but capabilities.pages is false")
        pages = _pages(pages_in, f"{where}.pages", (end - start) // page_size)
    return Vma(start, end, perms, offset, dev, inode, path, kind, flags, smaps, pages)


_new = object.__new__
_setattr = object.__setattr__


def _vmas(vmas_in: list, page_size: int, pages_ok: bool, owned: bool, plain: bool) -> list[Vma]:
    """All VMAs, in order (each must start at or after the previous one's end).

    When ``owned`` (JSON types only), a "pages" object equal in repr() to one
    already checked for the same page count shares its PageInfo: the collector
    shares equal PageInfo objects between VMAs (20,000 VMAs usually have a few
    dozen distinct ones), so each is validated and built once, and the
    snapshot keeps that sharing. Only valid results are cached. ``plain``: the
    document has no true, false or float in its VMAs, so equal tuples of the
    parsed values are as faithful as repr() and cheaper (_plain_key).
    """
    out = []
    append = out.append
    prev_end = 0
    cache: dict | None = {} if owned else None
    key = _plain_key if plain else repr
    for i, v in enumerate(vmas_in):
        vma = _vma_fast(v, page_size, pages_ok, prev_end, cache, key)
        if vma is None:
            vma = _vma_checked(v, f"vmas[{i}]", page_size, pages_ok, prev_end)
        elif vma is _PAGES_BAD:  # everything but "pages" is fine: check that, naming the VMA
            if not pages_ok:
                raise _bad(f"vmas[{i}].pages", "present, but capabilities.pages is false")
            vma = _vma_checked(v, f"vmas[{i}]", page_size, pages_ok, prev_end)
        prev_end = vma.end
        append(vma)
    return out


_PAGES_BAD = object()
_vma_row = itemgetter("start", "end", "perms", "offset", "dev", "inode", "path", "kind", "flags", "smaps")


def _plain_key(p: object) -> object:
    """A cache key for a "pages" object of a document without true, false or
    floats in its VMAs: there, equal tuples mean equal JSON (1 == true == 1.0 cannot
    happen); anything else is keyed by repr(). May be unhashable (TypeError)."""
    if type(p) is not dict:
        return repr(p)
    c, r, sr = p.get("counts"), p.get("runs"), p.get("shared_runs")
    return (
        tuple(c.items()) if type(c) is dict else repr(c),
        tuple(map(tuple, r)) if type(r) is list else repr(r),
        sr if sr is None else tuple(map(tuple, sr)) if type(sr) is list else repr(sr),
    )


def _vma_fast(d: object, page_size: int, pages_ok: bool, prev_end: int, cache: dict | None, pages_key=repr):
    """One VMA when all is well (built with ``object.__new__`` and an assigned
    ``__dict__``: exactly what the frozen ``__init__`` sets, at a fraction of
    its cost; see procfs/parse.py); None or _PAGES_BAD when not (the caller
    then runs the checks that name the problem). The smaps dict is kept, not
    copied, when ``cache`` is given (the document is loads()' own)."""
    if type(d) is not dict:
        return None
    try:
        start, end, perms, offset, dev, inode, path, kind, flags, sm = _vma_row(d)
    except KeyError:
        return None
    if not (
        type(start) is int
        and type(end) is int
        and type(offset) is int
        and type(inode) is int
        and prev_end <= start < end <= MAX_ADDRESS
        and not (start | end) & (page_size - 1)
        and 0 <= offset < MAX_ADDRESS
        and 0 <= inode < MAX_ADDRESS
        and type(perms) is str
        and perms in _OK_PERMS
        and type(dev) is str
        and dev in _good_devs
        and type(kind) is str
        and kind in _KINDS
        and (path is None or type(path) is str)
        and type(flags) in _SEQ
        and (not flags or set(map(type, flags)) == _STR_ONLY)
        and type(sm) is dict
    ):
        return None
    if sm:
        vals = sm.values()
        if not (
            set(map(type, vals)) == _INT_ONLY
            and min(vals) >= 0
            and max(vals) < MAX_ADDRESS
            and _good_keys.issuperset(sm)
        ):
            return None
        if cache is None:
            sm = sm.copy()  # the Snapshot must not share a dict its caller may change
    else:
        sm = {}
    pages = d.get("pages")
    if pages is not None:
        if not pages_ok:
            return _PAGES_BAD
        npages = (end - start) // page_size
        if cache is not None:
            try:
                key = (npages, pages_key(pages))
                info = cache.get(key)
            except (RecursionError, TypeError):  # (TypeError: unhashable, from _plain_key)
                return _PAGES_BAD
            if info is None:
                try:
                    info = _pages(pages, "", npages)
                except BadInput:
                    return _PAGES_BAD
                if len(cache) < 100_000:
                    cache[key] = info
            pages = info
        else:
            try:
                pages = _pages(pages, "", npages)
            except BadInput:
                return _PAGES_BAD
    vma = _new(Vma)
    _setattr(
        vma,
        "__dict__",
        {
            "start": start,
            "end": end,
            "perms": perms,
            "offset": offset,
            "dev": dev,
            "inode": inode,
            "path": path,
            "kind": kind,
            "flags": tuple(flags),
            "smaps": sm,
            "pages": pages,
        },
    )
    return vma


def check_schema(d: object) -> None:
    """Raise BadInput unless ``d`` claims to be a snapshot this version reads."""
    if type(d) is not dict:
        raise BadInput(f"not a vmainspect snapshot: the document is {_show(d)}, not an object")
    name = d.get("schema")
    if name is None:
        raise BadInput('not a vmainspect snapshot (no "schema" field)')
    if type(name) is not str:
        raise BadInput(f'not a vmainspect snapshot ("schema" is {_show(name)})')
    if name == SCHEMA:
        return
    shown = json.dumps(name[:60])[1:-1]
    if name.partition("@")[0] == _NAME:
        raise BadInput(f"this file is {shown}; this vmainspect reads @{_MAJOR}")
    raise BadInput(f"not a vmainspect snapshot: this file is {shown}")


def from_dict(d: dict) -> Snapshot:
    """Rebuild a Snapshot from plain data; BadInput (one line) on anything wrong."""
    return _from_dict(d, owned=False)


def _from_dict(d: dict, owned: bool, plain: bool = False) -> Snapshot:
    """``owned``: ``d`` comes straight from json.loads and nobody else holds it, so
    it holds JSON types only (their repr() is faithful: it tells 1, 1.0 and true
    apart) and its smaps dicts can go into the Snapshot without a copy."""
    check_schema(d)
    taken_at = _str(d, "taken_at", "")
    if not _TIME_RE.match(taken_at):
        raise _bad("taken_at", f"{_show(taken_at)} is not an ISO 8601 UTC time")
    try:
        datetime.fromisoformat(taken_at)
    except ValueError:
        raise _bad("taken_at", f"{_show(taken_at)} is not a valid time") from None

    h = _obj(_get(d, "host", ""), "host")
    page_size = _int(h, "page_size", "host", 512, 1 << 30)
    if page_size & (page_size - 1):
        raise _bad("host.page_size", f"{page_size} is not a power of two")
    hostname = h.get("hostname", "")
    if type(hostname) is not str:
        raise _bad("host.hostname", f"expected a string, got {_show(hostname)}")
    host = HostInfo(_str(h, "kernel", "host"), page_size, hostname)

    p = _obj(_get(d, "process", ""), "process")
    ct = _get(p, "create_time", "process")
    if ct is not None:
        if type(ct) not in (int, float) or not math.isfinite(ct) or ct < 0:
            raise _bad("process.create_time", f"expected seconds since the epoch or null, got {_show(ct)}")
        ct = float(ct)
    process = ProcessInfo(
        pid=_int(p, "pid", "process", 0, 1 << 31),
        ppid=_int(p, "ppid", "process", 0, 1 << 31, nullable=True),
        name=_str(p, "name", "process"),
        cmdline=_strs(p, "cmdline", "process"),
        exe=_str(p, "exe", "process", nullable=True),
        user=_str(p, "user", "process", nullable=True),
        uid=_int(p, "uid", "process", 0, (1 << 32) - 1, nullable=True),
        state=_str(p, "state", "process"),
        threads=_int(p, "threads", "process"),
        minor_faults=_int(p, "minor_faults", "process"),
        major_faults=_int(p, "major_faults", "process"),
        create_time=ct,
    )

    c = _obj(_get(d, "capabilities", ""), "capabilities")
    caps = Capabilities(
        root=_bool(c, "root", "capabilities"),
        pages=_bool(c, "pages", "capabilities"),
        pfn_visible=_bool(c, "pfn_visible", "capabilities", nullable=True),
        kpageflags=_bool(c, "kpageflags", "capabilities", nullable=True),
        kpagecount=_bool(c, "kpagecount", "capabilities", nullable=True),
        pagemap_scan=_bool(c, "pagemap_scan", "capabilities", nullable=True),
        notes=_strs(c, "notes", "capabilities"),
    )
    totals = _fields(_get(d, "totals", ""), "totals")

    vmas_in = _get(d, "vmas", "")
    if type(vmas_in) not in _SEQ:
        raise _bad("vmas", f"expected a list, got {_show(vmas_in)}")
    vmas = _vmas(vmas_in, page_size, caps.pages, owned, plain)
    return Snapshot(
        taken_at=taken_at,
        host=host,
        process=process,
        capabilities=caps,
        totals=totals,
        vmas=tuple(vmas),
        schema=SCHEMA,
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_TAIL_RE = re.compile(r"(-?[0-9.eE+-]*|t|tr|tru|f|fa|fal|fals|n|nu|nul)\Z")


def _ends_early(text: str, e: json.JSONDecodeError) -> bool:
    """Did the parser fail because the text stopped (a truncated file)?"""
    if e.msg.startswith("Unterminated string"):
        return True
    return bool(_TAIL_RE.match(text[e.pos :].rstrip()))


def loads(text: str | bytes) -> Snapshot:
    """Parse snapshot JSON text; BadInput (one line) on anything wrong."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")  # a BOM some editors add is fine
        except UnicodeDecodeError as e:
            raise BadInput(f"not a vmainspect snapshot: not UTF-8 text (byte {e.start})") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    if not text or text.isspace():
        raise BadInput("not a vmainspect snapshot: the file is empty")
    with _no_gc():
        floats: list = []
        d = _parse(text, floats)
        return _from_dict(d, owned=True, plain=_plain(text, d, len(floats)))


def _plain(text: str, d: object, nfloats: int) -> bool:
    """No true, false or float in the document but the capabilities' booleans and
    the process's create_time: every "true"/"false" in the text (strings included,
    so this errs on the safe side) is one of those, and so is every float parsed."""
    if type(d) is not dict:
        return False
    caps, proc = d.get("capabilities"), d.get("process")
    nbools = sum(type(x) is bool for x in caps.values()) if type(caps) is dict else 0
    ct_float = type(proc) is dict and type(proc.get("create_time")) is float
    return nfloats == ct_float and text.count("true") + text.count("false") == nbools


def _parse(text: str, floats: list | None = None) -> object:
    """json.loads; each float parsed is appended to ``floats``."""

    def parse_float(s: str) -> float:
        f = float(s)
        floats.append(f)
        return f

    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=float if floats is None else parse_float
        )
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        if _ends_early(text, e):
            raise BadInput(
                f"not a vmainspect snapshot: the JSON ends early (truncated?) at {where}"
            ) from None
        raise BadInput(f"not a vmainspect snapshot: invalid JSON at {where}: {e.msg}") from None
    except RecursionError:
        raise BadInput("not a vmainspect snapshot: the JSON is nested too deeply") from None
    except ValueError as e:  # NaN/Infinity, integers too long to convert
        raise BadInput(f"not a vmainspect snapshot: {str(e).splitlines()[0]}") from None


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


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``vmainspect/snapshot@1``, shipped with the package."""
    from importlib import resources

    text = resources.files("vmainspect").joinpath("schemas/snapshot-1.json").read_text("utf-8")
    return json.loads(text)
