"""read_pages() without root: a target and a reader that both run as `nobody`.

When the tests themselves do not run as root, target and reader simply run
as the current user. Targets and helpers are in test_pages_kernel.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from targets import read_smaps_kb, spawn_target
from test_pages_kernel import IS_ROOT, MAIN, PAGE, REPO, _cleanup, assert_same_but_zero, vmas_of

pytestmark = pytest.mark.nobody  # every test reads through nobody_view

NOBODY = "65534"

READER = r"""
import json, os, sys
import msgspec
from vmainspect.model import Vma
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.reader import ProcReader
pid = int(sys.argv[1])
vmas = []
for line in open(f"/proc/{pid}/maps"):
    parts = line.split(None, 5)
    s, e = (int(x, 16) for x in parts[0].split("-"))
    vmas.append(Vma(s, e, parts[1], 0, "", 0, None, "anon-private", (), {}))
out = {"uid": os.geteuid(), "pairs": []}
for attempt in range(3):        # three pairs: see test_nonroot_scan_equals_pagemap_except_the_zero_page
    pair = {}
    for name, use in (("scan", True), ("plain", False)):
        r = read_pages(ProcReader(pid), vmas, os.sysconf("SC_PAGESIZE"), use_scan=use)
        pair[name] = {
            "caps": [r.pfn_visible, r.kpageflags, r.kpagecount, r.pagemap_scan],
            "notes": list(r.notes),
            "infos": [{"start": v.start, "counts": msgspec.structs.asdict(i.counts),
                       "runs": [[x.first, x.count, x.state] for x in i.runs],
                       "shared_runs": i.shared_runs} for v, i in zip(vmas, r.infos)],
        }
    out["pairs"].append(pair)
out.update(out["pairs"][0])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def nobody_view():
    user = NOBODY if IS_ROOT else None  # not root already: run as ourselves
    t = spawn_target(MAIN, user=user)
    try:
        cmd = [sys.executable, "-c", READER, str(t.pid)]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        env = dict(os.environ, PYTHONPATH=REPO)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=60)
        assert p.returncode == 0, p.stderr
        yield t, json.loads(p.stdout)
    finally:
        _cleanup(t)


def test_nonroot_pfn_fields_unknown(nobody_view):
    _t, out = nobody_view
    assert out["uid"] != 0
    assert out["scan"]["caps"] == [False, False, False, True]
    assert out["plain"]["caps"] == [False, False, False, False]
    for path in ("scan", "plain"):
        assert any("PFNs hidden" in n for n in out[path]["notes"])
        for info in out[path]["infos"]:
            c = info["counts"]
            assert c["dirty"] is None and c["thp"] is None and c["ksm"] is None and c["shared"] is None
            assert info["shared_runs"] is None
    for info in out["plain"]["infos"]:
        assert info["counts"]["zero"] is None  # plain pagemap cannot see the zero page
    for info in out["scan"]["infos"]:
        assert info["counts"]["zero"] is not None  # PAGE_IS_PFNZERO needs no root


def test_nonroot_scan_equals_pagemap_except_the_zero_page(nobody_view):
    """Without root the two paths differ only where PAGE_IS_PFNZERO knows more."""
    t, out = nobody_view
    vmas = vmas_of(t.pid)  # the reader's (nobody's) VMAs carry no paths: the kernel's, read here
    assert [v.start for v in vmas] == [i["start"] for i in out["scan"]["infos"]]
    assert [i["start"] for i in out["scan"]["infos"]] == [i["start"] for i in out["plain"]["infos"]]
    # The exclusive bit of a shared library's page cache pages changes while other processes
    # map and unmap the library: assert_same_but_zero leaves it out there. Every pair agrees.
    for pair in out["pairs"]:
        zero_seen = assert_same_but_zero(pair["scan"]["infos"], pair["plain"]["infos"], vmas, t.report["dir"])
    assert zero_seen >= 2  # pages 10 and 11 of the anon mapping, at least
    hz = next(i for i in out["plain"]["infos"] if i["start"] == t.report["hz"])
    if t.report["hz_thp"] and hz["counts"]["present"] == 512:
        # the huge zero page: pagemap alone says "file" (bit 61), and a note explains it
        assert hz["runs"] == [[0, 512, "file"]]
        assert any("huge zero page" in n for n in out["plain"]["notes"])


def test_nonroot_zero_pages_via_scan(nobody_view):
    t, out = nobody_view
    info = next(i for i in out["scan"]["infos"] if i["start"] == t.report["anon"])
    st = [r[2] for r in info["runs"] for _ in range(r[1])]
    assert [i for i, s in enumerate(st) if s == "zero"] == [10, 11]
    assert [i for i, s in enumerate(st) if s == "anon"] == [0, 1, 5, 17, 40, 63]
    assert info["counts"]["exclusive"] == 6


def test_nonroot_agrees_with_smaps(nobody_view):
    t, out = nobody_view
    smaps = {s: d for s, _, d in read_smaps_kb(t.pid)}
    for info in out["scan"]["infos"]:
        c, sm = info["counts"], smaps[info["start"]]
        assert c["present"] - c["zero"] == sm["Rss"] // PAGE, hex(info["start"])
        assert c["swapped"] * PAGE == sm["Swap"]
