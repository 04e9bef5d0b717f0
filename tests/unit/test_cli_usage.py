"""Usage errors: one line on stderr naming the problem and where the help is, exit code 2."""

from __future__ import annotations

import pytest

from vmainspect import cli
from vmainspect.errors import EXIT_USAGE

BAD = [
    ("maps", "xyz"),
    ("maps", "1", "--sort", "nope"),
    ("snapshot",),
    ("snapshot", "1", "--indent", "many"),
    ("faults", "1", "--period", "0"),
    ("faults", "1", "--duration", "soon"),
    ("attach", "--interval", "fast"),
    ("open",),
    ("diff", "only-one.json"),
    ("record", "1"),
    ("crash", "--mapping", "nope"),
    ("demo", "--auto", "x"),
    ("cache",),
    ("wss", "x"),
    ("serve", "--port", "x"),
    ("maps", "1", "--no-such-option"),
]


def _usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv", BAD, ids=" ".join)
def test_one_line_with_a_help_hint(argv, capsys):
    if argv[0] not in cli._subcommands(cli.build_parser()):
        pytest.skip(f"no {argv[0]} command in this checkout")
    line = _usage_error(list(argv), capsys)
    assert line.startswith(f"vmainspect {argv[0]}: ")
    assert line.endswith(f"(see 'vmainspect {argv[0]} --help')")


def test_unknown_command(capsys):
    line = _usage_error(["frobnicate"], capsys)
    assert line.startswith("vmainspect: argument COMMAND: invalid choice: 'frobnicate'")
    assert line.endswith("(see 'vmainspect --help')")


def test_no_command_lists_the_commands(capsys):
    assert cli.main([]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "demo, attach, open" in err and "(see 'vmainspect --help')" in err


def test_help_is_not_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["maps", "--help"])
    assert e.value.code == 0
    assert "usage: vmainspect maps" in capsys.readouterr().out
