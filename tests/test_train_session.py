"""The library keeps a run as the command does (training.session), and decides a resume (one place:
training.resume_request); the command only turns its arguments into these calls."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.loop import train
from devicelab.training.resume_request import ResumeRequest, resume_run
from devicelab.training.session import Keep


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    config = TrainConfig(epochs=60, log_every=20, device="cpu", threads=1, runs_dir=str(runs), name="nb")
    return train(config, keep=Keep(progress=False, checkpoint_every=0))


def test_a_notebook_run_is_kept_like_the_commands(kept):
    folder = Path(kept.folder)
    assert folder.name == "nb" and not (folder / "last.ckpt").exists()  # complete: no checkpoint left
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["checkpoints"]["written"] >= 1
    step = summary["step"]
    if step["path"] == "eager":  # no numba here: no fast path ran, so no self-check
        assert step["self_check"] is None
    else:
        assert step["self_check"]["passed"] is True and step["self_check"]["epochs"] == 3


def test_no_fast_path_no_self_check(tmp_path):
    config = TrainConfig(epochs=20, log_every=10, device="cpu", threads=1, fast="off", runs_dir=str(tmp_path))
    result = train(config, keep=Keep(progress=False))
    assert json.loads((Path(result.folder) / "summary.json").read_text())["step"]["self_check"] is None


def test_a_resume_that_changes_what_the_run_fixed_is_refused_in_the_library(kept):
    with pytest.raises(
        UserError, match=r"--lr, --hidden cannot change .* \(it keeps --lr 0.01, --hidden 10\)"
    ):
        resume_run(
            ResumeRequest(kept.folder, epochs=90, fixed={"lr": ("--lr", 0.5), "hidden": ("--hidden", (8,))})
        )
    with pytest.raises(UserError, match="was trained on iris, not wine"):
        resume_run(ResumeRequest(kept.folder, epochs=90, dataset="wine"))


def test_a_resume_that_repeats_the_runs_values_continues(kept):
    config, checkpoint = resume_run(
        ResumeRequest(kept.folder, epochs=90, fixed={"lr": ("--lr", 0.01)}, running={"log_every": 30})
    )
    assert checkpoint.epochs_done == 60
    assert (config.epochs, config.log_every, config.name) == (90, 30, "nb-resumed")
    assert dataclasses.replace(config, epochs=60, log_every=20, name="nb") == kept.config
