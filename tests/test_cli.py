"""The command line as a user meets it: help, version, and how errors look."""

from __future__ import annotations

import re

import devicelab
from devicelab import cli as cli_module
from devicelab.errors import UserError


def test_version_matches_package(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"devicelab {devicelab.__version__}"


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.returncode == 0
    # the description names every verb too, so look for the subcommand rows: "    info      show this ..."
    listed = re.findall(r"^ {4}(\w+) +\S", result.stdout, flags=re.MULTILINE)
    assert listed == list(cli_module.COMMANDS)
    assert {"info", "train", "predict", "bench", "profile", "report"} <= set(listed)


def test_user_error_message_and_hint_make_one_line():
    assert UserError("the file x.csv does not exist", hint="check the path").one_line() == (
        "the file x.csv does not exist (check the path)"
    )
    assert UserError("no hint").one_line() == "no hint"
    assert str(UserError("m", hint="h")) == "m (h)"


def test_user_error_is_one_line_and_exit_2(cli):
    """A real UserError raised inside a command (not an argparse error) reaches the user as one line."""
    result = cli("info", "--quick")
    assert result.returncode == 2
    assert result.stdout == ""
    assert re.fullmatch(r"devicelab: error: [^\n]*--quick[^\n]* \([^\n]+\)\n", result.stderr), result.stderr


def test_bad_option_is_one_line_and_exit_2(cli):
    result = cli("train", "--epochs", "abc")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "devicelab: error: argument --epochs: invalid int value: 'abc' (see 'devicelab train --help')"
    ]


def test_unknown_command_is_one_line_and_exit_2(cli):
    result = cli("frobnicate")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'frobnicate'" in result.stderr
