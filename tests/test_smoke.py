"""`devicelab train` and the library API as a user first meets them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import devicelab
from devicelab.errors import UserError
from devicelab.training import TrainConfig


def test_train_help_lists_the_options(cli):
    result = cli("train", "--help")
    assert result.returncode == 0
    for option in "--data --target --device --resume --batch-size --log-every --quiet --epochs".split():
        assert option in result.stdout


def test_default_run_is_the_seed_workload_and_reaches_090(cli, tmp_path):
    """No arguments: 20000 epochs of the lesson's Iris MLP, a run folder, test accuracy >= 0.9."""
    result = cli("train", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "device: cpu" in result.stderr and "epoch 20000/20000" in result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    config = json.loads((folder / "config.json").read_text())["config"]
    seed = (config["dataset"], config["epochs"], config["lr"], config["hidden"], config["batch_size"])
    assert seed == ("iris", 20000, 0.01, [10], None)
    assert summary["status"] == "completed" and summary["epochs_done"] == 20000
    assert summary["final"]["test_accuracy"] >= 0.9
    assert summary["host_syncs"] == 200  # one per log point, every 100 epochs
    assert np.load(folder / "losses.npy").shape == (20000,)
    assert f"run folder:    {folder.relative_to(tmp_path)}" in result.stdout


def test_library_api_for_notebooks():
    result = devicelab.train(TrainConfig(epochs=300, log_every=100, device="cpu", threads=1))
    assert result.losses.shape == (300,) and result.losses[-1] < result.losses[0]
    assert [row["epoch"] for row in result.metrics] == [100, 200, 300]
    assert set(result.final) >= {"train_loss", "test_loss", "test_accuracy"}
    figure = result.plot()
    assert len(figure.axes) == 2
    assert figure.axes[0].get_lines()[0].get_ydata().shape == (300,)


def test_library_raises_user_errors():
    with pytest.raises(UserError, match="--lr must be positive"):
        devicelab.train(TrainConfig(lr=0))
