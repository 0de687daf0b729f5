"""Users' modules devicelab used to refuse or mistrain, each against the user's own plain loop: one logit
for a two-class target (binary cross-entropy), integer codes for an embedding, a model in float64, a model
on another device (or several)."""

from __future__ import annotations

import copy
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


def test_one_logit_through_the_cli_then_predict_then_sweep(tmp_path, capsys):
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
    sweep = ["sweep", "--model", spec, *data, "--seeds", "0-1", "--epochs", "5", "--quiet"]
    assert main([*sweep, "--runs-dir", str(tmp_path / "runs")]) == 0


@pytest.mark.parametrize("layout", ["vmap", "one-by-one"])
def test_a_sweep_of_a_one_logit_module_trains_each_seed_as_fit_does(tmp_path, layout, monkeypatch):
    import dataclasses

    from devicelab.data import load_dataset
    from devicelab.sweep import Grid, func_models
    from devicelab.sweep.run import run_sweep
    from devicelab.training.config import TrainConfig
    from devicelab.training.user_model import record

    if layout == "one-by-one":  # as for a module vmap cannot batch
        monkeypatch.setattr(func_models, "vmap_reason", lambda *a: "torch.func cannot vmap the module (test)")
    rows = tmp_path / "yes_no.csv"
    X, y, _, _ = lesson_data("cpu")
    with open(rows, "w", newline="") as f:
        csv.writer(f).writerows(
            [
                ["a", "b", "c", "d", "kind"],
                *([*r, int(t == 1)] for r, t in zip(X.tolist(), y.tolist(), strict=True)),
            ]
        )
    (tmp_path / "logit.py").write_text(LOGIT_FILE)
    source = record(f"{tmp_path / 'logit.py'}:Logit", {})
    config = TrainConfig(
        data=str(rows), target="kind", epochs=EPOCHS, log_every=EPOCHS, hidden=(), lr=0.5, device="cpu"
    )
    config = dataclasses.replace(config, extra={"model": source})
    dataset = load_dataset(config)
    result = run_sweep(config, Grid(lrs=(0.5,), seeds=(0, 1), hiddens=((),)), dataset=dataset)
    assert result.layout == layout, result.layout_reason
    for i, seed in enumerate((0, 1)):  # each seed: fit's binary cross-entropy on the same module and rows
        fitted = devicelab.fit(func_models.seeded_user_model(source, seed), dataset.x_train, dataset.y_train,
                               epochs=EPOCHS, lr=0.5, log_every=EPOCHS)  # fmt: skip
        np.testing.assert_allclose(result.groups[0].losses[i], fitted.losses, atol=1e-5)
    best = result.best_run()
    logits = best.model(torch.from_numpy(dataset.x_test)).detach().reshape(-1)
    accuracy = ((logits > 0).long() == torch.from_numpy(dataset.y_test)).float().mean().item()
    assert best.final["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def _codes():
    """The lesson's rows as integer codes 0..9 (an embedding's indices), as numpy int32 and torch int64."""
    X, y, X_test, y_test = lesson_data("cpu")
    return (X * 9).round().clamp(0, 9).int().numpy(), y, (X_test * 9).round().clamp(0, 9).long(), y_test


def test_integer_codes_reach_an_embedding_as_integers():
    import user_models

    X, y, X_test, y_test = _codes()
    torch.manual_seed(0)
    model, reference = user_models.RawEmbedding(), user_models.RawEmbedding()
    reference.load_state_dict(model.state_dict())
    result = devicelab.fit(model, X, y, X_test=X_test, y_test=y_test, epochs=EPOCHS, lr=0.1)
    assert result.dataset.x_train.dtype == np.int64  # never cast to float32
    expected = user_models.plain_loop(reference, torch.from_numpy(X).long(), y, EPOCHS, 0.1)
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)


def test_integer_rows_for_a_linear_first_layer_are_floats_as_before():
    import user_models

    X, y, _, _ = _codes()
    torch.manual_seed(0)
    model = user_models.make_mlp(**user_models.ARGS["make_mlp"])
    reference = copy.deepcopy(model)
    result = devicelab.fit(model, X, y, epochs=EPOCHS, lr=0.1)
    assert result.dataset.x_train.dtype == np.float32 and result.path == "numba"
    expected = user_models.plain_loop(reference, torch.from_numpy(X).float(), y, EPOCHS, 0.1)
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)


def test_predict_on_a_run_of_integer_codes_and_one_in_float64(tmp_path):
    import user_models

    X, y, X_test, _ = _codes()
    torch.manual_seed(0)
    embedded = devicelab.fit(
        user_models.RawEmbedding(),
        X,
        y,
        epochs=EPOCHS,
        lr=0.1,
        runs_dir=tmp_path,
        name="codes",
        model_args={},
    )
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as f:
        csv.writer(f).writerows([["x0", "x1", "x2", "x3"], *X_test.tolist()])
    out = tmp_path / "out.csv"
    assert main(["predict", str(embedded.folder), "--data", str(rows), "--out", str(out)]) == 0
    with open(out) as f:
        got = [int(r["predicted_y"]) for r in csv.DictReader(f)]
    with torch.no_grad():
        assert got == embedded.model(X_test).argmax(dim=1).tolist()
    from devicelab.training.predict import load_saved
    from seed_lesson import MLP

    double = devicelab.fit(
        MLP().double(), X.astype(np.float64), y, epochs=2, runs_dir=tmp_path, model_args={}
    )
    assert next(load_saved(double.folder).model.parameters()).dtype == torch.float64  # as trained


def test_a_float64_model_trains_on_float64_rows():
    X, y, _, _ = lesson_data("cpu")
    X = X.double() + 1e-9  # a difference float32 rows would round away
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3)).double()
    reference = copy.deepcopy(model)
    result = devicelab.fit(model, X.numpy(), y, epochs=EPOCHS, lr=0.1)
    assert result.dataset.x_train.dtype == np.float64 and next(model.parameters()).dtype == torch.float64
    assert result.path == "eager" and "float32" in result.path_reason  # the fused kernel is float32
    import user_models

    np.testing.assert_allclose(result.losses, user_models.plain_loop(reference, X, y, EPOCHS, 0.1), atol=1e-6)


def test_a_model_on_the_meta_device_or_on_two_devices_is_one_line():
    X, y, _, _ = lesson_data("cpu")
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    with pytest.raises(devicelab.UserError, match=r"on the meta device .*device='auto' was asked for"):
        devicelab.fit(copy.deepcopy(model).to("meta"), X, y, epochs=2)
    model[2].to("meta")  # the last layer only
    with pytest.raises(
        devicelab.UserError, match=r"on 2 devices \(0.weight on cpu, 2.weight on meta\).*model.to_empty"
    ):
        devicelab.fit(model, X, y, epochs=2, device="cpu")


@pytest.mark.parametrize("layout", ["vmap", "one-by-one"])
def test_a_sweeps_best_batch_norm_model_keeps_its_trained_running_statistics(layout, monkeypatch):
    import dataclasses

    from devicelab.data import load_dataset
    from devicelab.sweep import Grid, func_models
    from devicelab.sweep.run import run_sweep
    from devicelab.training.config import TrainConfig
    from devicelab.training.user_model import record

    if layout == "one-by-one":  # as for a module vmap cannot batch
        monkeypatch.setattr(func_models, "vmap_reason", lambda *a: "torch.func cannot vmap the module (test)")
    source = record(f"{user_models_path()}:WithBatchNorm", {})
    config = TrainConfig(epochs=EPOCHS, log_every=EPOCHS, hidden=(), lr=0.1, device="cpu")
    config = dataclasses.replace(config, extra={"model": source})
    dataset = load_dataset(config)
    result = run_sweep(config, Grid(lrs=(0.1,), seeds=(0, 1), hiddens=((),)), dataset=dataset)
    assert result.layout == layout, result.layout_reason
    best = result.best_run()
    reference = func_models.seeded_user_model(source, best.config.init_seed)  # the same seed, through fit
    fitted = devicelab.fit(
        reference, dataset.x_train, dataset.y_train, X_test=dataset.x_test, y_test=dataset.y_test,
        epochs=EPOCHS, lr=0.1, log_every=EPOCHS,
    )  # fmt: skip
    np.testing.assert_allclose(best.losses, fitted.losses, atol=1e-5)
    trained = dict(reference.named_buffers())
    assert int(trained["net.1.num_batches_tracked"]) == EPOCHS
    for name, value in best.model.named_buffers():  # running_mean/var as trained, not as built
        torch.testing.assert_close(value, trained[name], atol=1e-5, rtol=1e-5)
    best.model.eval(), reference.eval()
    with torch.no_grad():  # the best model evaluated: the same outputs as fit's
        x_test = torch.from_numpy(dataset.x_test)
        torch.testing.assert_close(best.model(x_test), reference(x_test), atol=1e-5, rtol=1e-5)


def user_models_path() -> str:
    import user_models

    return user_models.__file__


def test_a_files_integer_codes_reach_an_embedding_only_when_asked(tmp_path, capsys):
    import shutil

    import user_models

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, size=(120, 4))
    rows = tmp_path / "codes.csv"
    with open(rows, "w", newline="") as f:
        csv.writer(f).writerows(
            [["a", "b", "c", "d", "label"], *([*r, int(r[0] > r[1])] for r in codes.tolist())]
        )
    shutil.copy(user_models.__file__, tmp_path / "um.py")
    spec, data = f"{tmp_path / 'um.py'}:RawEmbedding", ["--data", str(rows), "--target", "label"]
    base = ["train", "--model", spec, *data, "--epochs", "20", "--quiet", "--threads", "1"]
    assert main([*base, "--runs-dir", str(tmp_path / "runs"), "--name", "floats"]) == 2  # the float default
    assert "index it with x.long()" in capsys.readouterr().err
    assert main([*base, "--model-inputs", "int"]) == 2  # scaled cells are not whole numbers: one line
    assert "pass --scaler none" in capsys.readouterr().err
    run = [
        "--model-inputs",
        "int",
        "--scaler",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "codes",
    ]
    assert main([*base, *run]) == 0
    assert "cross-validation" not in capsys.readouterr().out  # the folds train devicelab's MLPs, not this
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "runs" / "codes"), "--data", str(rows), "--out", str(out)]) == 0
    from devicelab.training.predict import load_saved

    model = load_saved(tmp_path / "runs" / "codes").model
    with open(out) as f:
        got = [int(r["predicted_label"]) for r in csv.DictReader(f)]
    with torch.no_grad():  # the saved module on the codes as integers; its third output is no class here
        assert got == model(torch.from_numpy(codes))[:, :2].argmax(dim=1).tolist()


@pytest.mark.gpu
def test_a_model_on_the_gpu_and_the_cpu_at_once_or_on_the_gpu_when_the_cpu_is_asked():
    X, y, _, _ = lesson_data("cpu")
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    model[2].to("cuda")
    with pytest.raises(devicelab.UserError, match=r"on 2 devices \(0.weight on cpu, 2.weight on cuda:0\)"):
        devicelab.fit(model, X, y, epochs=2)
    with pytest.raises(devicelab.UserError, match=r"model is on cuda:0 but device='cpu' was asked for"):
        devicelab.fit(model.to("cuda"), X, y, epochs=2, device="cpu")
    result = devicelab.fit(model, X, y, epochs=2)  # auto: where the user put it
    assert result.choice.device.startswith("cuda") and next(model.parameters()).is_cuda


def test_integer_codes_in_a_dataframe_stay_integers_in_arrays_torch_may_write():
    import pandas as pd

    import user_models

    X, y, _, _ = _codes()
    torch.manual_seed(0)
    frame = pd.DataFrame(
        X.astype(np.int64), columns=list("abcd")
    )  # pandas' copy-on-write: to_numpy() is a read-only view
    result = devicelab.fit(user_models.RawEmbedding(), frame, pd.Series(y.numpy()), epochs=2)
    assert result.dataset.x_train.dtype == np.int64 and result.dataset.feature_names == tuple("abcd")
    assert result.dataset.x_train.flags.writeable and result.dataset.x_test.flags.writeable


def test_a_code_beyond_an_embeddings_rows_is_one_line_before_training():
    import user_models

    X, y, X_test, y_test = _codes()
    X_test = X_test.clone()
    X_test[7, 2] = 10  # RawEmbedding has 10 rows: codes 0..9
    with pytest.raises(devicelab.UserError, match=r"rows 0-29 of X_test raised IndexError.* from 0 to 10"):
        devicelab.fit(user_models.RawEmbedding(), X, y, X_test=X_test, y_test=y_test, epochs=2)
    X = X.copy()
    X[0, 0] = 12  # in the probe's own two rows
    with pytest.raises(devicelab.UserError, match=r"IndexError.*num_embeddings - 1: make it larger"):
        devicelab.fit(user_models.RawEmbedding(), X, y, epochs=2)


def test_integer_labels_are_the_class_indices_the_users_loop_gives_cross_entropy():
    """Labels 0, 1, 2, 4 (no 3) into a 6-output model: fit trains on them as they are (4 stays 4, as in the
    user's loop), not re-numbered 0..3; and a model with more scores than classes is said, not refused."""
    from user_models import plain_loop

    torch.manual_seed(0)
    x, y = torch.randn(40, 5), torch.tensor([0, 1, 2, 4] * 10)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6))
    reference = plain_loop(copy.deepcopy(model), x, y, 5)
    with pytest.warns(devicelab.DevicelabWarning, match="gives 6 scores a row and the target has 5 classes"):
        result = devicelab.fit(model, x, y, epochs=5, lr=0.1)
    np.testing.assert_allclose(result.losses[:5], reference, atol=1e-5)
    assert result.dataset.classes == (0, 1, 2, 3, 4)
