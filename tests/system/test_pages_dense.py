"""PAGEMAP_SCAN used two ways gives one answer.

On a sparse process the ioctl picks the pages worth reading; on a dense one
(smaps: at least one page in DENSE_RATIO resident or swapped) every page is
read and the ioctl only finds the zero page. Both must give the same
PageInfos, zero page included, as root and as `nobody` (without root the
zero page is only known through PAGE_IS_PFNZERO). The VMAs carry real smaps
(the dense decision reads Rss and Swap from them), as `snapshot --pages` has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from targets import spawn_target
from test_pages_kernel import IS_ROOT, MAIN, PAGE, REPO, _cleanup

from vmainspect.procfs import pages
from vmainspect.procfs.pages import read_pages
from vmainspect.procfs.parse import parse_smaps
from vmainspect.procfs.reader import ProcReader

READER = r"""
import json, os, sys
from vmainspect.procfs import pages
from vmainspect.procfs.parse import parse_smaps
from vmainspect.procfs.reader import ProcReader
pid = int(sys.argv[1])
page = os.sysconf("SC_PAGESIZE")
vmas = parse_smaps(ProcReader(pid).read("smaps"))
out = []
for attempt in range(5):  # a shared library's pages may change between two reads
    got = {}
    for name, ratio in (("sparse", 0), ("dense", 10**9)):
        pages.DENSE_RATIO = ratio
        r = pages.read_pages(ProcReader(pid), vmas, page)
        got[name] = {
            "dense": pages._dense(vmas, page),
            "caps": [r.pfn_visible, r.kpageflags, r.kpagecount, r.pagemap_scan],
            "notes": list(r.notes),
            "infos": [[v.start, [getattr(i.counts, k) for k in ("present", "swapped", "file", "anon",
                       "exclusive", "dirty", "zero", "thp", "ksm", "shared")],
                       [[x.first, x.count, x.state] for x in i.runs], i.shared_runs]
                      for v, i in zip(vmas, r.infos)],
        }
    out = got
    if got["sparse"]["infos"] == got["dense"]["infos"]:
        break
print(json.dumps({"uid": os.geteuid(), **out}))
"""


def _read_as(pid: int, user: str | None) -> dict:
    cmd = [sys.executable, "-c", READER, str(pid)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def target():
    t = spawn_target(MAIN, user="65534" if IS_ROOT else None)
    try:
        yield t
    finally:
        _cleanup(t)


def _check(out: dict) -> None:
    sparse, dense = out["sparse"], out["dense"]
    assert (sparse["dense"], dense["dense"]) == (False, True)  # both paths were taken
    assert sparse["caps"] == dense["caps"] and sparse["caps"][3] is True  # PAGEMAP_SCAN used by both
    assert sparse["notes"] == dense["notes"]
    assert sparse["infos"] == dense["infos"]
    zero = sum(c[6] for _, c, _, _ in dense["infos"])
    assert zero >= 2  # the target reads two untouched pages: the zero page, seen by both paths


@pytest.mark.nobody
def test_dense_and_sparse_scan_agree_without_root(target):
    out = _read_as(target.pid, "65534" if IS_ROOT else None)
    assert out["uid"] != 0
    assert out["dense"]["caps"][:3] == [False, False, False]
    _check(out)


def test_dense_and_sparse_scan_agree_as_root(target):
    if not IS_ROOT:
        pytest.skip("needs root: kpageflags and PFNs")
    out = _read_as(target.pid, None)
    assert out["dense"]["caps"] == [True, True, True, True]
    _check(out)


def test_dense_decision_follows_smaps(target, monkeypatch):
    vmas = parse_smaps(ProcReader(target.pid).read("smaps"))
    used = sum(v.smaps["rss"] + v.smaps["swap"] for v in vmas)
    size = sum(v.end - v.start for v in vmas)
    monkeypatch.setattr(pages, "DENSE_RATIO", size // used + 1)
    assert pages._dense(vmas, PAGE)
    monkeypatch.setattr(pages, "DENSE_RATIO", max(size // used - 1, 0))
    assert not pages._dense(vmas, PAGE)
    # VMAs without smaps (as from /proc/PID/maps): never dense, the scan picks the pages
    bare = [pages.Vma(v.start, v.end, v.perms, 0, "", 0, None, "anon-private", (), {}) for v in vmas]
    assert not pages._dense(bare, PAGE)
    assert read_pages(ProcReader(target.pid), bare, PAGE).pagemap_scan
