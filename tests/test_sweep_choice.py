"""devicelab sweep on every model train makes, ranked without looking at the test rows: a CSV with a
category of more than 30 levels (embedded) sweeps, each model equal to its own ``devicelab train`` run
(the reference); models are ranked by the validation metric, the test metric beside it; a layout that
cannot take the data is refused in one line before anything is trained."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import assert_user_error, run_cli
from devicelab import train
from devicelab.data import load_dataset
from devicelab.sweep import Grid, run_sweep
from devicelab.training.config import TrainConfig


def city_csv(path, rows: int = 160):
    """A class that depends on a number and on a 40-level category (embedded: more than 30 levels)."""
    rng = np.random.default_rng(0)
    lines = ["x1,city,y"]
    for _ in range(rows):
        x, city = rng.normal(), int(rng.integers(0, 40))
        lines.append(f"{x:.3f},c{city},{int(x + city % 3 > 1)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    return city_csv(tmp_path_factory.mktemp("sweep") / "cities.csv")


def test_a_sweep_with_embeddings_trains_each_model_as_train_would(cities):
    base = TrainConfig(data=str(cities), target="y", epochs=40, log_every=10, device="cpu", threads=1,
                       quiet=True, early_stop=0, optimizer="adam")  # fmt: skip
    dataset = load_dataset(base)
    assert dataset.embeddings  # the reason this file used to end in RuntimeError: expand(...)
    grid = Grid(lrs=(0.003, 0.03), seeds=(1, 2), hiddens=((8,),))
    result = run_sweep(base, grid, dataset=dataset)
    assert result.layout == "bmm" and "embeddings" in result.layout_reason
    losses = result.losses()
    for spec in grid.models():
        alone = train(dataclasses.replace(base, lr=spec.lr, init_seed=spec.seed, hidden=spec.hidden))
        np.testing.assert_allclose(losses[spec.index], alone.losses, rtol=0, atol=1e-5)
        row = next(r for r in result.rows() if r["model"] == spec.index)
        final = alone.final  # the same weights: the same validation and test metrics
        assert row["final_val_loss"] == pytest.approx(final["val_loss"], abs=1e-5)
        assert row["final_test_accuracy"] == pytest.approx(final["test_accuracy"], abs=1e-6)
    # ranked by the validation metric (highest accuracy, then lowest loss), never by the test one
    assert result.metric == "val_accuracy"
    ranked = result.ranked()
    keys = [(-r["final_val_accuracy"], r["final_val_loss"]) for r in ranked]
    assert keys == sorted(keys)
    best = result.best_run()  # the best model as a run: its weights give its row's metrics
    assert best.config.lr == next(s.lr for s in grid.models() if s.index == ranked[0]["model"])


def test_without_validation_rows_the_test_metric_ranks(cities):
    base = TrainConfig(data=str(cities), target="y", epochs=20, log_every=10, device="cpu", threads=1,
                       quiet=True, val_size=0.0)  # fmt: skip
    result = run_sweep(base, Grid(lrs=(0.01, 0.1), seeds=(0,), hiddens=((4,),)))
    assert result.metric == "test_accuracy" and "final_val_accuracy" not in result.rows()[0]


def test_the_numba_layout_refuses_embeddings_before_training(cities, tmp_path):
    result = run_cli("sweep", "--data", str(cities), "--target", "y", "--layout", "numba", "--device", "cpu",
                     "--epochs", "10", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)  # fmt: skip
    assert_user_error(result, "--layout numba trains plain MLPs")
    assert "sweeping" not in result.stderr and not (tmp_path / "runs").exists()
