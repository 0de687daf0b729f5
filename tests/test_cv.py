"""Small data: k-fold cross-validation chooses the epochs, then one refit on every training row. The folds
trained together equal each fold trained alone by a plain PyTorch loop on its own rows (the reference);
the folds are stratified; a small file's run carries the estimate with its spread, a large one (or one
that asks for a split) keeps today's validation split."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import run_cli
from csv_files import iris_csv
from devicelab import train
from devicelab.data import load_dataset
from devicelab.sweep.layouts import LAYOUTS
from devicelab.training import cv
from devicelab.training.config import TrainConfig
from devicelab.training.setup import build_model, make_loss


def test_folds_are_stratified_and_cover_every_row_once():
    y = np.array([0] * 50 + [1] * 23 + [2] * 7)
    fold = cv.fold_of(y, "classification", seed=3)
    assert sorted(np.bincount(fold)) == [16] * 5
    for label in (0, 1, 2):  # each fold gets its share of each class, give or take one
        counts = np.bincount(fold[y == label], minlength=5)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(fold, cv.fold_of(y, "classification", seed=3))


@pytest.mark.parametrize("layout", ["numba", "bmm"])
def test_the_folds_trained_together_equal_each_fold_trained_alone(tmp_path, layout):
    config = TrainConfig(data=str(iris_csv(tmp_path / "iris.csv")), target="species", lr=0.1, epochs=30)
    data = load_dataset(config)
    x = torch.from_numpy(np.concatenate([data.x_train, data.x_val]))
    y = torch.from_numpy(np.concatenate([data.y_train, data.y_val]))
    fold = torch.from_numpy(cv.fold_of(y.numpy(), "classification", config.seed))
    train_rows = (fold.unsqueeze(0) != torch.arange(cv.FOLDS).unsqueeze(1)).float()
    models = [build_model(config, data) for _ in range(cv.FOLDS)]
    together = LAYOUTS[layout](models, np.full(cv.FOLDS, 0.1), config, x, y, "classification",
                               torch.Generator().manual_seed(0), 30, train_rows)  # fmt: skip
    together.run(0, 30)
    loss_fn = make_loss("classification")
    for k in range(cv.FOLDS):  # the reference: the lesson's loop on the fold's own training rows
        model = build_model(config, data)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        mine = fold != k
        for _ in range(30):
            optimizer.zero_grad()
            loss = loss_fn(model(x[mine]), y[mine])
            loss.backward()
            optimizer.step()
        for alone, stacked in zip(model.parameters(), together.params(), strict=True):
            torch.testing.assert_close(stacked[k], alone.detach(), rtol=0, atol=1e-5)


def test_a_small_file_is_cross_validated_then_refit_on_every_training_row(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    result = run_cli("train", "--data", "iris.csv", "--target", "species", "--epochs", "400", "--log-every",
                     "20", "--device", "cpu", "--threads", "1", "--quiet", "--name", "r", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = re.search(
        r"^cross-validation: +5 folds of 120 training rows chose (.+) and epoch (\d+) ", result.stdout, re.M
    )
    assert line, result.stdout
    summary = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    folds = summary["cross_validation"]
    # model choice: the default shape and a linear model, the network kept only when clearly better
    tried = {c["name"]: c for c in folds["candidates"]}
    # (and, on fewer than cv.DECAY_BELOW rows, the network with each of cv.DECAYS)
    decays = {f"hidden 10 --weight-decay {d:g}" for d in cv.DECAYS}
    assert set(tried) == {"hidden 10", "linear", *decays} and int(line[2]) == folds["best_epoch"]
    chosen = tried[folds["model"]]
    assert chosen["best_epoch"] == folds["best_epoch"] and chosen["per_fold"] == folds["per_fold"]
    config = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())
    assert config["config"]["hidden"] == folds["hidden"]  # the refit trains the chosen model
    assert config["config"]["weight_decay"] == folds["weight_decay"] == chosen["weight_decay"]
    assert folds["folds"] == 5 and folds["rows"] == 120 and len(folds["per_fold"]) == 5
    assert folds["mean"] == pytest.approx(np.mean(folds["per_fold"]))
    assert folds["std"] == pytest.approx(np.std(folds["per_fold"], ddof=1))
    # the refit: every training row, no validation rows, exactly the chosen epochs
    assert summary["rows"] == {"train": 120, "test": 30, "val": 0, "dropped": 0}
    assert summary["epochs_done"] == folds["best_epoch"] == summary["epochs_total"]
    assert folds["best_epoch"] % 20 == 0 and folds["best_epoch"] <= folds["stopped_epoch"] <= 400
    # the HTML report says it too (the estimate with its spread across the folds)
    report = run_cli("report", "runs/r", "-o", "r.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "cross-validation" in html and f"{folds['mean']:.4f} ± {folds['std']:.4f} across the folds" in html


def _rows(train: int, val: int):
    return SimpleNamespace(x_train=np.zeros((train, 1)), x_val=np.zeros((val, 1)))


def test_when_the_split_stays():
    small = TrainConfig(data="f.csv", target="y")
    assert cv.reason_not(small, _rows(85, 15), resumed=False, distributed=False) is None
    assert "enough" in cv.reason_not(small, _rows(850, 150), resumed=False, distributed=False)
    asked = TrainConfig(data="f.csv", target="y", val_size=0.2)
    assert "--val-size" in cv.reason_not(asked, _rows(80, 20), resumed=False, distributed=False)
    off = TrainConfig(data="f.csv", target="y", early_stop=0)
    assert "off" in cv.reason_not(off, _rows(85, 15), resumed=False, distributed=False)
    assert cv.reason_not(
        TrainConfig(), _rows(120, 0), resumed=False, distributed=False
    )  # built-in: the lesson's
    assert cv.reason_not(small, _rows(85, 15), resumed=True, distributed=False)


def test_python_api_result_carries_the_estimate(tmp_path):
    config = TrainConfig(data=str(iris_csv(tmp_path / "iris.csv")), target="species", epochs=60, log_every=20,
                         device="cpu", threads=1, quiet=True)  # fmt: skip
    result = train(config)
    assert result.cross_validation["metric"] == "val_accuracy"
    assert result.config.epochs == result.cross_validation["best_epoch"] and len(result.dataset.x_val) == 0


def _tried(*losses):
    return [cv.Candidate((10,) if i else (), 0.0, 100, 100, float(np.mean(f)), tuple(f), tuple(f))
            for i, f in enumerate(losses)]  # fmt: skip


def test_the_simplest_model_within_one_standard_error_of_the_best_is_chosen():
    best = [0.20, 0.22, 0.18, 0.21, 0.19]
    # the first (simplest) is worse by 0.01 on every fold: a difference with no spread, beyond its noise
    assert cv.one_standard_error(_tried([v + 0.01 for v in best], best)).val_loss == pytest.approx(0.2)
    # worse on average by 0.004, but by -0.02..+0.03 fold to fold: within the noise, the simpler one
    noisy = [0.23, 0.20, 0.20, 0.19, 0.20]
    diff = np.subtract(noisy, best)
    assert 0 < diff.mean() <= np.std(diff, ddof=1) / np.sqrt(5)
    assert cv.one_standard_error(_tried(noisy, best)).hidden == ()
    # among three, the first within the noise of the best, not the best itself
    assert cv.one_standard_error(_tried([v + 0.05 for v in best], noisy, best)).per_fold_loss == tuple(noisy)


def test_the_decays_trained_in_one_stack_equal_each_decay_trained_alone(tmp_path):
    """One stack of 3 decays x 5 folds (a decay per model in numba's kernel) gives each candidate what its
    own stack gives; and a decay's fold equals torch's SGD(weight_decay=) on the fold's rows (the reference)."""
    config = TrainConfig(data=str(iris_csv(tmp_path / "iris.csv")), target="species", lr=0.1, epochs=40,
                         log_every=20, early_stop=100)  # fmt: skip
    data = load_dataset(config)
    decays = (1e-1, 1e-2, 0.0)
    together = cv._stack(config, data, (10,), decays, None)
    for d, candidate in zip(decays, together, strict=True):
        (alone,) = cv._stack(config, data, (10,), (d,), None)
        assert candidate.weight_decay == d and candidate.best_epoch == alone.best_epoch
        np.testing.assert_allclose(candidate.per_fold_loss, alone.per_fold_loss, rtol=0, atol=1e-6)
    assert together[0].per_fold_loss != together[2].per_fold_loss  # the decay did something
    x = torch.from_numpy(np.concatenate([data.x_train, data.x_val]))
    y = torch.from_numpy(np.concatenate([data.y_train, data.y_val]))
    fold = cv.fold_of(y.numpy(), "classification", config.seed)
    model = build_model(config, data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-1)
    loss_fn = make_loss("classification")
    for _ in range(40):  # fold 0 of the strongest decay, trained alone by the lesson's loop
        optimizer.zero_grad()
        loss_fn(model(x[fold != 0]), y[fold != 0]).backward()
        optimizer.step()
    with torch.no_grad():
        held = loss_fn(model(x[fold == 0]), y[fold == 0]).item()  # sync: a test's read
    assert together[0].best_epoch == 40 and together[0].per_fold_loss[0] == pytest.approx(held, abs=1e-5)


def test_the_linear_candidate_trains_all_its_epochs_and_keeps_its_best_point():
    """A linear model's held-out loss can rise and fall again (Linnerud's, a corpus file: lowest at epoch
    400, then higher until 2,000): a patience of one log point would stop at 500; the linear model's folds go
    on, and its best point is still the one kept."""
    corpus = Path(__file__).parent / "data" / "corpus"
    config = TrainConfig(data=str(corpus / "linnerud.csv"), target="Weight", epochs=2000, early_stop=1)
    data = load_dataset(config)
    (linear,) = cv._stack(config, data, (), (0.0,), None)
    # no better point for 16 log points after 400, with a patience of 1: it went on (and kept 400)
    assert linear.stopped_epoch == 2000 and linear.best_epoch == 400
