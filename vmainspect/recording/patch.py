"""JSON patches between two JSON documents: the delta format of recordings.

``make_patch(a, b)`` returns a patch node turning ``a`` into ``b`` (None when
they are equal); ``apply_patch(a, node)`` applies it, raising ``PatchError``
when the patch does not fit ``a`` (a damaged or hostile file).

A patch node is one of:

- ``{"=": value}``: replace with ``value``;
- ``{"{": {key: node, ...}, "-": [key, ...]}``: an object with the keys in
  ``"{"`` patched (a new key is a ``"="`` node) and those in ``"-"`` removed;
- ``{"[": [op, ...]}``: a list rebuilt from the old one by ops: an integer
  ``n > 0`` keeps the next n old elements, ``n < 0`` drops the next -n, a
  list inserts its elements, an object patches the next old element; old
  elements left after the last op are kept.

Lists of VMAs are aligned by their ``start`` address, mapped files by device
and inode, and lists of page runs by value, so an unchanged VMA costs a few bytes and a VMA whose pages changed
carries only the runs that changed.
"""

from __future__ import annotations

from typing import Any


class PatchError(ValueError):
    pass


# the patch a recording writes for a frame whose snapshot is the previous one (a kept map)
EMPTY_PATCH: dict[str, Any] = {"{": {}}


_NOKEY = object()
# First elements of the keys that are not an element's own value. Being neither
# int nor str, they never equal the first element of a list's or tuple's key.
_START, _FILE, _NULL = object(), object(), object()


def _key(x: Any) -> Any:
    """Alignment key of a list element (equal keys mean equal JSON), or _NOKEY.

    Objects align by their "start" address (VMAs), anything else by value.
    Tuples come from snapshot_io.to_dict (page runs, flags) and hold ints and
    strings only, so they are their own key; lists are checked.
    """
    t = type(x)
    if t is tuple or t is str or t is int:
        return x
    if t is dict:
        s = x.get("start")
        if type(s) is int:
            return (_START, s)
        d, i = x.get("dev"), x.get("inode")  # a snapshot's mapped files: by device and inode
        return (_FILE, d, i) if type(d) is str and type(i) is int else _NOKEY
    if t is list:
        for e in x:
            te = type(e)
            if te is not int and te is not str:
                return _NOKEY
        return tuple(x)
    if x is None:
        return (_NULL,)
    return (t, x)  # bool and float: never equal to an int key, nor to a list's


def _by_identity(k: Any) -> bool:
    """The key names an object (a VMA, a file), not its value: equal keys, maybe other values."""
    return type(k) is tuple and len(k) > 1 and (k[0] is _START or k[0] is _FILE)


def make_patch(a: Any, b: Any) -> dict[str, Any] | None:
    """The patch that turns ``a`` into ``b`` (JSON-ready data), or None if equal."""
    if a == b and type(a) is type(b):
        return None
    ta, tb = type(a), type(b)
    if ta is dict and tb is dict:
        sub: dict[str, Any] = {}
        for k, vb in b.items():
            if k in a:
                p = make_patch(a[k], vb)
                if p is not None:
                    sub[k] = p
            else:
                sub[k] = {"=": vb}
        gone = [k for k in a if k not in b]
        if not sub and not gone:
            return None  # equal as JSON (a tuple and a list)
        out: dict[str, Any] = {"{": sub}
        if gone:
            out["-"] = gone
        return out
    if ta in (list, tuple) and tb in (list, tuple):
        ops = _list_ops(a, b)
        if ops is not None:
            return {"[": ops} if ops else None
    return {"=": b}


def _keyed_ops(a: Any, b: Any) -> list[Any] | None:
    """Fast path for long lists: page runs (unique tuples) and VMAs (objects with unique "start").

    Keys, sets and comparisons run in C; the Python loops run once per
    *change* (and once per kept element only for VMAs, comparing in C).
    None if the lists do not qualify (unique keys, common keys in the same
    order); the general walk in _list_ops handles those.
    """
    types = set(map(type, a)) | set(map(type, b))
    if types == {tuple}:
        ka, kb, by_value = a, b, True
    elif types == {dict}:
        ka = [x.get("start") for x in a]
        kb = [x.get("start") for x in b]
        if set(map(type, ka)) | set(map(type, kb)) != {int}:
            return None
        by_value = False
    else:
        return None
    sa, sb = set(ka), set(kb)
    if len(sa) != len(ka) or len(sb) != len(kb):
        return None  # duplicate keys
    common = sa & sb
    if [x for x in ka if x in common] != [x for x in kb if x in common]:
        return None  # common elements out of order
    dels = [i for i, x in enumerate(ka) if x not in common]
    ins = [j for j, x in enumerate(kb) if x not in common]
    ops: list[Any] = []

    def keep(i: int, j: int, n: int) -> None:
        if by_value:  # same key: same value
            ops.append(n)
            return
        run = 0  # elements kept since the last patch op
        for k in [k for k in range(n) if a[i + k] != b[j + k]]:
            p = make_patch(a[i + k], b[j + k])
            if p is None:
                continue  # equal as JSON (tuple vs list)
            if k > run:
                ops.append(k - run)
            ops.append(p)
            run = k + 1
        if n > run:
            ops.append(n - run)

    i = j = di = ii = 0
    na, nb = len(a), len(b)
    while i < na or j < nb:
        nd = dels[di] if di < len(dels) else na
        ni = ins[ii] if ii < len(ins) else nb
        n = min(nd - i, ni - j)
        if n:
            keep(i, j, n)
            i += n
            j += n
        if i == nd and i < na:
            k = di
            while k < len(dels) and dels[k] == i + (k - di):
                k += 1
            ops.append(-(k - di))
            i += k - di
            di = k
        if j == ni and j < nb:
            k = ii
            while k < len(ins) and ins[k] == j + (k - ii):
                k += 1
            ops.append(list(b[j : j + (k - ii)]))
            j += k - ii
            ii = k
    while ops and type(ops[-1]) is int and ops[-1] > 0:
        ops.pop()
    return ops


def _list_ops(a: Any, b: Any) -> list[Any] | None:
    if len(a) + len(b) > 64:
        keyed = _keyed_ops(a, b)
        if keyed is not None:
            return keyed
    ka = [_key(x) for x in a]
    kb = [_key(x) for x in b]
    if _NOKEY in ka or _NOKEY in kb:
        return None
    sa, sb = set(ka), set(kb)
    ops: list[Any] = []

    def emit(op: Any) -> None:
        if ops and type(op) is int and type(ops[-1]) is int and (op > 0) == (ops[-1] > 0):
            ops[-1] += op
        elif ops and type(op) is list and type(ops[-1]) is list:
            ops[-1].extend(op)
        else:
            ops.append(op)

    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        if ka[i] == kb[j]:
            p = make_patch(a[i], b[j]) if _by_identity(ka[i]) else None  # keyed by identity: compare
            emit(1 if p is None else p)
            i += 1
            j += 1
        elif ka[i] not in sb:
            emit(-1)
            i += 1
        elif kb[j] not in sa:
            emit([b[j]])
            j += 1
        else:  # both present elsewhere, out of order: drop the old one
            emit(-1)
            i += 1
    if i < na:
        emit(-(na - i))
    if j < nb:
        emit(list(b[j:]))
    while ops and type(ops[-1]) is int and ops[-1] > 0:
        ops.pop()  # old elements left after the last op are kept
    return ops


_MISSING = object()


def apply_patch(a: Any, node: Any) -> Any:
    """Apply a patch made by make_patch; PatchError if it does not fit ``a``."""
    if type(node) is not dict:
        raise PatchError("a patch node must be an object")
    if "=" in node:
        return node["="]
    if "{" in node:
        if type(a) is not dict:
            raise PatchError("object patch applied to a non-object")
        sub = node["{"]
        if type(sub) is not dict:
            raise PatchError("bad object patch")
        out = dict(a)
        for k in node.get("-", ()):
            if type(k) is not str or k not in out:
                raise PatchError(f"cannot remove missing key {k!r}")
            del out[k]
        for k, p in sub.items():
            out[k] = apply_patch(out.get(k, _MISSING), p)
        return out
    if "[" in node:
        if type(a) is not list:
            raise PatchError("list patch applied to a non-list")
        ops = node["["]
        if type(ops) is not list:
            raise PatchError("bad list patch")
        out_l: list[Any] = []
        i, n = 0, len(a)
        for op in ops:
            t = type(op)
            if t is int:
                if op > 0:
                    if i + op > n:
                        raise PatchError("list patch keeps past the end")
                    out_l.extend(a[i : i + op])
                    i += op
                elif op < 0:
                    if i - op > n:
                        raise PatchError("list patch drops past the end")
                    i -= op
                else:
                    raise PatchError("list patch op 0")
            elif t is list:
                out_l.extend(op)
            elif t is dict:
                if i >= n:
                    raise PatchError("list patch modifies past the end")
                out_l.append(apply_patch(a[i], op))
                i += 1
            else:
                raise PatchError("bad list patch op")
        out_l.extend(a[i:])
        return out_l
    raise PatchError("unknown patch node")
