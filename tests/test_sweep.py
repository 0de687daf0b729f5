"""devicelab sweep: every model of a sweep equals its own `devicelab train` run (the reference), bad grids
are one line and exit 2, the sweep folder holds one row and one loss history per model, and the best model
is a run folder that `devicelab predict` accepts."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_user_error, run_cli
from csv_files import SPECIES, iris_csv
from devicelab import train
from devicelab.errors import UserError
from devicelab.sweep import Grid, parse_lrs, parse_seeds, run_sweep
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")


def single_runs(base: TrainConfig, grid: Grid) -> dict[int, np.ndarray]:
    """The reference: each model of the grid trained alone by devicelab train (split seed: base.seed)."""
    return {
        spec.index: train(
            dataclasses.replace(base, lr=spec.lr, init_seed=spec.seed, hidden=spec.hidden)
        ).losses
        for spec in grid.models()
    }


@pytest.mark.parametrize("layout", ["numba", "bmm"])
def test_each_model_equals_its_own_train_run(layout):
    base = TrainConfig(epochs=300, device="cpu", threads=1, quiet=True)
    grid = Grid(lrs=(0.01, 0.1), seeds=(3, 11), hiddens=((10,),))  # 4 models: 2 lrs × 2 init seeds
    result = run_sweep(base, grid, layout=layout)
    assert result.layout == layout and result.status == "completed"
    losses = result.losses()
    assert losses.shape == (4, 300)
    for index, reference in single_runs(base, grid).items():
        np.testing.assert_allclose(losses[index], reference, rtol=0, atol=1e-5)
    # different seeds and rates really are different models
    assert np.abs(losses[0] - losses[1]).max() > 1e-3 and np.abs(losses[0] - losses[2]).max() > 1e-3


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-3, "hidden": (8, 6), "activation": "tanh"},
        {"optimizer": "adam", "batch_size": 32},  # mini-batches: the same shuffle as each single run
    ],
    ids=["momentum-2layers", "adam-minibatch"],
)
def test_optimizers_and_mini_batches_equal_train(options):
    base = TrainConfig(epochs=150, device="cpu", threads=1, quiet=True, **options)
    grid = Grid(lrs=(0.003, 0.03), seeds=(5,), hiddens=(base.hidden,))
    losses = run_sweep(base, grid, layout="numba").losses()
    for index, reference in single_runs(base, grid).items():
        np.testing.assert_allclose(losses[index], reference, rtol=0, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "options",
    [{}, {"optimizer": "adam"}, {"optimizer": "adamw", "weight_decay": 0.01, "batch_size": 32}],
    ids=["sgd", "adam", "adamw-minibatch"],
)
def test_on_cuda_each_model_equals_its_own_train_run(options):
    """Adam too: the sweep's update is torch's foreach form on CUDA, as train's optimizer there."""
    base = TrainConfig(epochs=300, device="cuda", quiet=True, **options)
    grid = Grid(lrs=(0.01, 0.1) if not options else (0.003, 0.01), seeds=(3, 11), hiddens=((10,),))
    result = run_sweep(base, grid)
    assert result.layout == "bmm" and result.device.startswith("cuda")
    for index, reference in single_runs(base, grid).items():
        np.testing.assert_allclose(result.losses()[index], reference, rtol=0, atol=1e-5)


def test_grid_parsing():
    assert parse_lrs("0.001, 0.01,1e-1") == (0.001, 0.01, 0.1)
    assert parse_seeds("0-3,10") == (0, 1, 2, 3, 10)
    assert len(Grid((0.1, 0.2), (1, 2, 3), ((10,), (4, 4))).models()) == 12
    for text in ("", "0.1,", "0.1,abc", "-0.1", "nan", "0.1,0.1"):
        with pytest.raises(UserError):
            parse_lrs(text)
    for text in ("5-2", "a", "1,,2", "-1", "1,1", f"0-{2**32}"):
        with pytest.raises(UserError):
            parse_seeds(text)


def test_bad_grids_are_one_line_and_exit_2(cli):
    assert_user_error(cli("sweep", "--lr", "0.1,fast"), "--lr", "'fast' is not a number")
    assert_user_error(cli("sweep", "--seeds", "9-2"), "--seeds", "empty", "2-9")
    assert_user_error(cli("sweep", "--hidden", "10", "10"), "--hidden", "more than once")
    assert_user_error(cli("sweep", "--dropout", "0.2", "--epochs", "5"), "--dropout", "sweep")
    assert_user_error(cli("sweep", "--early-stop", "5", "--epochs", "5"), "--early-stop", "all --epochs")
    bad_shape = cli("sweep", "--hidden", "10", "x")
    assert bad_shape.returncode == 2 and len(bad_shape.stderr.strip().splitlines()) == 1


def test_the_folder_has_a_row_per_model_and_the_best_is_a_run_predict_accepts(tmp_path):
    iris_csv(tmp_path / "flowers.csv")
    options = "--data flowers.csv --target species --lr 0.05,0.2 --seeds 0-2 --hidden 10 6,6 --epochs 200"
    result = run_cli(
        "sweep", *options.split(), "--log-every", "50", "--name", "s", "--json", *CPU1, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    folder = tmp_path / "runs" / "s"
    assert (
        (tmp_path / summary["folder"]).resolve() == folder.resolve()
        and summary["models"] == 12
        and summary["host_syncs"] == 8
    )
    rows = list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))
    assert len(rows) == 12 and [int(r["model"]) for r in rows] == list(range(12))
    assert {r["hidden"] for r in rows} == {"10", "6-6"} and {r["seed"] for r in rows} == {"0", "1", "2"}
    losses = np.load(folder / "losses.npy")
    assert losses.shape == (12, 200) and np.isfinite(losses).all()
    for row in rows:  # the csv's final training loss is the last column of the model's history
        assert float(row["final_train_loss"]) == pytest.approx(float(losses[int(row["model"]), -1]), abs=1e-6)
    assert (folder / "sweep.png").stat().st_size > 10_000
    best = json.loads((folder / "best" / "summary.json").read_text())
    assert best["status"] == "completed" and best["epochs_done"] == 200
    top = summary["top"][0]
    np.testing.assert_allclose(np.load(folder / "best" / "losses.npy"), losses[top["model"]], rtol=0, atol=0)
    predicted = run_cli("predict", str(folder / "best"), "--data", "flowers.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    labels = [r["predicted_species"] for r in csv.DictReader(io.StringIO(predicted.stdout))]
    assert len(labels) == 150 and set(labels) <= set(SPECIES)
    assert not (tmp_path / "runs" / "s-2").exists()


def test_a_stop_request_ends_at_a_log_point_and_keeps_what_was_done(tmp_path):
    base = TrainConfig(
        epochs=1000, log_every=100, device="cpu", threads=1, quiet=True, runs_dir=str(tmp_path)
    )
    grid = Grid(lrs=(0.01, 0.1), seeds=(0, 1), hiddens=((10,), (4,)))
    flag = StopFlag()
    result = run_sweep(base, grid, stop=flag, on_log=lambda point: flag.request())  # as Ctrl-C at epoch 1
    assert result.status == "interrupted" and len(result.groups) == 1  # the second shape never started
    group = result.groups[0]
    assert group.epochs_done == 100 and group.host_syncs == 1
    assert np.isfinite(group.losses[:, :100]).all() and np.isnan(group.losses[:, 100:]).all()
    folder = result.save(name="stopped")
    assert len(list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))) == 4
    assert json.loads((folder / "best" / "summary.json").read_text())["status"] == "interrupted"


def test_ctrl_c_saves_the_sweep_and_exits_130(tmp_path):
    command = [sys.executable, "-m", "devicelab", "sweep", "--lr", "0.01,0.1", "--seeds", "0-1", "--epochs"]
    command += ["200000", "--log-every", "100", "--name", "cut", "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        for line in process.stderr:  # the first progress line: training is under way
            if "epoch " in line:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    folder = tmp_path / "runs" / "cut"
    rows = list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"interrupted"}
    done = int(rows[0]["epochs"])
    losses = np.load(folder / "losses.npy")
    assert losses.shape == (4, 200000) and 0 < done < 200000
    assert np.isfinite(losses[:, :done]).all() and np.isnan(losses[:, done:]).all()
