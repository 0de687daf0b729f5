"""The training loop on its fast path (``--fast``) against the eager step: the same losses, log points,
host syncs, resume, Ctrl-C and NaN stop; and the reasons it gives when it falls back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from devicelab import TrainConfig, train
from devicelab.training.callbacks import Callbacks, LogPoint
from devicelab.training.interrupt import StopFlag

CPU1 = dict(device="cpu", threads=1)
FAST_NOISY = ("--batch-size", "16", "--optimizer", "adam", "--lr", "0.005")  # shuffle RNG + optimizer state


def pair(**options) -> tuple:
    """The same run eagerly and on the fast path."""
    eager = train(TrainConfig(fast="off", **CPU1, **options))
    fast = train(TrainConfig(fast="on", **CPU1, **options))
    return eager, fast


@pytest.mark.parametrize(
    "options",
    [
        dict(epochs=2000),  # the seed workload
        dict(epochs=400, optimizer="adam", lr=0.005, batch_size=16),
        dict(epochs=400, momentum=0.9, weight_decay=1e-3, hidden=(16, 8), activation="tanh"),
        dict(epochs=400, dataset="diabetes", lr=0.05),  # regression
    ],
    ids=["seed", "adam-minibatch", "momentum-deep", "regression"],
)
def test_fast_path_trains_what_the_eager_step_trains(options):
    eager, fast = pair(**options)
    assert eager.path == "eager" and fast.path != "eager", fast.path_reason
    np.testing.assert_allclose(fast.losses, eager.losses, rtol=1e-5, atol=1e-7)
    assert [r["epoch"] for r in fast.metrics] == [r["epoch"] for r in eager.metrics]
    assert fast.host_syncs == eager.host_syncs == len(eager.metrics)  # one read per log point
    for a, b in zip(fast.model.parameters(), eager.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_model_the_fast_path_cannot_take_trains_eagerly_and_says_why():
    result = train(TrainConfig(epochs=50, dropout=0.2, fast="on", **CPU1))
    assert result.path == "eager" and "dropout" in result.path_reason


def test_fast_off_is_the_eager_step():
    result = train(TrainConfig(epochs=50, fast="off", **CPU1))
    assert result.path == "eager" and "--fast off" in result.path_reason


class StopAt(Callbacks):
    """Asks to stop once a log point at or after ``epoch`` is seen (as Ctrl-C would)."""

    def __init__(self, flag: StopFlag, epoch: int) -> None:
        self.flag, self.epoch = flag, epoch

    def on_log(self, point: LogPoint) -> None:
        if point.epoch >= self.epoch:
            self.flag.request()


def test_a_stop_on_the_fast_path_saves_a_run_that_resumes_exactly(tmp_path):
    from devicelab.training.resume import load_checkpoint

    options = dict(epochs=300, optimizer="adam", lr=0.005, batch_size=16, log_every=50, fast="on", **CPU1)
    whole = train(TrainConfig(**options))
    flag = StopFlag()
    stopped = train(TrainConfig(**options), callbacks=StopAt(flag, 100), stop=flag)
    assert stopped.status == "interrupted" and stopped.epochs_done == 100 and stopped.path != "eager"
    folder = stopped.save(tmp_path, "part")
    checkpoint = load_checkpoint(folder)
    resumed = train(checkpoint.config_for(300), resume=checkpoint)
    assert resumed.path != "eager"
    np.testing.assert_array_equal(resumed.losses, whole.losses)


def test_resume_through_the_cli_on_the_fast_path(cli, tmp_path):
    args = ("--device", "cpu", "--threads", "1", "--quiet", *FAST_NOISY)
    assert cli("train", "--epochs", "120", *args, "--name", "part").returncode == 0
    resumed = cli("train", "--resume", "runs/part", "--epochs", "300", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    # the uninterrupted run, here through the library (the CLI's run, as test_train_runs shows)
    whole = train(TrainConfig(epochs=300, device="cpu", threads=1, batch_size=16, optimizer="adam", lr=0.005))
    assert whole.path != "eager", whole.path_reason
    again = np.load(tmp_path / "runs" / "part-resumed" / "losses.npy")
    np.testing.assert_array_equal(again, whole.losses)
    summary = json.loads((tmp_path / "runs" / "part-resumed" / "summary.json").read_text())
    assert summary["step"]["path"] != "eager" and summary["step"]["reason"]


def test_nan_stop_on_the_fast_path_keeps_the_same_good_weights():
    options = dict(dataset="diabetes", activation="tanh", lr=1.0, log_every=10, epochs=2000)
    eager, fast = pair(**options)
    assert fast.path != "eager"
    assert fast.status == eager.status == "diverged"
    assert fast.diverged_epoch == eager.diverged_epoch and fast.epochs_done == eager.epochs_done
    for a, b in zip(fast.model.parameters(), eager.model.parameters(), strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_summary_says_which_step_ran(cli, tmp_path):
    result = cli("train", "--epochs", "200", "--device", "cpu", "--threads", "1", "--quiet", "--name", "r")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    step_line = next(line for line in result.stdout.splitlines() if line.startswith("step:"))
    assert summary["step"]["reason"] in step_line
    assert summary["step"]["setup_s"] >= 0
    off = cli("train", "--epochs", "20", "--device", "cpu", "--quiet", "--fast", "off", "--name", "o")
    assert "--fast off" in off.stdout


def test_a_bad_fast_value_is_one_line(cli):
    result = cli("train", "--fast", "maybe")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--fast" in line and "maybe" in line


def test_profile_names_the_path_train_runs():
    from devicelab.data import load_dataset
    from devicelab.profile.run import train_path

    for fast in ("on", "off"):
        config = TrainConfig(epochs=100, fast=fast, **CPU1)
        path = train_path(config, load_dataset(config), torch.device("cpu"), 1)
        ran = train(config)
        assert path["path"] == ran.path and path["reason"] == ran.path_reason and path["s_per_epoch"] > 0
