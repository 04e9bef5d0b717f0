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
    ("faults", "1", "--pages", "--lock-budget", "0"),
    ("attach", "--interval", "fast"),
    ("open",),
    ("diff", "only-one.json"),
    ("record", "1"),
    ("crash", "--mapping", "nope"),
    ("demo", "--auto", "x"),
    ("cache",),
    ("wss", "x"),
    ("snapshot", "1", "-o", ""),  # was written as the current directory: exit 5
    ("record", "1", "-o", ""),
    ("cache", "/", "-o", ""),
    ("demo", "--script", "-o", ""),
    ("wss", "1", "--top", "0"),
    ("wss", "1", "--top", "-1"),  # was taken: ranked[:-1] left out the last VMA
    ("faults", "1", "--max-fault-rate", "-1"),
    ("serve", "--port", "x"),
    ("maps", "1", "--no-such-option"),
    ("attach", "1", "--lock-budget", "0"),
    ("attach", "1", "--lock-budget", "101"),
    ("record", "1", "-o", "x.jsonl", "--lock-budget", "nan"),
    ("record", "1", "-o", "x.jsonl", "--lock-budget", "-1"),
    ("record", "1", "-o", "x.jsonl", "--lock-budget", "1%"),
    ("record", "1", "-o", "x.jsonl", "--max-fault-rate", "-1"),
    ("record", "1", "-o", "x.jsonl", "--max-fault-rate", "1e3"),
    ("attach", "1", "--max-fault-rate", "lots"),
    ("attach", "1", "--max-fault-rate", str(1 << 41)),
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


@pytest.mark.parametrize(
    ("text", "fraction"), [("1", 0.01), ("0.5", 0.005), ("2.5", 0.025), ("100", None), ("1e-4", 1e-6)]
)
def test_lock_budget_is_a_percentage_given_to_the_session_as_a_fraction(text, fraction):
    from vmainspect.commands.argtypes import lock_budget

    for argv in (["record", "1", "-o", "x.jsonl"], ["attach", "1"], ["faults", "1", "--pages"]):
        args = cli.build_parser().parse_args([*argv, "--lock-budget", text])
        assert args.lock_budget == pytest.approx(float(text))
        assert lock_budget(args.lock_budget) == (None if fraction is None else pytest.approx(fraction))


def test_lock_budget_defaults_to_one_percent():
    from vmainspect.commands.argtypes import lock_budget
    from vmainspect.session import DEFAULT_LOCK_BUDGET

    assert DEFAULT_LOCK_BUDGET == 0.01
    for argv in (["record", "1", "-o", "x.jsonl"], ["attach", "1"], ["faults", "1"]):
        assert lock_budget(cli.build_parser().parse_args(argv).lock_budget) == DEFAULT_LOCK_BUDGET


@pytest.mark.parametrize("text", ["5", "100", "0.25"])
def test_serve_passes_a_lock_budget_on_as_the_percentage_given(text):
    """serve re-parses the attach options in each session: the text must mean the same there."""
    from vmainspect.commands.serve import _options_without, _sub_parser

    p = _sub_parser("attach")
    given = p.parse_args(["1", "--lock-budget", text])
    passed = _options_without(p, given, drop={"pid"})
    assert passed == ["--lock-budget", str(float(text))]
    assert p.parse_args(["1", *passed]).lock_budget == given.lock_budget


def test_a_bad_lock_budget_says_what_it_wants(capsys):
    line = _usage_error(["record", "1", "-o", "x.jsonl", "--lock-budget", "0"], capsys)
    assert "--lock-budget" in line and "percentage above 0 and at most 100, got 0" in line


def test_maps_help_names_every_kind(capsys):
    """``maps --help`` lists the kinds --kind takes: every one the model has (hugetlb was missing)."""
    from vmainspect.model import VMA_KINDS

    with pytest.raises(SystemExit):
        cli.main(["maps", "--help"])
    out = capsys.readouterr().out
    listed = out.split("kinds:", 1)[1].split("(", 1)[0].split()
    assert sorted(listed) == sorted(VMA_KINDS)
