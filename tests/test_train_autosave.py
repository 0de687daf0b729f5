"""A run killed with SIGKILL (the OOM killer, a pre-empted node) keeps its folder and its last checkpoint,
and resuming it gives the losses of a run that was never killed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import assert_user_error
from devicelab import TrainConfig, train
from devicelab.errors import UserError
from devicelab.training.resume import load_checkpoint

# Adam and mini-batches: optimizer state and the shuffle's RNG must both come back exactly.
WORKLOAD = ("--optimizer", "adam", "--lr", "0.005", "--batch-size", "32", "--device", "cpu", "--threads", "1")


def start_training(cwd, name: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "devicelab", "train", "--epochs", "2000000", "--log-every", "100"]
    command += ["--checkpoint-every", "0", "--name", name, *WORKLOAD, *extra]
    process = subprocess.Popen(command, cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first = process.stderr.readline()  # written once training begins
    assert first.startswith("training"), first
    return process


def test_sigkill_at_random_moments_leaves_a_resumable_folder(tmp_path):
    seed = random.randrange(1 << 30)
    moments = random.Random(seed).sample([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2], 4)
    for i, delay in enumerate(moments):
        # a wide model: each checkpoint takes long enough for some kills to land while it is written
        process = start_training(tmp_path, f"k{i}", "--hidden", "256,256")
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        folder = tmp_path / "runs" / f"k{i}"
        assert {"config.json", "preprocessing.json"} <= {p.name for p in folder.iterdir()}, (seed, delay)
        assert not (folder / "summary.json").exists()
        if (folder / "last.ckpt").exists():  # the previous checkpoint or the new one: whole either way
            checkpoint = load_checkpoint(folder)
            done = checkpoint.epochs_done
            assert done > 0 and done % 100 == 0 and checkpoint.losses.shape == (done,), (seed, delay)
            assert np.isfinite(checkpoint.losses).all()
        else:
            with pytest.raises(UserError, match="before its first checkpoint"):
                load_checkpoint(folder)
    # on a loaded machine every random moment may fall before the first checkpoint: one more kill, after one exists
    process = start_training(tmp_path, "after", "--hidden", "256,256")
    folder = tmp_path / "runs" / "after"
    deadline = time.monotonic() + 60
    while not (folder / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(seed).choice(moments))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    checkpoint = load_checkpoint(folder)  # the first checkpoint or a later one: whole either way
    assert checkpoint.epochs_done > 0 and checkpoint.losses.shape == (checkpoint.epochs_done,), seed


def test_a_killed_run_resumes_to_the_losses_of_an_unkilled_one(cli, tmp_path):
    process = start_training(tmp_path, "killed")
    folder = tmp_path / "runs" / "killed"
    deadline = time.monotonic() + 60
    while not (folder / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    done = load_checkpoint(folder).epochs_done
    target = str(done + 300)
    resumed = cli("train", "--resume", "runs/killed", "--epochs", target, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    # never killed: the library's run (the CLI's to the bit, tests/test_train_runs.py)
    config = dict(optimizer="adam", lr=0.005, batch_size=32, device="cpu", threads=1, quiet=True)
    straight = train(TrainConfig(epochs=done + 300, **config))
    again = np.load(tmp_path / "runs" / "killed-resumed" / "losses.npy")
    np.testing.assert_array_equal(again, straight.losses)
    assert not (tmp_path / "runs" / "killed-resumed" / "last.ckpt").exists()  # a complete folder has none


def test_a_complete_run_keeps_no_checkpoint_and_says_what_checkpoints_cost(cli, tmp_path):
    result = cli("train", "--epochs", "300", "--checkpoint-every", "0", *WORKLOAD, "--quiet", "--name", "r")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "runs" / "r"
    assert not (folder / "last.ckpt").exists()
    assert "checkpoints:" in result.stdout and "2 written" in result.stdout  # at 100 and 200, not at the end


def test_a_damaged_checkpoint_is_one_line(cli, tmp_path):
    process = start_training(tmp_path, "d")
    folder = tmp_path / "runs" / "d"
    deadline = time.monotonic() + 60
    while not (folder / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    (folder / "last.ckpt").write_bytes((folder / "last.ckpt").read_bytes()[:100])
    assert_user_error(cli("train", "--resume", "runs/d", "--epochs", "5000"), "last.ckpt", "corrupt")


def test_a_bad_checkpoint_interval_is_one_line(cli):
    result = cli("train", "--checkpoint-every", "-1")
    assert (
        result.returncode == 2 and "--checkpoint-every" in result.stderr and "Traceback" not in result.stderr
    )
