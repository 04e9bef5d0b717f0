"""The recording's patch encoding: apply(a, make_patch(a, b)) == b, through JSON."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmainspect.recording.patch import PatchError, apply_patch, make_patch

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("ab", max_size=2))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text("abst", max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def roundtrip(a, b):
    # the writer patches in-memory data; the reader applies to data parsed from JSON
    p = make_patch(a, b)
    a_json = json.loads(json.dumps(a))
    if p is None:
        return a_json
    return apply_patch(a_json, json.loads(json.dumps(p)))


@settings(max_examples=100, deadline=None)
@given(json_values, json_values)
def test_patch_roundtrip_any_json(a, b):
    assert roundtrip(a, b) == json.loads(json.dumps(b))


@pytest.mark.parametrize(
    "a, b",
    [
        ([None, []], [[]]),  # an empty list's key is an empty tuple (it was indexed)
        ([None], [["null"]]),  # null and the list ["null"] had one key: kept as null
        ([1.0], [["float", 1]]),  # so had 1.0 and ["float", 1]
        ([{"start": 5, "x": 1}], [["start", 5]]),  # and a VMA and the list ["start", 5]
        ([["start", 5]], [{"start": 5, "x": 1}]),
        ([{"dev": "08:01", "inode": 3}], [["file", "08:01", 3]]),
    ],
)
def test_list_elements_whose_keys_looked_alike(a, b):
    """Found by hypothesis: list elements of different kinds never share an alignment key."""
    assert roundtrip(a, b) == json.loads(json.dumps(b))
    assert roundtrip(b, a) == json.loads(json.dumps(a))


runs = st.lists(
    st.tuples(st.integers(0, 50), st.integers(1, 9), st.sampled_from(["anon", "file", "absent"])), max_size=30
)


@settings(max_examples=150, deadline=None)
@given(runs, runs)
def test_patch_roundtrip_runs(a, b):
    assert roundtrip({"runs": a}, {"runs": b}) == {"runs": [list(x) for x in b]}


def vma(start, rss, runs=((0, 4, "anon"),)):
    return {
        "start": start,
        "end": start + 0x4000,
        "smaps": {"rss": rss, "pss": rss},
        "pages": {"runs": list(runs)},
    }


def test_unchanged_vmas_cost_nothing_and_changed_runs_are_local():
    big = [(i * 2, 1, "anon") for i in range(1000)]
    big = [x for r in big for x in (r, (r[0] + 1, 1, "absent"))]
    a = {"vmas": [vma(0x1000 * i, 4096) for i in range(200)] + [vma(0x999000, 8192, big)]}
    b = json.loads(json.dumps(a))
    b["vmas"][-1]["pages"]["runs"][1001] = [1001, 1, "file"]
    b["vmas"][50]["smaps"]["rss"] = 0
    p = make_patch(a, b)
    text = json.dumps(p)
    assert len(text) < 200, text
    assert apply_patch(json.loads(json.dumps(a)), p) == b


def test_vma_added_removed_and_moved():
    a = {"vmas": [vma(0x1000, 1), vma(0x5000, 2), vma(0x9000, 3)]}
    b = {"vmas": [vma(0x1000, 1), vma(0x7000, 9), vma(0x9000, 3), vma(0xD000, 4)]}
    assert roundtrip(a, b) == json.loads(json.dumps(b))


@pytest.mark.parametrize(
    "base,patch",
    [
        ([1, 2], {"[": [5]}),  # keeps past the end
        ([1, 2], {"[": [-3]}),  # drops past the end
        ({"a": 1}, {"[": [1]}),  # list patch on an object
        ([1], {"{": {}}),  # object patch on a list
        ({"a": 1}, {"{": {}, "-": ["b"]}),
        ({"a": 1}, {"{": {"b": {"{": {}}}}),
        ([1], {"[": [0]}),
        ([1], {"[": ["x"]}),
        ([1], "nonsense"),
        ([1], {"?": 1}),
    ],
)
def test_patch_that_does_not_fit_is_refused(base, patch):
    with pytest.raises(PatchError):
        apply_patch(base, patch)


def _as_runs(pieces):
    out, first = [], 0
    for count, state in pieces:
        out.append((first, count, state))
        first += count
    return out


# covering run lists like the collector's: 40+ runs (the fast path), shared prefixes likely
long_runs = st.lists(
    st.tuples(st.integers(1, 3), st.sampled_from(["anon", "file"])), min_size=33, max_size=50
).map(_as_runs)


@settings(max_examples=40, deadline=None)
@given(long_runs, long_runs)
def test_patch_roundtrip_long_run_lists_fast_path(a, b):
    assert roundtrip({"runs": a}, {"runs": b}) == {"runs": [list(x) for x in b]}


def test_fast_path_is_local_for_a_long_run_list():
    a = [(i * 2, 2, "anon" if i % 2 else "absent") for i in range(50000)]
    b = list(a)
    b[100] = (200, 1, "anon")
    b.insert(101, (201, 1, "file"))
    del b[40000]
    p = make_patch({"runs": a}, {"runs": b})
    assert len(json.dumps(p)) < 150
    assert apply_patch({"runs": [list(x) for x in a]}, json.loads(json.dumps(p))) == {
        "runs": [list(x) for x in b]
    }


def _vmas(spec):
    return [{"start": s, "end": s + 1, "smaps": {"rss": r}} for s, r in spec]


# VMA lists long enough for the fast path: unique starts in order, values that change
vma_lists = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2)), min_size=33, max_size=50).map(
    lambda xs: _vmas([(sum(g for g, _ in xs[: i + 1]), r) for i, (_, r) in enumerate(xs)])
)


@settings(max_examples=40, deadline=None)
@given(vma_lists, vma_lists)
def test_patch_roundtrip_long_vma_lists_fast_path(a, b):
    assert roundtrip({"vmas": a}, {"vmas": b}) == {"vmas": b}


def test_fast_path_on_many_vmas_is_local():
    a = _vmas([(i * 2, 0) for i in range(40000)])
    b = [dict(x) for x in a]
    b[123] = {"start": 246, "end": 247, "smaps": {"rss": 4096}}
    del b[30000]
    b.insert(500, {"start": 999, "end": 1000, "smaps": {"rss": 0}})
    p = make_patch({"vmas": a}, {"vmas": b})
    assert len(json.dumps(p)) < 250, p
    assert apply_patch({"vmas": a}, json.loads(json.dumps(p))) == {"vmas": b}


def test_mapped_files_align_by_device_and_inode():
    def f(inode, dirty, path="/x"):
        return {"path": path, "dev": "fe:00", "inode": inode, "page_cache": {"cached": 9, "dirty": dirty}}

    a = {"files": [f(i, 0) for i in range(100)]}
    b = json.loads(json.dumps(a))
    b["files"][40]["page_cache"]["dirty"] = 8  # one file's dirty count changed
    del b["files"][10]  # one file unmapped
    p = make_patch(a, b)
    assert len(json.dumps(p)) < 120, p
    assert apply_patch(json.loads(json.dumps(a)), p) == b
