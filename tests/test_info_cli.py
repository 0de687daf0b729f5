"""``devicelab info`` as a user runs it: real subprocesses of the CLI on this machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import assert_user_error
from devicelab.hardware import SCHEMA_VERSION


def test_info_prints_every_section_and_exits_0(cli):
    result = cli("info", timeout=120)
    assert result.returncode == 0, result.stderr
    for section in ("CPU\n", "Memory\n", "CPU budget\n", "Software\n", "Accelerator\n"):
        assert section in result.stdout
    assert f"torch:             {torch.__version__}" in result.stdout
    if not torch.cuda.is_available():
        assert "no GPU: " in result.stdout and "fix: " in result.stdout
    assert result.stderr == ""


def test_json_is_valid_and_says_what_the_text_says(cli):
    result = cli("info", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["software"]["torch"] == torch.__version__
    # a fresh interpreter's thread count: this test process's may have been changed by other tests
    ask = "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads())"
    fresh = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, check=True)
    intra, inter = map(int, fresh.stdout.split())
    budget = document["budget"]
    assert (budget["torch_threads"], budget["torch_interop_threads"]) == (intra, inter)
    text = cli("info", timeout=120).stdout
    assert f"torch threads: {intra} intra-op, {inter} inter-op" in text
    assert document["measurements"] is None and "--measure" in document["missing"]["measurements"]
    assert "flags" not in document["cpu"]


def test_markdown(cli):
    result = cli("info", "--markdown", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"## devicelab info (schema {SCHEMA_VERSION})")
    assert "### CPU\n\n|  | value |\n|---|---|\n" in result.stdout


def test_quick_without_measure_is_a_user_error(cli):
    assert_user_error(cli("info", "--quick"), "--quick", "--measure")


def test_json_and_markdown_exclude_each_other(cli):
    result = cli("info", "--json", "--markdown")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_measure_quick_reports_every_cpu_figure(cli):
    result = cli("info", "--measure", "--quick", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["measurements"]
    cpu = {f["what"] for f in figures if f["device"] == "cpu"}
    assert {
        "matmul_fp32",
        "memory_bandwidth",
        "launch_back_to_back",
        "launch_and_sync",
        "sync_round_trip",
    } <= cpu
    assert "measuring cpu: matmul_fp32" in result.stderr  # progress goes to stderr, JSON stays clean
