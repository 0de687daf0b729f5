"""devicelab.fit's inputs: DataFrames and Series as the same arrays, and a run without test rows (no test
metrics rather than NaN ones, said once in the result, its repr, summary.json, the printed summary and the
HTML report)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import devicelab

pd = pytest.importorskip("pandas")


def _data(n: int = 60):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))


def test_a_dataframe_and_series_train_as_the_same_arrays():
    x, y = _data()
    names = ["sepal", "petal", "stem"]
    frame = pd.DataFrame(x, columns=names)
    labels = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y], name="species")
    kwargs = dict(epochs=40, log_every=20, lr=0.1, device="cpu", fast="off")
    from_arrays = devicelab.fit(_model(), x, y, X_test=x[:10], y_test=y[:10], **kwargs)
    from_frames = devicelab.fit(
        _model(), frame, labels, X_test=frame.iloc[:10], y_test=labels.iloc[:10], **kwargs
    )
    np.testing.assert_array_equal(from_frames.losses, from_arrays.losses)
    assert from_frames.dataset.feature_names == tuple(names)
    assert from_frames.dataset.target_name == "species"
    assert list(from_frames.dataset.classes) == ["setosa", "versicolor", "virginica"]
    assert from_frames.final["test_accuracy"] == from_arrays.final["test_accuracy"]


def test_without_test_rows_there_are_no_test_metrics_and_it_is_said_once(tmp_path):
    from devicelab.report.html_run import render_run
    from devicelab.report.train_summary import train_summary

    x, y = _data()
    model = _model()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    expected = []
    for _ in range(30):  # the user's own loop on the same rows
        loss = nn.functional.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    result = devicelab.fit(
        model, x, y, epochs=30, log_every=10, lr=0.1, device="cpu", fast="off", runs_dir=tmp_path
    )
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)
    assert [sorted(row) for row in result.metrics] == [["elapsed_s", "epoch", "train_loss"]] * 3
    assert math.isclose(result.final["train_loss"], expected[-1], rel_tol=1e-5)
    text = repr(result)
    assert "nan" not in text.lower() and text.count("no test rows") == 1
    summary = json.loads((result.folder / "summary.json").read_text())
    assert "no test rows" in summary["no_test_metrics"]
    assert sorted(summary["final"]) == ["elapsed_s", "epoch", "train_loss"]
    assert "test_loss" not in (result.folder / "metrics.csv").read_text()
    printed = train_summary(result, result.folder)
    assert "nan" not in printed.lower() and printed.count("no test rows") == 1
    page = render_run(result.folder)
    assert page.count("no test rows") == 1 and ">nan<" not in page.lower()
    result.plot()  # no test curve to draw, and no error

    with_test = devicelab.fit(_model(), x, y, X_test=x, y_test=y, epochs=10, log_every=10, fast="off")
    assert "test_accuracy" in with_test.final and "no test rows" not in repr(with_test)
