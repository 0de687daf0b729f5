"""devicelab.fit on the user's own module, against plain PyTorch loops written beside it."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import devicelab
from devicelab.fast.match import MlpMatch, match_mlp
from seed_lesson import MLP, lesson_data, lesson_model, lesson_train

EPOCHS = 200


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


class Method(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(F.relu(self.a(x)).relu())


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


class Reversed(nn.Module):  # layers declared in the other order than they run
    def __init__(self):
        super().__init__()
        self.second, self.first = nn.Linear(8, 3), nn.Linear(4, 8)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


@pytest.mark.parametrize(
    ("make", "widths", "activations"),
    [
        (MLP, (4, 10, 3), ("relu",)),
        (Functional, (4, 8, 3), ("tanh",)),
        (Method, None, None),  # relu twice in a row: not one chain of Linear/activation
        (
            lambda: nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 2)),
            (4, 8, 8, 2),
            ("gelu", "gelu"),
        ),
        (lambda: nn.Sequential(nn.Linear(4, 3)), (4, 3), ()),
    ],
    ids=["lesson-class", "functional-tanh", "relu-twice", "sequential-gelu", "one-linear"],
)
def test_tracing_finds_an_mlp_whatever_its_class(make, widths, activations):
    found = match_mlp(make())
    if widths is None:
        assert isinstance(found, str) and "activation" in found
        return
    assert isinstance(found, MlpMatch), found
    assert (found.widths, found.activations) == (widths, activations)


@pytest.mark.parametrize(
    ("module", "fragment"),
    [
        (SmallCNN(), "convolution"),
        (nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 3)), "dropout"),
        (nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)), "normalisation"),
        (nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 3)), "Sigmoid"),
        (Branchy(), "torch.fx cannot trace"),
        (Skip(), "not one chain"),
    ],
    ids=["cnn", "dropout", "batchnorm", "sigmoid", "branch", "skip"],
)
def test_what_is_no_mlp_says_why(module, fragment):
    found = match_mlp(module)
    assert isinstance(found, str) and fragment in found


def test_fit_equals_the_lessons_loop_and_trains_the_module_in_place():
    X, y, X_test, y_test = lesson_data("cpu")
    reference = lesson_model("cpu")
    expected, _ = lesson_train(reference, X, y, EPOCHS)  # the lesson's loop, .item() every step

    eager = lesson_model("cpu")
    result = devicelab.fit(eager, X, y, X_test=X_test, y_test=y_test, epochs=EPOCHS, fast="off", threads=1)
    assert result.path == "eager" and result.dataset.task == "classification"
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)
    assert result.host_syncs == EPOCHS // 100  # one per log point
    assert result.model is eager  # the user's object, trained in place
    for mine, theirs in zip(eager.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)

    fused = lesson_model("cpu")
    result = devicelab.fit(fused, X, y, X_test=X_test, y_test=y_test, epochs=EPOCHS, device="cpu")
    assert result.path == "numba", result.path_reason
    assert "MLP 4-10-3" in result.path_reason
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)
    for mine, theirs in zip(fused.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
    assert result.metrics[-1]["test_accuracy"] > 0.5


def test_parameters_out_of_call_order_stay_eager_and_equal():
    X, y, _, _ = lesson_data("cpu")
    torch.manual_seed(0)
    model = Reversed()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.01)
    expected, _ = _plain_loop(reference, optimizer, nn.CrossEntropyLoss(), X, y, 50)
    result = devicelab.fit(model, X, y, epochs=50, threads=1)
    assert result.path == "eager" and "order" in result.path_reason
    np.testing.assert_allclose(result.losses, expected, atol=1e-6)


def _plain_loop(model, optimizer, criterion, X, y, epochs):
    losses = []
    for _ in range(epochs):
        loss = criterion(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, model


def _digits(n: int = 200):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data[:n] / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return x, torch.tensor(digits.target[:n])


def test_a_cnn_trains_eagerly_with_its_own_optimizer_as_a_plain_loop_would():
    x, y = _digits()
    torch.manual_seed(1)
    model = SmallCNN()
    reference = copy.deepcopy(model)
    expected, _ = _plain_loop(
        reference, torch.optim.Adam(reference.parameters(), lr=1e-2), nn.CrossEntropyLoss(), x, y, 20
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    result = devicelab.fit(model, x, y, optimizer=optimizer, epochs=20, log_every=10, threads=1)
    assert result.path == "eager"
    assert "convolution" in result.path_reason
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)
    assert optimizer.state[next(model.parameters())]["step"] == 20  # the user's optimizer did the steps


def test_regression_with_a_loss_module_and_a_torch_dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    target = (x @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(target))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    reference = copy.deepcopy(model)
    mse = nn.MSELoss()
    expected = []
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    for _ in range(30):
        loss = mse(reference(torch.from_numpy(x)).squeeze(-1), torch.from_numpy(target))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    result = devicelab.fit(
        model, data, loss=nn.MSELoss(), lr=0.05, epochs=30, log_every=10, device="cpu", fast="off"
    )
    assert result.dataset.task == "regression"
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)


def test_bad_input_is_one_user_error():
    X, y, _, _ = lesson_data("cpu")
    assert issubclass(devicelab.UserError, ValueError)
    with pytest.raises(devicelab.UserError, match="X has 120 rows and y 119"):
        devicelab.fit(MLP(), X, y[:-1], epochs=5)
    with pytest.raises(devicelab.UserError, match=r"expected \(2, 3\).*3 classes"):
        devicelab.fit(nn.Linear(4, 2), X, y, epochs=5)
    with pytest.raises(devicelab.UserError, match="cannot take the data"):
        devicelab.fit(nn.Linear(5, 3), X, y, epochs=5)
    with pytest.raises(devicelab.UserError, match="model is on the meta device"):
        devicelab.fit(MLP().to("meta"), X, y, epochs=5, device="cpu")
    with pytest.raises(devicelab.UserError, match="not the model's parameters"):
        devicelab.fit(MLP(), X, y, optimizer=torch.optim.SGD(MLP().parameters(), lr=0.1), epochs=5)


def test_a_run_folder_records_the_class_and_rebuilds_it(tmp_path, capsys):
    from devicelab.training.predict import load_saved

    X, y, X_test, y_test = lesson_data("cpu")
    model = lesson_model("cpu")
    result = devicelab.fit(
        model, X, y, X_test=X_test, y_test=y_test, epochs=100, runs_dir=tmp_path, model_args={}
    )
    assert (result.folder / "model_source.py").read_text() == Path(inspect.getsourcefile(MLP)).read_text()
    saved = load_saved(result.folder)
    assert type(saved.model).__name__ == "MLP"
    for mine, theirs in zip(saved.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)

    from devicelab.cli import main

    assert main(["train", "--resume", str(result.folder), "--epochs", "200"]) == 2  # the arrays are not kept
    assert "trained by devicelab.fit on arrays" in capsys.readouterr().err

    unknown = devicelab.fit(lesson_model("cpu"), X, y, epochs=100, runs_dir=tmp_path)  # no model_args
    with pytest.raises(devicelab.UserError, match="arguments are unknown"):
        load_saved(unknown.folder)
