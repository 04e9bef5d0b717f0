"""Snapshot -> JSON text, fast: the encoding half of ``vmainspect/snapshot@1``.

``snapshot_io`` is the public face (``to_dict``, ``dumps``, ``save``, ``loads``,
``load``); this module holds the encoder so that each half stays readable.
Each VMA is one ``%``-format into a template cached per smaps key set;
strings, flag tuples and page runs per state sequence are encoded once, and a
PageInfo shared by several VMAs is encoded once per call.
"""

from __future__ import annotations

import gc
import json
import json.encoder
from contextlib import contextmanager
from itertools import chain
from operator import attrgetter

from ..model import SNAPSHOT_SCHEMA as SCHEMA
from ..model import PageInfo, Snapshot, Vma

COUNT_FIELDS = ("present", "swapped", "file", "anon", "exclusive", "dirty", "zero", "thp", "ksm", "shared")
_run_tuple = attrgetter("first", "count", "state")
_counts_tuple = attrgetter(*COUNT_FIELDS)


# --------------------------------------------------------------------------
# model -> plain data


def _pages_dict(p: PageInfo) -> dict:
    return {
        "counts": dict(zip(COUNT_FIELDS, _counts_tuple(p.counts))),
        # tuples encode as JSON arrays; attrgetter keeps this loop in C
        "runs": list(map(_run_tuple, p.runs)),
        "shared_runs": None if p.shared_runs is None else list(p.shared_runs),
    }


def _vma_dict(v: Vma) -> dict:
    d = {
        "start": v.start,
        "end": v.end,
        "perms": v.perms,
        "offset": v.offset,
        "dev": v.dev,
        "inode": v.inode,
        "path": v.path,
        "kind": v.kind,
        "flags": v.flags,
        "smaps": dict(v.smaps),
    }
    if v.pages is not None:
        d["pages"] = _pages_dict(v.pages)
    return d


def _head_dict(s: Snapshot) -> dict:
    h, p, c = s.host, s.process, s.capabilities
    return {
        "schema": SCHEMA,
        "taken_at": s.taken_at,
        "host": {"kernel": h.kernel, "page_size": h.page_size, "hostname": h.hostname},
        "process": {
            "pid": p.pid,
            "ppid": p.ppid,
            "name": p.name,
            "cmdline": list(p.cmdline),
            "exe": p.exe,
            "user": p.user,
            "uid": p.uid,
            "state": p.state,
            "threads": p.threads,
            "minor_faults": p.minor_faults,
            "major_faults": p.major_faults,
            "create_time": p.create_time,
        },
        "capabilities": {
            "root": c.root,
            "pages": c.pages,
            "pfn_visible": c.pfn_visible,
            "kpageflags": c.kpageflags,
            "kpagecount": c.kpagecount,
            "pagemap_scan": c.pagemap_scan,
            "notes": list(c.notes),
        },
        "totals": dict(s.totals),
    }


def to_dict(s: Snapshot) -> dict:
    """The snapshot as JSON-ready plain data (the ``vmainspect/snapshot@1`` layout).

    Flags and each page run / shared run are tuples (they encode as JSON
    arrays, and recordings use them as hashable keys); nothing mutable is shared with
    the snapshot. ``dumps`` does not go through this (it is 2-3x faster).
    """
    d = _head_dict(s)
    d["vmas"] = [_vma_dict(v) for v in s.vmas]
    return d


@contextmanager
def _no_gc():
    """No cyclic GC while (de)serializing: nothing made here forms cycles, and
    with 100k+ new objects the collector's passes over the whole heap cost
    30-40% of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Memo(dict):
    """key -> ``make(key)``, cached (bounded): paths, perms, flag tuples, smaps key
    tuples and page states repeat a lot, so each is encoded once."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        v = self.make(key)
        if len(self) < 50_000:
            self[key] = v
        return v


def _vma_template(keys: tuple[str, ...]) -> tuple[str, str]:
    """%-templates of a VMA object for one smaps key tuple: (closed, open before "pages")."""
    t = (
        '{"start":%d,"end":%d,"perms":%s,"offset":%d,"dev":%s,"inode":%d,'
        '"path":%s,"kind":%s,"flags":%s,"smaps":{'
        + ",".join(_json_str(k).replace("%", "%%") + ":%d" for k in keys)
        + "}"
    )
    return t + "}", t


def _pages_template(states: tuple[str, ...]) -> tuple[str, str]:
    """%-templates of a VMA's "pages" (closing the VMA object too) for one sequence
    of run states: (all counts known: %d, some null: %s)."""
    runs = ",".join("[%d,%d," + _json_str(x).replace("%", "%%") + "]" for x in states)
    tail = '},"runs":[' + runs + '],"shared_runs":%s}}'
    return (
        ',"pages":{"counts":{' + ",".join(f'"{k}":%d' for k in COUNT_FIELDS) + tail,
        ',"pages":{"counts":{' + ",".join(f'"{k}":%s' for k in COUNT_FIELDS) + tail,
    )


_json_str = json.encoder.encode_basestring_ascii  # C; ASCII output survives lone surrogates
_STR = _Memo(lambda k: "null" if k is None else _json_str(k))
_FLAGS = _Memo(lambda k: "[" + ",".join(map(_json_str, k)) + "]")
_VMA_TPL = _Memo(_vma_template)
_PAGES_TPL = _Memo(_pages_template)
_RUN_TPL = _Memo(lambda state: "[%d,%d," + _json_str(state).replace("%", "%%") + "]")
_run_fc = attrgetter("first", "count")
_run_state = attrgetter("state")
_TEMPLATE_RUNS = 64  # VMAs with more runs than this format them one by one


def _pages_json(p: PageInfo) -> str:
    counts = _counts_tuple(p.counts)
    sr = p.shared_runs
    shared = (
        "null" if sr is None else "[]" if not sr else "[" + ",".join(["[%d,%d]" % tuple(x) for x in sr]) + "]"
    )
    runs = p.runs
    if len(runs) <= _TEMPLATE_RUNS:  # one template per state sequence: the loops stay in C
        known, some_null = _PAGES_TPL[tuple(map(_run_state, runs))]
        if None in counts:
            return some_null % (
                *["null" if x is None else x for x in counts],
                *chain.from_iterable(map(_run_fc, runs)),
                shared,
            )
        return known % (*counts, *chain.from_iterable(map(_run_fc, runs)), shared)
    tpl = _RUN_TPL
    text = ",".join([tpl[r.state] % (r.first, r.count) for r in runs])
    head, _, _ = _PAGES_TPL[()][1].partition('"runs":[')
    return (
        head % tuple(["null" if x is None else x for x in counts])
        + '"runs":['
        + text
        + '],"shared_runs":'
        + shared
        + "}}"
    )


def _vma_texts(vmas: tuple[Vma, ...]) -> list[str]:
    """Each VMA as compact JSON text, from %-templates (2-3x faster than the json
    encoder over dicts: no per-VMA dict, no per-key escaping)."""
    tpl, st, fl = _VMA_TPL, _STR, _FLAGS
    texts = [
        tpl[tuple(sm)][v.pages is not None]
        % (
            v.start,
            v.end,
            st[v.perms],
            v.offset,
            st[v.dev],
            v.inode,
            st[v.path],
            st[v.kind],
            fl[v.flags],
            *sm.values(),
        )
        for v in vmas
        for sm in (v.smaps,)
    ]
    # The collector shares equal PageInfo objects between VMAs (same size, same
    # state): encode each object once. Keyed by id(): all stay alive meanwhile.
    done: dict[int, str] = {}
    for i, v in enumerate(vmas):
        p = v.pages
        if p is not None:
            text = done.get(id(p))
            if text is None:
                text = done[id(p)] = _pages_json(p)
            texts[i] += text
    return texts


def dumps(s: Snapshot, *, indent: int | None = None) -> str:
    """Serialize to JSON text (ASCII, no trailing newline).

    ``indent=None``: one compact line. ``indent=N``: the top level is indented,
    and each VMA is one compact line (grep- and diff-friendly).
    """
    with _no_gc():
        try:
            vmas = _vma_texts(s.vmas)
        except (TypeError, ValueError, KeyError):  # not model types (e.g. a list for flags)
            enc = json.JSONEncoder(separators=(",", ":"), check_circular=False)
            vmas = [enc.encode(_vma_dict(v)) for v in s.vmas]
        head = _head_dict(s)
    if indent is None:
        text = json.dumps(head, separators=(",", ":"))
        return text[:-1] + ',"vmas":[' + ",".join(vmas) + "]}"
    text = json.dumps(head, indent=indent)
    pad = " " * indent
    if not vmas:
        return text[:-2] + f',\n{pad}"vmas": []\n}}'
    sep = ",\n" + pad * 2
    return text[:-2] + f',\n{pad}"vmas": [\n{pad * 2}' + sep.join(vmas) + f"\n{pad}]\n}}"
