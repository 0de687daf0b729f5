"""Data as users hand it to ``devicelab.fit`` that the earlier tests did not: a DataFrame with its own index,
bool and nullable columns and class names; a Dataset of dicts; labels as whole floats; NaN and infinite
cells; one class. Each one trains as the user's own loop on the same numbers would, or is one line."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import devicelab
import user_models
from seed_lesson import lesson_data

pytestmark = pytest.mark.usefixtures("one_thread")
EPOCHS = 20


def _mlp(inputs: int = 4, outputs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, outputs))


def _same_as_plain_loop(model_inputs: int, X, y, x_ref: torch.Tensor, y_ref: torch.Tensor, **kwargs):
    model, reference = _mlp(model_inputs), _mlp(model_inputs)
    result = devicelab.fit(model, X, y, epochs=EPOCHS, lr=0.1, threads=1, **kwargs)
    expected = user_models.plain_loop(reference, x_ref, y_ref, EPOCHS, 0.1)
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)
    return result


def test_a_dataframe_with_its_own_index_bool_and_nullable_columns_and_class_names():
    X, y, _, _ = lesson_data("cpu")
    frame = pd.DataFrame(X.numpy(), columns=list("abcd"), index=np.arange(100, 100 + len(X)))
    frame["long"] = frame["a"] > 0.5  # bool: 0/1
    frame["n"] = pd.array(np.arange(len(X)) % 3, dtype="Int64")  # a nullable integer column
    names = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y.numpy()], index=frame.index)
    rows = torch.tensor(frame.astype("float32").to_numpy())  # what the user's loop would train on
    result = _same_as_plain_loop(6, frame, names.to_frame("species"), rows, y)  # y: a one-column frame
    assert result.dataset.classes == ("setosa", "versicolor", "virginica")
    assert result.dataset.feature_names == ("a", "b", "c", "d", "long", "n")

    with pytest.raises(devicelab.UserError, match=r"X_test's columns are not X's: column 0 is 'b' in X_test"):
        devicelab.fit(_mlp(6), frame, names, X_test=frame[["b", "a", "c", "d", "long", "n"]], y_test=names)
    frame["species"] = names  # a text column among the features: named, not "object values"
    with pytest.raises(devicelab.UserError, match=r"X's column 'species' holds (object|str|string)"):
        devicelab.fit(_mlp(7), frame, y, epochs=1)


def test_datasets_of_dicts_sparse_rows_one_hot_and_whole_float_labels():
    X, y, _, _ = lesson_data("cpu")

    class Rows(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return {"features": X[i], "label": y[i]}

    _same_as_plain_loop(4, Rows(), None, X, y)
    # 0., 2. as np.loadtxt reads labels: class ids as given (the user's loop: y.long()), as integers are
    gap = (y == 1).long() * 2
    _same_as_plain_loop(4, X.numpy(), gap.double().numpy(), X, gap)

    # a scipy sparse matrix (TF-IDF features): dense rows, as the user's torch.tensor(X.toarray())
    from scipy.sparse import csr_matrix

    _same_as_plain_loop(4, csr_matrix(X.numpy()), y, X, y)
    # one-hot rows (Keras' to_categorical): classes, trained as the user's cross_entropy(out, y_one_hot)
    one_hot = nn.functional.one_hot(y, 3).float()
    result = _same_as_plain_loop(4, X.numpy(), one_hot.numpy(), X, one_hot)
    assert result.dataset.task == "classification" and result.dataset.classes == (0, 1, 2)

    class Unnamed(Rows):
        def __getitem__(self, i):
            return {"a": X[i], "b": y[i]}

    with pytest.raises(devicelab.UserError, match=r"keys 'a', 'b', and devicelab cannot tell the features"):
        devicelab.fit(_mlp(), Unnamed(), epochs=1)


class _Spare(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.spare = (
            nn.Linear(4, 8),
            nn.Linear(8, 3),
            nn.Linear(8, 8),
        )  # spare: never used

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.mark.parametrize("batch_size", [None, 32])
def test_a_layer_the_forward_never_uses_and_a_model_with_nothing_to_train(batch_size):
    """A layer defined and not used (no gradient): the plain-SGD step raised autograd's "appears to not have
    been used in the graph"; now it is left alone, as torch.optim.SGD leaves it. Nothing to train: one line."""
    X, y, _, _ = lesson_data("cpu")
    model, reference = _Spare(), _Spare()
    spare = model.spare.weight.clone()
    result = devicelab.fit(model, X, y, epochs=EPOCHS, lr=0.1, threads=1, batch_size=batch_size)
    if batch_size is None:
        np.testing.assert_allclose(
            result.losses, user_models.plain_loop(reference, X, y, EPOCHS, 0.1), atol=1e-5
        )
    assert torch.equal(model.spare.weight, spare)
    frozen = _mlp().requires_grad_(False)
    with pytest.raises(
        devicelab.UserError, match=r"nothing to train: its 4 parameter tensor\(s\) are all frozen"
    ):
        devicelab.fit(frozen, X, y, epochs=1)


@pytest.mark.parametrize("y_shape", ["(n,)", "(n, 1)"])
def test_the_users_own_regression_loss_compares_row_with_row(y_shape):
    """An (n, 1) output and the user's L1Loss: devicelab holds y as (n,), and the loss must not broadcast the
    two to (n, n) (it did: every output against every target, a torch warning and other losses)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X @ rng.normal(size=4)).astype(np.float32)
    model, reference = _mlp(outputs=1), _mlp(outputs=1)
    given = y if y_shape == "(n,)" else y[:, None]
    result = devicelab.fit(model, X, given, loss=nn.L1Loss(), epochs=EPOCHS, lr=0.1, threads=1)
    loss = lambda out, target: nn.functional.l1_loss(out, target[:, None])  # noqa: E731  (the user's (n, 1))
    expected = user_models.plain_loop(reference, torch.from_numpy(X), torch.from_numpy(y), EPOCHS, 0.1, loss)
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)


def test_nan_and_infinite_cells_and_a_single_class_are_one_line_naming_where():
    X, y, _, _ = lesson_data("cpu")
    frame = pd.DataFrame(X.numpy(), columns=list("abcd"), index=np.arange(100, 100 + len(X)))
    frame.iloc[7, 2] = np.nan
    with pytest.raises(
        devicelab.UserError, match=r"^X has 1 NaN .*\(NaN\) at row 7 \(index 107\), column 'c'"
    ):
        devicelab.fit(_mlp(), frame, y, epochs=1)
    target = np.linspace(0, 1, len(X), dtype=np.float32)
    target[3] = np.inf
    with pytest.raises(devicelab.UserError, match=r"^y has 1 NaN .*\(an infinite value\) at row 3 \("):
        devicelab.fit(_mlp(outputs=1), X, target, epochs=1)
    names = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y.numpy()]).where(
        lambda s: s.index != 5
    )
    with pytest.raises(devicelab.UserError, match=r"^y has 1 missing label\(s\), the first at row 5"):
        devicelab.fit(_mlp(), X, names, epochs=1)  # (pandas' NaN in a str column: a pyarrow TypeError before)
    with pytest.raises(devicelab.UserError, match=r"^y has one class \(0\) in all its rows \(1\)"):
        devicelab.fit(_mlp(), X[:1], y[:1], epochs=1)


HELPERS = """
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.LazyLinear(width)  # shaped by the first forward

    def forward(self, x):
        return self.fc(x).tanh()
"""

NET = """
from torch import nn

from helpers import Block  # a module next to this file, as `python net.py` finds it


class Net(nn.Module):
    def __init__(self, hidden):  # required: --model-args
        super().__init__()
        self.block = Block(hidden)
        self.head = nn.Linear(hidden, 3)

    def forward(self, x):
        h = self.block(x)
        return self.head(h), h  # (logits, hidden): trained on the first
"""


@pytest.fixture
def forget_helpers():
    yield
    # the model's helper module, imported by name: not left in sys.modules for other tests' own "helpers"
    # (monkeypatch.delitem would put it back at teardown)
    sys.modules.pop("helpers", None)


def test_a_lazy_module_with_a_helper_file_and_required_arguments_through_the_cli(
    tmp_path, monkeypatch, capsys, forget_helpers
):
    """train --model, then predict, --resume (equal to one longer run), report and sweep on its run folder:
    the lazy layer is shaped from the saved weights or by a first forward, the tuple read as its logits."""
    import csv

    from csv_files import iris_csv
    from devicelab.cli import main

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "helpers.py").write_text(HELPERS)
    (tmp_path / "model" / "net.py").write_text(NET)
    rows = iris_csv(tmp_path / "iris.csv")
    monkeypatch.chdir(tmp_path)  # not the model's folder: its helper is found next to it
    model = ["--model", "model/net.py:Net", "--data", str(rows), "--target", "species", "--optimizer", "adam"]
    model += ["--scaler", "none"]
    quiet = ["--quiet", "--threads", "1", "--log-every", "10"]
    assert main(["train", *model, *quiet, "--epochs", "20", "--name", "a"]) == 2
    assert "needs the argument(s) hidden" in capsys.readouterr().err
    model += ["--model-args", '{"hidden": 6}']
    assert main(["train", *model, *quiet, "--epochs", "20", "--name", "a"]) == 0
    assert main(["train", *model, *quiet, "--epochs", "40", "--name", "b"]) == 0
    assert main(["train", "--resume", "runs/a", "--epochs", "40", *quiet]) == 0
    np.testing.assert_allclose(np.load("runs/a-resumed/losses.npy"), np.load("runs/b/losses.npy"), atol=1e-6)

    assert main(["predict", "runs/b", "--data", str(rows), "--out", "out.csv"]) == 0
    with open("out.csv") as f:
        predicted = [r["predicted_species"] for r in csv.DictReader(f)]
    # the reference: the user's own class, its weights loaded from the run, on the file's rows (--scaler none)
    import importlib.util

    from safetensors.torch import load_file

    from csv_files import SPECIES, iris_arrays

    spec = importlib.util.spec_from_file_location("unseen_net", tmp_path / "model" / "net.py")
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)  # (helpers is in sys.modules already: devicelab imported it)
    reference = net.Net(hidden=6)
    reference(torch.zeros(1, 4))  # the lazy layer's shape
    reference.load_state_dict(load_file("runs/b/model.safetensors"))
    with torch.no_grad():
        logits, _ = reference(torch.tensor(iris_arrays()[0], dtype=torch.float32))
    assert predicted == [SPECIES[i] for i in logits.argmax(dim=1).tolist()]
    assert main(["report", "runs/b", "--out", "b.html"]) == 0
    sweep = [*model, "--seeds", "0-1", "--epochs", "20", "--quiet", "--runs-dir", "sweeps"]
    assert main(["sweep", *sweep]) == 0
    capsys.readouterr()


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_predict_on_a_fit_run_reads_a_bool_column_as_pandas_writes_it(tmp_path, capsys):
    """A frame with a bool column, trained by fit into a run folder, then written by pandas (True/False) and
    given to devicelab predict: the rows read as 1/0, as fit trained on them (it was a KeyError traceback);
    an empty cell, which the run has nothing to fill with, is one line naming the column and the row."""
    from devicelab.cli import main

    X, y, _, _ = lesson_data("cpu")
    frame = pd.DataFrame(X.numpy(), columns=list("abcd"))
    frame["long"] = frame["c"] > 0.5
    names = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y.numpy()])
    torch.manual_seed(0)
    model = _Small()
    result = devicelab.fit(
        model,
        frame,
        names,
        epochs=EPOCHS,
        lr=0.1,
        threads=1,
        runs_dir=tmp_path / "runs",
        name="f",
        model_args={},
    )
    rows, out = tmp_path / "rows.csv", tmp_path / "out.csv"
    frame.assign(species=names).to_csv(rows, index=False)
    assert "False" in rows.read_text()
    assert main(["predict", str(result.folder), "--data", str(rows), "--out", str(out)]) == 0
    with torch.no_grad():
        expected = model(torch.tensor(frame.to_numpy(dtype=np.float32))).argmax(dim=1).numpy()
    predicted = pd.read_csv(out)["predicted_y"].to_numpy()
    assert list(predicted) == list(np.array(["setosa", "versicolor", "virginica"])[expected])

    gap = frame.assign(species=names).astype({"a": object})
    gap.loc[2, "a"] = None  # an empty cell in the third data row
    gap.to_csv(rows, index=False)
    capsys.readouterr()
    assert main(["predict", str(result.folder), "--data", str(rows), "--out", str(out)]) == 2
    assert (
        "the column a has 1 empty or unreadable cell(s), the first in data row 3" in capsys.readouterr().err
    )


SCRIPT = """
import torch.nn as nn

for _ in range(2):  # a training script's top level, which importing the file runs
    print("the script trained")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)
"""


def test_a_model_file_that_runs_code_when_imported_is_said_before_it_runs(tmp_path, monkeypatch, capsys):
    from devicelab.cli import main

    (tmp_path / "script.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "script.py:Net", "--epochs", "5", "--quiet", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    warning = (
        "devicelab: warning: script.py runs code when it is imported (line 4: for _ in range(2):), and devicelab "
        'imports it to build the model, so that runs too; put it under if __name__ == "__main__":'
    )
    assert captured.err.count(warning) == 1 and captured.out.startswith("the script trained")
