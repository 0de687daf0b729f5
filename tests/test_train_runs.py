"""Runs as users make them: the run folder, same seed -> same losses, resume equivalence, Ctrl-C, NaN."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file

from conftest import assert_user_error
from devicelab import TrainConfig, train
from devicelab.data import load_dataset
from devicelab.models import build_mlp

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")
NOISY = tuple("--batch-size 16 --dropout 0.2 --optimizer adam --lr 0.005".split())  # RNG + optimizer state


def load_run(folder):
    return (
        np.load(folder / "losses.npy"),
        json.loads((folder / "summary.json").read_text()),
        load_file(folder / "model.safetensors"),
    )


def test_run_folder_has_everything_and_it_agrees(cli, tmp_path):
    result = cli("train", "--epochs", "300", "--log-every", "50", *CPU1, "--name", "r")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "runs" / "r"
    expected = set(
        "config.json hardware.json metrics.csv losses.npy summary.json loss.png model.safetensors "
        "state.safetensors preprocessing.json".split()
    )
    assert {p.name for p in folder.iterdir()} == expected  # no temporary files left behind
    losses, summary, weights = load_run(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["versions"]["torch"] == torch.__version__ and "devicelab" in config["versions"]
    assert config["config"]["epochs"] == 300 and config["config"]["lr"] == 0.01
    assert losses.shape == (300,) and losses.dtype == np.float32
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [50, 100, 150, 200, 250, 300]
    for row in rows:  # the logged train loss is that epoch's entry of losses.npy
        assert float(row["train_loss"]) == float(losses[int(row["epoch"]) - 1])
    assert summary["status"] == "completed" and summary["host_syncs"] == len(rows) == 6
    assert summary["us_per_epoch"] > 0 and summary["device"] == "cpu"
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved weights and preprocessing reproduce the reported test accuracy
    pre = json.loads((folder / "preprocessing.json").read_text())
    model = build_mlp(pre["model_spec"])
    model.load_state_dict(weights)
    data = load_dataset(TrainConfig())
    with torch.inference_mode():
        accuracy = (model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean()
    assert abs(accuracy - summary["final"]["test_accuracy"]) < 1e-6
    # a second run with the same name gets its own folder
    assert cli("train", "--epochs", "10", *CPU1, "--name", "r").returncode == 0
    assert (tmp_path / "runs" / "r-2").is_dir() and np.load(folder / "losses.npy").shape == (300,)


def test_same_seed_same_losses_other_seed_other_losses(cli, tmp_path):
    # as a user runs it, on one thread; the same seed in another process (this one, through the
    # library) gives the same losses to the bit
    result = cli(
        "train", "--epochs", "200", "--seed", "7", "--threads", "1", "--quiet", "--name", "a", *NOISY
    )
    assert result.returncode == 0, result.stderr
    a = np.load(tmp_path / "runs" / "a" / "losses.npy")
    config = dict(epochs=200, batch_size=16, dropout=0.2, optimizer="adam", lr=0.005, device="cpu", threads=1)
    np.testing.assert_array_equal(train(TrainConfig(seed=7, **config)).losses, a)
    assert not np.array_equal(train(TrainConfig(seed=8, **config)).losses, a)


def test_resume_equals_an_uninterrupted_run_on_cpu(cli, tmp_path):
    assert cli("train", "--epochs", "120", *CPU1, *NOISY, "--name", "part").returncode == 0
    resumed = cli("train", "--resume", "runs/part", "--epochs", "300", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    # the uninterrupted run through the library (the CLI's run to the bit: the test above)
    config = dict(batch_size=16, dropout=0.2, optimizer="adam", lr=0.005, device="cpu", threads=1)
    whole = train(TrainConfig(epochs=300, **config))
    again, again_summary, again_weights = load_run(tmp_path / "runs" / "part-resumed")
    np.testing.assert_array_equal(again, whole.losses)
    weights = whole.model.state_dict()
    assert weights.keys() == again_weights.keys()
    for key, value in weights.items():
        assert torch.equal(again_weights[key], value), key
    assert again_summary["final"]["test_loss"] == whole.final["test_loss"]
    assert again_summary["session_epochs"] == 180 and again_summary["resumed_from"].endswith("part")
    assert np.load(tmp_path / "runs" / "part" / "losses.npy").shape == (120,)  # the original is kept


def test_ctrl_c_stops_saves_and_resumes_exactly(cli, tmp_path):
    """A real SIGINT to a real training process: it stops at an epoch boundary, saves a resumable run,
    and resuming it gives the losses of a run that was never interrupted."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devicelab",
            *"train --epochs 1000000 --log-every 50 --name stopped".split(),
            *NOISY,
            *"--device cpu --threads 1".split(),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stderr.readline()  # written once the handler is installed and training begins
    assert first.startswith("training"), first
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after epoch" in stderr and "--resume" in stderr
    folder = tmp_path / "runs" / "stopped"
    losses, summary, _ = load_run(folder)
    done = summary["epochs_done"]
    assert summary["status"] == "interrupted" and summary["resumable"] is True
    assert 0 < done < 1_000_000 and losses.shape == (done,) and np.isfinite(losses).all()
    target = str(done + 60)
    assert cli("train", "--resume", "runs/stopped", "--epochs", target, "--quiet").returncode == 0
    resumed, _, _ = load_run(tmp_path / "runs" / "stopped-resumed")
    config = dict(batch_size=16, dropout=0.2, optimizer="adam", lr=0.005, device="cpu", threads=1)
    straight = train(
        TrainConfig(epochs=done + 60, **config)
    )  # never interrupted (the library: the CLI's run)
    np.testing.assert_array_equal(resumed, straight.losses)


def test_nan_loss_stops_names_the_epoch_and_keeps_the_last_good_weights(cli, tmp_path):
    diverging = ("--dataset", "diabetes", "--activation", "tanh", "--lr", "1", "--log-every", "10")
    result = cli("train", *diverging, *CPU1, "--name", "nan")
    assert_user_error(result, "NaN or infinite at epoch", "--lr 0.1", "last good weights")
    folder = tmp_path / "runs" / "nan"
    losses, summary, weights = load_run(folder)
    bad, good = summary["diverged_epoch"], summary["epochs_done"]
    assert summary["status"] == "diverged" and not summary["resumable"]
    assert f"at epoch {bad} " in result.stderr and good == (bad - 1) // 10 * 10
    assert losses.shape == (good,) and np.isfinite(losses).all()
    # the saved weights are exactly those of the same run stopped at the last good log point
    reference = train(
        TrainConfig(dataset="diabetes", activation="tanh", lr=1.0, epochs=good, device="cpu", threads=1)
    )
    for key, value in reference.model.state_dict().items():
        assert torch.equal(weights[key], value), key
        assert torch.isfinite(weights[key]).all()
    # and the loss really went bad at that epoch: finite before, not after
    np.testing.assert_array_equal(reference.losses, losses)
