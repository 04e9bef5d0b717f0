"""Why a read of another process's smaps was refused: the message names the check that failed."""

from __future__ import annotations

from vmainspect.procfs.reader import cap_names, ptrace_denied_reason

FULL = (1 << 41) - 1  # CAP_CHOWN .. CAP_CHECKPOINT_RESTORE
PTRACE = 1 << 19
RESOURCE = 1 << 24


def _status(uid: int, gid: int, prm: int, eff: int | None = None) -> str:
    eff = prm if eff is None else eff
    return (
        f"Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{gid}\t{gid}\t{gid}\t{gid}\n"
        f"CapPrm:\t{prm:016x}\nCapEff:\t{eff:016x}\n"
    )


def _proc(tmp_path, me: str, target: str) -> str:
    root = tmp_path / "proc"
    for name, text in (("self", me), ("42", target)):
        (root / name).mkdir(parents=True)
        (root / name / "status").write_text(text)
    return str(root)


def test_another_user_without_cap_sys_ptrace(tmp_path):
    root = _proc(tmp_path, _status(65534, 65534, 0), _status(1000, 1000, 0))
    why = ptrace_denied_reason(42, root)
    assert why == "needs to be the process's user (uid 1000) or root (ptrace read access: CAP_SYS_PTRACE)"


def test_root_without_cap_sys_ptrace_is_told_so(tmp_path):
    root = _proc(tmp_path, _status(0, 0, FULL & ~PTRACE), _status(1000, 1000, 0))
    assert "root here lacks CAP_SYS_PTRACE" in ptrace_denied_reason(42, root)


def test_target_holding_a_capability_the_reader_lacks(tmp_path):
    """Same uid, but the target holds CAP_SYS_RESOURCE and the reader has neither it nor CAP_SYS_PTRACE."""
    root = _proc(tmp_path, _status(0, 0, FULL & ~PTRACE & ~RESOURCE), _status(0, 0, FULL & ~PTRACE))
    why = ptrace_denied_reason(42, root)
    assert "CAP_SYS_RESOURCE" in why and "CAP_SYS_PTRACE" in why
    assert "(CAP_SYS_RESOURCE)" in why  # the list names only what is missing
    assert "yama" not in why and "user or root" not in why


def test_cap_sys_ptrace_refused_anyway_names_the_missing_capability(tmp_path):
    """This machine's sandbox: root lacks CAP_SYS_RESOURCE, PID 1 holds it, CAP_SYS_PTRACE does not help."""
    root = _proc(tmp_path, _status(0, 0, FULL & ~RESOURCE), _status(0, 0, FULL))
    why = ptrace_denied_reason(42, root)
    assert why.startswith("the process holds CAP_SYS_RESOURCE, which this one lacks")
    assert "security module or sandbox policy" in why


def test_unreadable_status_falls_back_to_the_general_rule(tmp_path):
    why = ptrace_denied_reason(42, str(tmp_path / "nothing"))
    assert why == "needs to be the process's user or root (ptrace read access: CAP_SYS_PTRACE)"


def test_cap_names():
    assert cap_names(PTRACE | RESOURCE) == ["CAP_SYS_PTRACE", "CAP_SYS_RESOURCE"]
    assert cap_names(1 << 63) == ["cap_63"]
