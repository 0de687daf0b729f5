"""The command line as a user meets it: help, version, and how errors look."""

from __future__ import annotations

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
    for name in cli_module.COMMANDS:
        assert name in result.stdout


def test_user_error_is_one_line_and_exit_2(capsys, monkeypatch):
    def boom(args):
        raise UserError("the file x.csv does not exist", hint="check the path")

    parser = cli_module.build_parser()
    args = parser.parse_args(["info"])
    monkeypatch.setattr(cli_module, "build_parser", lambda: _Fixed(parser, args, boom))
    assert cli_module.main(["info"]) == 2
    err = capsys.readouterr().err
    assert err == "devicelab: error: the file x.csv does not exist (check the path)\n"


class _Fixed:
    def __init__(self, parser, args, run):
        self.parser, self.args = parser, args
        self.args.run = run

    def parse_args(self, argv):
        return self.args

    def print_help(self):
        self.parser.print_help()


def test_bad_option_is_one_line_and_exit_2(cli):
    result = cli("train", "--epochs", "abc")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "devicelab train: error: argument --epochs: invalid int value: 'abc' (see 'devicelab train --help')"
    ]


def test_unknown_command_is_one_line_and_exit_2(cli):
    result = cli("frobnicate")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'frobnicate'" in result.stderr
