"""Options that used to be ignored or mislabelled: --resume with a changed --lr, the device line of the
summary, and early stopping on a validation split."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import torch

from conftest import assert_user_error
from devicelab import TrainConfig, train
from devicelab.cli import main
from devicelab.i18n.labels import device_label
from devicelab.training.callbacks import Callbacks

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")


def test_resume_refuses_options_it_would_ignore(cli, tmp_path, monkeypatch, capsys):
    assert cli("train", "--epochs", "40", *CPU1, "--name", "r").returncode == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVICELAB_LANG", "en")  # as run_cli runs the command
    for i, (options, named) in enumerate((
        (("--lr", "0.1"), "--lr"),
        (("--hidden", "32", "--optimizer", "adam"), "--hidden, --optimizer"),
        (("--lr", "0.01", "--momentum", "0.9"), "--momentum"),  # only what differs from the run is named
    )):  # fmt: skip
        argv = ("train", "--resume", "runs/r", "--epochs", "80", *options)
        if i == 0:  # as a user meets it (exit status, stderr); the others through the same main(), cheaper
            result = cli(*argv)
        else:
            code = main(list(argv))
            result = SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
        assert_user_error(result, named, "cannot change when resuming", "keeps")
    assert not (tmp_path / "runs" / "r-resumed").exists()
    # what may change still can: how far, on which device, how many threads; and the run's own values
    # (a torchrun job restarted with --max-restarts repeats its whole command line)
    ok = main(
        ["train", "--resume", "runs/r", "--epochs", "80", "--threads", "1", "--device", "cpu", "--lr", "0.01"]
    )
    assert ok == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "r-resumed" / "summary.json").is_file()


def test_the_device_line_names_cpu_threads_only_for_the_cpu():
    assert device_label("cpu", 1) == "cpu (1 thread)"
    assert device_label("cpu", 4) == "cpu (4 threads)"
    assert device_label("cuda:0", 1) == "cuda:0"  # not "cuda:0 (1 CPU thread)"
    assert device_label("mps", 8) == "mps"


def noisy_csv(path, rows=160, features=20, seed=0):
    """A file a big model overfits: the label is one feature plus noise, the rest is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] + 0.8 * rng.normal(size=rows) > 0).astype(int)
    header = ",".join([*(f"f{i}" for i in range(features)), "label"])
    lines = [",".join([*(f"{v:.5f}" for v in row), str(t)]) for row, t in zip(x, y, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_early_stopping_keeps_the_best_validation_weights(tmp_path):
    data = str(noisy_csv(tmp_path / "noisy.csv"))
    # --val-size given: the validation split (not the cross-validation small data gets by default)
    options = dict(data=data, target="label", hidden=(128,), lr=0.2, epochs=4000, device="cpu", threads=1,
                   val_size=0.15)  # fmt: skip
    result = train(TrainConfig(early_stop=3, **options))
    early = result.early_stopping
    assert result.status == "early_stopped" and early["stopped_epoch"] == result.epochs_done < 4000
    val_losses = {row["epoch"]: row["val_loss"] for row in result.metrics}
    best = min(val_losses, key=val_losses.get)
    assert early["best_epoch"] == best and early["best_val_loss"] == val_losses[best]
    # stopped after exactly `patience` log points without a better validation loss
    assert sorted(e for e in val_losses if e > best) == [best + 100 * k for k in (1, 2, 3)]
    # the model holds the best point's weights: a run stopped there by its length has them too
    again = train(TrainConfig(early_stop=0, **{**options, "epochs": best}))
    for a, b in zip(result.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert result.final["epoch"] == best  # the summary reports the kept weights' metrics
    assert result.overfitting() is not None  # train loss far below validation loss: a warning


def test_early_stopping_is_off_for_the_seed_workload():
    result = train(TrainConfig(epochs=300, device="cpu", threads=1))
    assert result.early_stopping is None and "val_loss" not in result.metrics[0]


def test_cli_prints_the_validation_split_and_the_overfitting_warning(cli, tmp_path):
    noisy_csv(tmp_path / "noisy.csv")
    result = cli(
        "train", "--data", "noisy.csv", "--target", "label", "--hidden", "128", "--lr", "0.2",
        "--epochs", "4000", "--early-stop", "3", "--val-size", "0.15", *CPU1, "--name", "r",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(r"^early stopping:\s+stopped at epoch", result.stdout, re.M)
    assert re.search(r"^status:\s+early stopped", result.stdout, re.M)
    assert "warning: validation loss" in result.stderr and "--weight-decay" in result.stderr
    summary = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    assert summary["status"] == "early_stopped" and summary["early_stopping"]["best_epoch"]
    assert summary["resumable"] is False


def test_a_run_with_early_stopping_resumes_exactly(tmp_path):
    """Early stopping keeps the best weights in the model; the state keeps the last epoch's and the
    early-stopping record, so a resumed run goes on exactly as one that was never stopped."""
    from devicelab.training.interrupt import StopFlag
    from devicelab.training.resume import load_checkpoint

    data = str(noisy_csv(tmp_path / "noisy.csv"))
    options = dict(data=data, target="label", hidden=(128,), lr=0.2, early_stop=50, device="cpu", threads=1,
                   val_size=0.15)  # fmt: skip
    straight = train(TrainConfig(epochs=1200, **options))
    part = train(TrainConfig(epochs=500, **options))  # completed: its model holds the best weights
    assert part.status == "completed" and part.early_stopping["best_epoch"] < 500
    checkpoint = load_checkpoint(part.save(tmp_path, "part"))
    resumed = train(checkpoint.config_for(1200), resume=checkpoint)
    np.testing.assert_array_equal(resumed.losses, straight.losses)
    assert resumed.early_stopping == straight.early_stopping
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)  # both restored the same best point
    # a stop in the middle: the summary says best so far, and the resumed run still knows that best point
    flag = StopFlag()

    class StopAt700(Callbacks):
        def on_log(self, point):
            if point.epoch >= 700:
                flag.request()

    stopped = train(TrainConfig(epochs=1200, **options), callbacks=StopAt700(), stop=flag)
    assert stopped.status == "interrupted" and stopped.epochs_done == 700
    checkpoint = load_checkpoint(stopped.save(tmp_path, "stopped"))
    again = train(checkpoint.config_for(1200), resume=checkpoint)
    np.testing.assert_array_equal(again.losses, straight.losses)
    assert again.early_stopping == straight.early_stopping
