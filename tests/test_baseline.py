"""The linear baseline beside every file run: the same numbers as a scikit-learn pipeline fitted by hand
on the same rows (the reference), a noise that matches the paired binomial closed form for accuracy, a
"better" verdict only beyond that noise (planted both ways), and the line in the CLI's summary and
summary.json."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import run_cli
from csv_files import iris_csv
from devicelab.data import load_dataset
from devicelab.training import baseline
from devicelab.training.config import TrainConfig


def test_the_baseline_is_a_standardised_logistic_regression_on_the_same_rows(tmp_path):
    data = load_dataset(TrainConfig(data=str(iris_csv(tmp_path / "iris.csv")), target="species"))
    x = np.concatenate([data.x_train, data.x_val])  # every training row, the validation rows among them
    y = np.concatenate([data.y_train, data.y_val])
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)
    np.testing.assert_array_equal(baseline.fit_predict(data), reference.predict(data.x_test))


def _planted(n: int, theirs_right: int, ours_right: int):
    """Test rows of class 0; the baseline right on its first ``theirs_right``, devicelab on its last ``ours_right``."""

    class Rows:  # what compare() reads of a Dataset
        task, y_test, target_scaler = "classification", np.zeros(n, dtype=np.int64), None

    theirs = np.ones(n, dtype=np.int64)
    theirs[:theirs_right] = 0
    ours = np.ones(n, dtype=np.int64)
    ours[n - ours_right :] = 0
    return Rows, ours, theirs


def test_the_noise_is_the_paired_binomial_error_and_better_means_beyond_it():
    rows, ours, theirs = _planted(200, theirs_right=180, ours_right=140)
    b = baseline.compare(rows, ours, theirs)
    d = (theirs == 0).astype(float) - (ours == 0).astype(float)  # the per-row paired differences
    closed_form = math.sqrt(d.var(ddof=1) / len(d))
    assert b.noise == pytest.approx(closed_form, rel=0.1)
    assert b.test_metric == 0.9 and b.devicelab_metric == 0.7 and b.better
    assert "logistic regression" in b.advice() and "--optimizer adam" in b.advice()
    close = baseline.compare(*_planted(200, theirs_right=150, ours_right=146))
    assert 0 < close.lead < 2 * close.noise and not close.better and close.advice() is None
    worse = baseline.compare(*_planted(200, theirs_right=100, ours_right=190))
    assert worse.lead < 0 and not worse.better


def test_a_file_run_prints_the_baseline_and_says_when_it_is_better(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 3))
    y = x @ np.array([3.0, -2.0, 1.0]) + 0.1 * rng.normal(size=150)  # linear: ridge gets R² ≈ 1
    lines = ["a,b,c,y", *(f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{t:.4f}" for r, t in zip(x, y, strict=True))]
    (tmp_path / "linear.csv").write_text("\n".join(lines) + "\n")
    # two epochs of plain SGD: the network has learnt next to nothing
    result = run_cli("train", "--data", "linear.csv", "--target", "y", "--epochs", "2", "--log-every", "1",
                     "--device", "cpu", "--threads", "1", "--quiet", "--name", "r", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"^linear baseline: +ridge regression: test r2 0\.99\d\d vs devicelab's", result.stdout, re.M
    )
    assert "warning: a linear model (ridge regression) scores r2 0.99" in result.stderr
    summary = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    b = summary["baseline"]
    assert b["model"] == "ridge regression" and b["metric"] == "test_r2" and b["better"]
    assert b["test_metric"] > 0.99 and b["devicelab_metric"] == pytest.approx(
        summary["final"]["test_r2"], rel=1e-5
    )  # f32 vs f64
