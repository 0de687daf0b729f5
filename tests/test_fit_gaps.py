"""Users' modules devicelab used to refuse or mistrain, each against the user's own plain loop: one logit
for a two-class target (binary cross-entropy), integer codes for an embedding, a model in float64, a model
on another device (or several)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

import devicelab
from devicelab.cli import main
from seed_lesson import lesson_data

EPOCHS = 30

pytestmark = pytest.mark.usefixtures("one_thread")


class Squeezed(nn.Module):
    """One logit a row as ``(n,)``: the user squeezes the last layer's output."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def _logit_model(squeezed: bool) -> nn.Module:
    torch.manual_seed(0)
    return Squeezed() if squeezed else nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def _binary_data():
    X, y, X_test, y_test = lesson_data("cpu")
    return X, (y == 1).long(), X_test, (y_test == 1).long()  # versicolor or not: not linearly separable


def _bce_loop(model: nn.Module, x, y, loss_fn, epochs: int = EPOCHS, lr: float = 0.1) -> list[float]:
    """The user's loop for a yes/no target: one logit, BCEWithLogitsLoss on float targets."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        loss = loss_fn(model(x).reshape(-1), y.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # the user's loop: a host read every step
    return losses


@pytest.mark.parametrize(
    ("squeezed", "loss"),
    [
        (False, None),
        (True, None),
        (False, "bce"),
        (False, nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0]))),
    ],
    ids=["default", "squeezed", "bce", "pos_weight"],
)
def test_one_logit_for_two_classes_trains_with_binary_cross_entropy(squeezed, loss):
    X, y, X_test, y_test = _binary_data()
    model, reference = _logit_model(squeezed), _logit_model(squeezed)
    result = devicelab.fit(
        model, X, y, X_test=X_test, y_test=y_test, loss=loss, epochs=EPOCHS, lr=0.1, log_every=EPOCHS
    )
    inner = loss if isinstance(loss, nn.Module) else nn.BCEWithLogitsLoss()
    np.testing.assert_allclose(result.losses, _bce_loop(reference, X, y, inner), atol=1e-5)
    with torch.no_grad():  # the threshold at logit 0, by hand
        expected = ((reference(X_test).reshape(-1) > 0).long() == y_test).float().mean().item()
    assert result.metrics[-1]["test_accuracy"] == pytest.approx(expected)
    assert result.path == "eager"  # the fused kernel knows cross-entropy and MSE only
    assert squeezed or "the loss BinaryLogitLoss is not fused" in result.path_reason


def test_binary_cross_entropy_refuses_a_target_of_three_classes():
    X, y, _, _ = lesson_data("cpu")
    with pytest.raises(devicelab.UserError, match="two classes, and y has 3 classes"):
        devicelab.fit(_logit_model(False), X, y, loss="bce", epochs=2)


LOGIT_FILE = """
from torch import nn


class Logit(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)
"""


def test_one_logit_through_the_cli_then_predict_then_sweep_refused(tmp_path, capsys):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = tmp_path / "yes_no.csv"
    with open(rows, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "d", "kind"])
        writer.writerows([*r, "yes" if t == 1 else "no"] for r, t in zip(iris.data, iris.target, strict=True))
    (tmp_path / "logit.py").write_text(LOGIT_FILE)
    spec, data = f"{tmp_path / 'logit.py'}:Logit", ["--data", str(rows), "--target", "kind"]
    runs = ["--runs-dir", str(tmp_path / "runs"), "--name", "b", "--quiet", "--threads", "1"]
    assert main(["train", "--model", spec, *data, "--epochs", "200", "--lr", "0.5", *runs]) == 0
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(tmp_path / "runs" / "b"), "--data", str(rows), "--out", str(out)]) == 0
    from devicelab.training.predict import load_saved

    saved = load_saved(tmp_path / "runs" / "b")
    with open(out) as f:
        got = list(csv.DictReader(f))
    with torch.no_grad():  # the saved module's own logits, thresholded at 0
        x = torch.from_numpy(saved.scaler.transform(iris.data.astype(np.float32)).astype(np.float32))
        logits = saved.model(x).reshape(-1)
    assert [r["predicted_kind"] for r in got] == ["yes" if z > 0 else "no" for z in logits.tolist()]
    sigmoid = torch.sigmoid(logits)
    np.testing.assert_allclose(
        [float(r["confidence"]) for r in got], torch.maximum(sigmoid, 1 - sigmoid).numpy(), atol=1e-4
    )
    capsys.readouterr()
    assert main(["sweep", "--model", spec, *data, "--seeds", "0-1", "--epochs", "5", "--quiet"]) == 2
    assert "one logit a row" in capsys.readouterr().err
