"""The command line answers a wrong argument with one line and exit code 2, never a traceback."""

from __future__ import annotations

import sys

import pytest

from gridhub.cli import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["pull", "x", "--timeout", "abc"], "Invalid value for '--timeout'"),
        (["demo", "--events", "many"], "Invalid value for '--events'"),
        (["kpi", "--no-such-option"], "No such option"),
    ],
)
def test_a_value_the_parser_refuses_is_one_line_and_exit_code_2(
    argv: list[str], said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["gridhub", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    printed = capsys.readouterr()
    assert said in printed.err and "Traceback" not in printed.err + printed.out
