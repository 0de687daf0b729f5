"""Training on a CUDA device (run on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from devicelab import TrainConfig, train
from devicelab.training.callbacks import Callbacks

pytestmark = pytest.mark.gpu


def test_cuda_losses_match_cpu_on_the_seed_workload():
    cpu = train(TrainConfig(epochs=500, device="cpu", threads=1))
    gpu = train(TrainConfig(epochs=500, device="cuda"))
    assert gpu.choice.device == "cuda:0" and gpu.status == "completed"
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=1e-4, atol=1e-5)
    assert abs(gpu.final["test_accuracy"] - cpu.final["test_accuracy"]) <= 1 / 30 + 1e-6


class _SyncCounter(Callbacks):
    """Turns on torch's sync debug mode once training starts; counts the sync warnings after that."""

    def __init__(self, caught: list) -> None:
        self.caught, self.start = caught, None

    def on_start(self, info) -> None:
        torch.cuda.synchronize()  # sync: the test's own, before counting starts
        self.start = len(self.caught)
        torch.cuda.set_sync_debug_mode("warn")


@pytest.mark.parametrize(
    "extra",
    [{}, {"batch_size": 16, "dropout": 0.2, "optimizer": "adam", "lr": 0.005}],
    ids=["full-batch-sgd", "minibatch-adam-dropout"],
)
def test_host_syncs_equal_log_points(extra):
    """torch.cuda.set_sync_debug_mode counts the real syncs: exactly one per log point."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counter = _SyncCounter(caught)
        try:
            result = train(TrainConfig(epochs=400, log_every=50, device="cuda", **extra), callbacks=counter)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    # (the first use also warns that the mode "does not yet detect all synchronizing operations")
    syncs = [w for w in caught[counter.start :] if "called a synchronizing" in str(w.message)]
    assert result.host_syncs == 400 // 50
    assert len(syncs) == result.host_syncs, [str(w.message)[:120] for w in syncs]


def test_auto_times_both_devices_and_says_why(cli, tmp_path):
    result = cli("train", "--epochs", "300", "--name", "auto")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs" / "auto" / "summary.json").read_text())
    timed = summary["device_choice"]["timed_us_per_epoch"]
    assert any(k.startswith("cuda") for k in timed) and any(k.startswith("cpu") for k in timed)
    assert all(v > 0 for v in timed.values())
    assert summary["device"] in [k.split(" ")[0] for k in timed]
    assert "timed this workload per epoch" in result.stderr and "faster than" in result.stderr


def test_cli_trains_and_resumes_on_cuda(cli, tmp_path):
    noisy = ("--batch-size", "16", "--dropout", "0.2", "--optimizer", "adam", "--lr", "0.005", "--quiet")
    assert cli("train", "--device", "cuda", "--epochs", "200", *noisy, "--name", "whole").returncode == 0
    assert cli("train", "--device", "cuda", "--epochs", "80", *noisy, "--name", "part").returncode == 0
    resumed = cli("train", "--resume", "runs/part", "--epochs", "200", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    whole = np.load(tmp_path / "runs" / "whole" / "losses.npy")
    again = np.load(tmp_path / "runs" / "part-resumed" / "losses.npy")
    summary = json.loads((tmp_path / "runs" / "part-resumed" / "summary.json").read_text())
    assert summary["device"] == "cuda:0"
    np.testing.assert_allclose(again, whole, rtol=1e-5, atol=1e-6)
