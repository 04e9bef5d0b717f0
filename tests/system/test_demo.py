"""`vmainspect demo --script`: every claim holds on this machine, measured from the kernel.

The claims are computed by vmainspect from snapshots of the workload; these
tests check that they all hold as root, that without root the claims that
need page flags are unknown (never false), and that the JSON says what was
measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from schema_check import validate as validate_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEP_IDS = [
    "anon-mmap",
    "touch-pages",
    "huge-first-touch",
    "cold-file-read",
    "private-write",
    "shared-map",
    "shared-write",
    "folio-dirty",
    "msync",
    "close-fd",
    "zero-copy",
    "ipc",
    "reclaim",
    "mprotect",
    "munmap-hole",
    "mremap-grow",
    "madvise-dontneed",
    "fork",
    "fork-cow",
    "length-not-page-multiple",
    "sigbus",
    "article-munmap-offset",
    "article-munmap-wrong-range",
    "article-unchecked-ftruncate",
    "article-fixed",
    "crash",
    "torn-record",
]
# steps whose claim has a part only root can see (kpageflags, kpagecount, PFNs); crash: cachestat, no root
ROOT_STEPS = {"shared-map", "shared-write", "msync", "zero-copy", "ipc", "fork", "fork-cow"}


def _env(path: str = REPO) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_script(user: str | None = None, path: str = REPO) -> tuple[subprocess.CompletedProcess, dict | None]:
    cmd = [sys.executable, "-m", "vmainspect", "demo", "--script", "--json"]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env(path), cwd="/")
    doc = json.loads(p.stdout) if p.stdout.strip() else None
    if doc is not None:
        validate_schema(doc, "vmainspect/demo@1")  # every real output, against the shipped file
    return p, doc


def _leftover_dirs(pid: int) -> list[str]:
    import tempfile

    out = []
    for root in {tempfile.gettempdir(), "/var/tmp"}:
        out += [n for n in os.listdir(root) if n.startswith(f"vmainspect-demo-{pid}-")]
    return out


@pytest.fixture(scope="module")
def root_run():
    if os.geteuid() != 0:
        pytest.skip("needs root: /proc/kpageflags, /proc/kpagecount and PFNs are root-only")
    return run_script()


@pytest.mark.root
def test_every_claim_holds_as_root(root_run):
    p, doc = root_run
    assert p.returncode == 0, p.stderr
    assert doc["schema"] == "vmainspect/demo@1"
    assert [s["id"] for s in doc["steps"]] == STEP_IDS
    failed = {s["id"]: (s.get("reason"), s["measured"]) for s in doc["steps"] if s["holds"] is not True}
    assert not failed
    for s in doc["steps"]:
        assert set(s) >= {"id", "title", "claim", "measured", "holds"}
        assert s["title"] and s["claim"] and s["measured"]


@pytest.mark.root
def test_measured_numbers_are_the_kernels(root_run):
    """Spot checks of what the steps measured, against what the lesson asked for."""
    _, doc = root_run
    st = {s["id"]: s["measured"] for s in doc["steps"]}
    assert st["anon-mmap"]["present_pages"] == 0
    assert st["touch-pages"]["present_after"] == st["touch-pages"]["touched_pages"] == 64
    assert st["touch-pages"]["minor_faults"] >= 64
    cold = st["cold-file-read"]
    assert cold["page_cache_before"] == 0 and cold["major_faults"] >= 1
    assert cold["present_after"] > cold["read_pages"]
    assert st["private-write"]["anon_pages"] == [0, 1, 2, 3]
    assert st["private-write"]["file_unchanged"] is True
    assert set(st["shared-write"]["dirty_pages"]) >= {0, 100, 200}
    assert st["shared-write"]["page_cache_dirty"] >= 3
    # msync writes its own pages first: dirty right before msync, clean after
    assert st["msync"]["dirty_before_msync"] >= 3 and st["msync"]["dirty_mapped_before_msync"] >= 3
    assert st["msync"]["dirty_after_msync"] == 0 and st["msync"]["dirty_mapped_after_msync"] == 0
    assert st["close-fd"]["fd_after"] is None and st["close-fd"]["fd_before"].endswith("shared.dat")
    assert (st["mprotect"]["vmas_before"], st["mprotect"]["vmas_after"]) == (1, 3)
    assert st["mprotect"]["perms"] == ["rw-p", "r--p", "rw-p"]
    assert st["madvise-dontneed"]["present_after"] == 0
    assert st["fork"]["shared"] == st["fork"]["present"] == st["fork"]["child_present"] > 0
    assert st["fork-cow"]["shared_before"] - st["fork-cow"]["shared_after"] == 3
    assert st["sigbus"]["child_signal"] == "SIGBUS"
    assert st["crash"]["shared"]["in_file_after"] is True
    assert st["crash"]["private"]["in_file_after"] is False
    assert st["crash"]["shared+msync"]["dirty_in_cache_after"] == 0
    # the new lessons
    assert (
        st["folio-dirty"]["page_cache_dirty_before"] == 0 and st["folio-dirty"]["page_cache_dirty_after"] > 1
    )
    assert st["zero-copy"]["buffer_anon_pages"] == st["zero-copy"]["mapping_file_pages"] == 64
    assert st["zero-copy"]["same_pfns_as_page_cache"] is True
    assert st["ipc"]["peer_read"] == "hello from the workload" and st["ipc"]["same_pfns"] is True
    # MADV_PAGEOUT may leave a few pages (docs/kernel-notes.md): most must go
    assert st["reclaim"]["file_pages_after_pageout"] <= 128 and st["reclaim"]["major_faults_rereading"] >= 1
    assert st["length-not-page-multiple"]["vma_size"] == 8192
    assert st["length-not-page-multiple"]["bytes_after_eof_all_zero"] is True
    assert st["article-munmap-offset"]["munmap_errno"] == "EINVAL"
    assert st["article-munmap-offset"]["vmas_after_munmap"] == 1  # leaked
    assert st["article-munmap-wrong-range"]["munmap_errno"] == "0 (success)"
    assert st["article-munmap-wrong-range"]["neighbour_mapped_after"] is False
    assert st["article-unchecked-ftruncate"]["ftruncate_errno"] == "EFBIG"
    assert st["article-unchecked-ftruncate"]["child_signal"] == "SIGBUS"
    assert st["article-fixed"]["vmas_after_munmap"] == 0 and st["article-fixed"]["file_size"] == 112
    assert st["torn-record"]["new_pages"] == [0, 1, 2]


@pytest.mark.root
def test_every_step_has_its_evidence(root_run):
    """Faults and page-state transitions per step, named after the lesson's own mappings."""
    _, doc = root_run
    ev = {s["id"]: s["evidence"] for s in doc["steps"]}
    assert len(ev) >= 22
    touch = ev["touch-pages"]
    assert {"mapping": "anon", "from": "absent", "to": "anon", "pages": 64} in touch["transitions"]
    assert touch["faults"]["minor"] >= 64
    assert touch["faults"]["interpreter"] >= 0  # the interpreter's own faults: counted apart
    by_map = {f["mapping"]: f for f in touch["faults"]["by_mapping"]}
    assert by_map["anon"]["minor"] == 64
    # the touching happens in libc's memset: a name a student knows
    assert any(f["function"] == "memset (libc)" for f in touch["faults"]["by_function"])
    cold = ev["cold-file-read"]
    assert cold["faults"]["major"] >= 1
    assert any(t["mapping"] == "private" and t["to"] == "file" for t in cold["transitions"])
    assert ev["crash"]["table"][0][0] == "mapping" and len(ev["crash"]["table"]) == 4
    # the moment a step is about: what msync, MADV_PAGEOUT and the article's munmap changed
    assert {"mapping": "shared", "from": "file-dirty", "to": "file", "pages": 3} in ev["msync"]["transitions"]
    dropped = [t for t in ev["reclaim"]["transitions"] if t["mapping"] == "reclaim" and t["to"] == "absent"]
    assert len(dropped) == 1 and dropped[0]["from"] == "file" and dropped[0]["pages"] >= 128
    wrong = ev["article-munmap-wrong-range"]["transitions"]
    assert {"mapping": "neighbour", "from": "anon", "to": "unmapped", "pages": 1} in wrong
    # faults are named after libc's functions, never the interpreter's internals
    for sid, e in ev.items():
        for f in e["faults"]["by_function"] or ():
            assert "python" not in f["function"] and "ctypes" not in f["function"], (sid, f)


@pytest.mark.nobody
@pytest.mark.root("compares a root run with a run as nobody")
def test_script_as_nobody_marks_root_claims_unknown_not_false(root_run, nobody_pythonpath):
    p, doc = run_script("nobody", nobody_pythonpath)
    assert p.returncode == 0, p.stderr
    assert doc["root"] is False
    by = {s["id"]: s for s in doc["steps"]}
    assert list(by) == STEP_IDS
    for sid, s in by.items():
        if sid in ROOT_STEPS:
            assert s["holds"] is None, (sid, s)
            assert "needs root" in s["reason"]
        else:
            assert s["holds"] is True, (sid, s)
    assert by["shared-write"]["measured"]["dirty"] is None  # unknown, not 0
    assert by["shared-write"]["measured"]["read_sees_new_bytes"] is True
    assert by["fork"]["measured"]["exclusive_after"] == 0  # pagemap bit 56: no root needed
    assert by["crash"]["measured"]["shared+msync"]["dirty_in_cache_after"] == 0  # cachestat: no root needed


def test_readable_report_and_usage_errors():
    env = _env()
    p = subprocess.run(
        [sys.executable, "-m", "vmainspect", "demo", "--json"], capture_output=True, text=True, env=env
    )
    assert p.returncode == 2 and "need --script" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "vmainspect", "demo", "--auto", "0"], capture_output=True, text=True, env=env
    )
    assert p.returncode == 2 and "--auto" in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "vmainspect", "demo", "--list"], capture_output=True, text=True, env=env
    )
    assert p.returncode == 0
    assert [line.split()[1] for line in p.stdout.splitlines()] == STEP_IDS


def test_scripted_mode_and_crash_never_import_textual():
    code = (
        "import sys; from vmainspect.demo import lesson, crash, workload; "
        "from vmainspect.commands import demo, crash as c; "
        "assert 'textual' not in sys.modules, 'textual imported'"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert p.returncode == 0, p.stderr
