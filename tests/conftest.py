"""Shared test helpers: the `gpu` marker skips without CUDA; `cli` runs the real CLI in a subprocess."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 300, env: dict | None = None):
    """Run ``python -m devicelab ARGS`` as a user would; returns the CompletedProcess (text mode)."""
    # English unless a test asks otherwise: a developer's Chinese locale must not change what tests read
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEVICELAB_LANG": "en", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "devicelab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def cli(tmp_path: Path):
    """``cli("train", "--epochs", "10")`` runs in a fresh temporary folder (so runs/ lands there)."""

    def _run(*args: str, **kwargs):
        kwargs.setdefault("cwd", tmp_path)
        return run_cli(*args, **kwargs)

    return _run


@pytest.fixture
def one_thread():
    """Tiny ops on one intra-op thread, as devicelab trains them (more threads make them many times slower
    on a busy shared CPU); the count from before put back after. A file asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    from devicelab.threads import torch_threads

    with torch_threads(1):
        yield


def assert_user_error(result, *fragments: str) -> None:
    """Exit status 2, one clear line on stderr naming every fragment, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("devicelab: error: "), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


def line_of(function, fragment: str) -> int:
    """The file line of the one line of ``function``'s source that contains ``fragment``."""
    lines, first = inspect.getsourcelines(function)
    (index,) = [i for i, line in enumerate(lines) if fragment in line]
    return first + index


@pytest.fixture(scope="module")
def seed():
    """``(TrainConfig(), its data set)``: the seed workload."""
    from devicelab.data import load_dataset
    from devicelab.training.config import TrainConfig

    config = TrainConfig()
    return config, load_dataset(config)
