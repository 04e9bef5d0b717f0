"""Messages that name the real cause, checked against what the kernel says about the process."""

from __future__ import annotations

import json
import os

import pytest
from cli_helpers import one_line_error, run_cli


def _kernel_thread() -> int:
    with open("/proc/2/stat", "rb") as f:
        flags = int(f.read().rsplit(b")", 1)[1].split()[6])
    if not flags & 0x00200000:  # PF_KTHREAD
        pytest.skip("PID 2 is not a kernel thread here (a PID namespace)")
    return 2


def test_faults_of_a_kernel_thread_says_it_has_no_address_space():
    r = run_cli("faults", _kernel_thread(), "--duration", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    notes = json.loads(r.stdout)["notes"]
    assert any(n.startswith("no address space") for n in notes), notes


def _status(pid: int | str) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_a_refused_read_names_the_check_that_failed():
    """Any process this one may not read: the message never blames yama, which does not restrict reads."""
    me = _status("self")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            os.close(os.open(f"/proc/{pid}/smaps", os.O_RDONLY))
            continue
        except PermissionError:
            pass
        except OSError:
            continue
        r = run_cli("maps", pid)
        if r.returncode != 4:
            continue
        line = one_line_error(r)
        assert "yama" not in line
        target = _status(pid)
        missing = int(target["CapPrm"], 16) & ~int(me["CapEff"], 16)
        if target["Uid"].split()[:3] == [me["Uid"].split()[3]] * 3 and missing:
            assert "CAP_" in line.split("holds", 1)[1], line  # the capabilities the process holds
        else:
            assert "CAP_SYS_PTRACE" in line, line
        return
    pytest.skip("every process here can be read by this user")
