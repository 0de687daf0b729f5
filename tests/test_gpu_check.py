"""scripts/gpu-check on a machine without CUDA: it stops at once with exit status 2 and leaves summary.txt
in $OUT saying why; an unknown option is refused the same way, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check"


def gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine gpu-check runs its steps")
def test_without_cuda_it_says_so_in_summary_txt_and_exits_2(tmp_path):
    done = gpu_check(tmp_path, "--quick")
    assert done.returncode == 2, done.stderr
    summary = (tmp_path / "summary.txt").read_text()
    assert "set: quick" in summary and "torch sees no CUDA device here; nothing was run" in summary
    assert "device None" in summary  # the card: what torch saw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.txt"]


def test_an_unknown_option_is_refused_in_summary_txt(tmp_path):
    done = gpu_check(tmp_path, "--quik")
    assert done.returncode == 2
    assert "unknown option(s) '--quik'" in done.stderr
    assert "usage: scripts/gpu-check" in (tmp_path / "summary.txt").read_text()
