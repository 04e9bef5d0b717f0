"""Text output carries names, paths and symbols from the target: control characters
are escaped (no terminal escape reaches the terminal), in faults, diff and maps."""

from __future__ import annotations

import os
import subprocess
import sys

from cli_helpers import run_cli

from vmainspect.model import replace
from vmainspect.safetext import printable
from vmainspect.snapshot import io as snapshot_io
from vmainspect.snapshot.diff import diff_snapshots, render_text

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
ESC_NAME = "\x1b[31mev\x07il"  # 11 characters: fits in comm (15)


def test_printable():
    assert printable("plain /usr/lib/x.so") == "plain /usr/lib/x.so"
    assert printable("a\x1b[31mb\x07\x9b\x7f") == "a\\x1b[31mb\\x07\\x9b\\x7f"
    assert printable("é 漢 😀") == "é 漢 😀"  # printable non-ASCII stays
    assert printable("x\u202ey\u2028") == "x\\u202ey\\u2028"  # bidi override, line separator
    assert printable("tab\tnl\n") == "tab\\x09nl\\x0a"


def evil_target():
    code = (
        f"open('/proc/self/comm', 'w').write({ESC_NAME!r}); import mmap, time; "
        "m = mmap.mmap(-1, 1 << 20); print(1, flush=True)\n"
        "while True:\n"
        "    for i in range(0, 1 << 20, 4096): m[i] = 1\n"
        "    m.madvise(mmap.MADV_DONTNEED); time.sleep(0.01)"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"1\n"
    return p


def test_faults_and_maps_escape_the_process_name():
    p = evil_target()
    try:
        for args in (("faults", p.pid, "--duration", "0.3"), ("maps", p.pid)):
            r = run_cli(*args)
            assert r.returncode == 0, r.stderr
            assert "\x1b" not in r.stdout and "\x07" not in r.stdout
        r = run_cli("faults", p.pid, "--duration", "0.3")
        assert printable(ESC_NAME) in r.stdout
    finally:
        p.kill()
        p.wait()


def test_diff_text_escapes_paths():
    a = snapshot_io.load(os.path.join(FIXTURES, "small.json"))
    vmas = list(a.vmas)
    vmas[0] = replace(vmas[0], path="/tmp/\x1b]0;owned\x07x")
    b = replace(a, vmas=tuple(vmas), process=replace(a.process, name=ESC_NAME))
    text = render_text(diff_snapshots(a, b))
    assert "\x1b" not in text and "\x07" not in text
    assert "/tmp/\\x1b]0;owned\\x07x" in text and printable(ESC_NAME) in text


def test_huge_numbers_are_one_line_usage_errors():
    for code, args in (
        (2, ("faults", "1", "--period", "18446744073709551616")),
        (2, ("faults", "1", "--period", "9223372036854775808")),
        (2, ("faults", "1", "--top", "-1")),
        (2, ("faults", "1", "--duration", "1e999")),
        (3, ("attach", "99999999999999999999999")),  # no such process
        (3, ("maps", "18446744073709551616")),
    ):
        r = run_cli(*args)
        assert r.returncode == code, (args, r.stderr)
        assert "Traceback" not in r.stderr and "vmainspect" in r.stderr.strip().splitlines()[-1], r.stderr


def test_error_messages_escape_paths(tmp_path):
    bad = str(tmp_path / "no\x1b]0;owned\x07such.json")
    target = subprocess.Popen(["sleep", "600"])
    try:
        out = str(tmp_path / "d\x1b[2J" / "x.json")
        for args in (("open", bad), ("diff", bad, bad), ("snapshot", target.pid, "-o", out)):
            r = run_cli(*args)
            assert r.returncode in (2, 5), (args, r.stderr)
            assert "\x1b" not in r.stderr and "\x07" not in r.stderr and "\\x1b" in r.stderr, r.stderr
    finally:
        target.kill()
        target.wait()


def test_json_visible_escapes_what_a_terminal_obeys():
    import json

    from vmainspect.safetext import json_visible

    text = "a\x9bb\u202ec\u2028d\u200be\u2066f\ufeffg\xadh é 漢 😀 [bold]x[/]"
    doc = json.dumps({"p": text}, ensure_ascii=False).encode()
    out = json_visible(doc)
    assert out.isascii() is False  # printable non-ASCII stays as it is
    for c in "\x9b\u202e\u2028\u200b\u2066\ufeff\xad":
        assert c.encode() not in out
    assert b"\\u009b" in out and b"\\u202e" in out
    assert json.loads(out) == {"p": text}  # the same document to a JSON reader
    plain = b'{"p": "plain \\u001b"}'
    assert json_visible(plain) is plain


def test_json_output_shows_c1_controls_and_bidi_marks_as_escapes(tmp_path):
    """A mapped file named with U+009B (8-bit CSI) and U+202E (right-to-left override): snapshot
    to stdout (compact and indented), a recording and cache --json carry them as \\uXXXX, and
    read back to the exact name."""
    import json

    name = "a\u202egnp.exe\x9b31m[bold]x[red]"
    path = tmp_path / name
    path.write_bytes(b"x" * 8192)
    code = (
        "import mmap, sys; f = open(sys.argv[1], 'rb'); "
        "m = mmap.mmap(f.fileno(), 8192, prot=mmap.PROT_READ); m[0]; print(1, flush=True); sys.stdin.read()"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stdin=subprocess.PIPE
    )
    try:
        assert p.stdout.readline() == b"1\n"
        rec = tmp_path / "r.jsonl"
        outs = []
        for args in (
            ("snapshot", p.pid),
            ("snapshot", p.pid, "--indent", "1"),
            ("cache", tmp_path, "--json"),
        ):
            r = run_cli(*args)
            assert r.returncode == 0, r.stderr
            outs.append(r.stdout)
        r = run_cli("record", p.pid, "-o", rec, "--duration", "0.3", "--interval", "0.1", "--no-faults")
        assert r.returncode == 0, r.stderr
        outs.append(rec.read_text())
    finally:
        p.kill()
        p.wait()
    for out in outs:
        assert "\x9b" not in out and "\u202e" not in out
        assert "\\u009b" in out and "\\u202e" in out
    for out in outs[:2]:
        assert str(path) in [v["path"] for v in json.loads(out)["vmas"]]
    assert str(path) in [f["path"] for f in json.loads(outs[2])["files"]]
