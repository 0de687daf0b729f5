"""Unfamiliar user modules (tests/user_models.py): the fx matcher takes the MLPs and only those, with the
right reason for the rest; frozen layers, eval mode and a softmax at the end handled as a plain loop (or a
warning) would have them; a sweep leaves a frozen layer alone. The whole table, through the CLI too:
scripts/fit_robustness.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import devicelab
import user_models
from devicelab.errors import DevicelabWarning
from devicelab.fast.match import MlpMatch, match_mlp
from devicelab.training.user_model import materialize
from seed_lesson import lesson_data

EPOCHS = 30


pytestmark = pytest.mark.usefixtures("one_thread")


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = getattr(user_models, name.split(".")[0])(**user_models.ARGS.get(name, {}))
    return model.eval() if name.endswith(".eval()") else model


def _plain_loop(model: nn.Module, x, y, epochs: int = EPOCHS, lr: float = 0.1) -> list[float]:
    return user_models.plain_loop(model, x, y, epochs, lr)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, (want, _) in user_models.EXPECT.items()
        if want != "refused" and "." not in n and n not in user_models.KERNEL_ONLY
    ],
)
def test_the_matcher_takes_the_mlps_and_says_why_not_for_the_rest(name):
    want, fragment = user_models.EXPECT[name]
    # (a lazy layer is shaped first, as fit's probe shapes it before the matcher looks)
    found = match_mlp(materialize(_build(name), torch.zeros(2, 4)))
    if want == "mlp":
        assert isinstance(found, MlpMatch), found
    else:
        assert isinstance(found, str) and fragment.lower() in found.lower(), found


def test_a_compiled_module_is_said_to_be_compiled():
    found = match_mlp(torch.compile(_build("make_mlp")))  # (compiled lazily: nothing compiles here)
    assert isinstance(found, str) and "torch.compile'd" in found


@pytest.mark.parametrize(
    "name",
    ["Frozen", "ListOfLinears", "Masked", "WithDropout.eval()", "Scaled", "ReturnsTuple", "ReturnsDict"],
)
def test_fit_equals_the_users_plain_loop(name):
    X, y, X_test, y_test = lesson_data("cpu")
    model, reference = _build(name), _build(name)
    frozen_before = copy.deepcopy(model.fc1.weight) if name == "Frozen" else None
    returned = type(model(X[:2]))
    torch.manual_seed(1)  # the same dropout draws in both
    result = devicelab.fit(model, X, y, X_test=X_test, y_test=y_test, epochs=EPOCHS, lr=0.1, threads=1)
    torch.manual_seed(1)
    expected = _plain_loop(reference, X, y)
    np.testing.assert_allclose(result.losses, expected, atol=1e-5)
    assert (result.path == "numba") == (user_models.EXPECT[name][0] == "mlp"), result.path_reason
    if frozen_before is not None:  # the fused kernel would have trained it: the matcher sends it eager
        torch.testing.assert_close(model.fc1.weight, frozen_before, rtol=0, atol=0)
    assert model.training == (not name.endswith(".eval()"))  # handed back in the mode it came in
    assert type(model(X[:2])) is returned  # and returning what it returned (a tuple stays a tuple)


class _NoReturn(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        self.fc(x)


def test_a_softmax_before_cross_entropy_is_warned_and_an_unnamed_dict_refused(tmp_path, monkeypatch, capsys):
    import shutil

    from devicelab.cli import main

    X, y, _, _ = lesson_data("cpu")
    with pytest.warns(DevicelabWarning, match="a softmax at its end"):
        devicelab.fit(_build("Softmaxed"), X, y, epochs=5, threads=1)
    with pytest.raises(devicelab.UserError, match="returns a NoneType, not a tensor"):
        devicelab.fit(_NoReturn(), X, y, epochs=5)  # a forward that forgot its return
    with pytest.raises(devicelab.UserError, match=r"torch.bfloat16, .*pass model.float\(\)"):
        devicelab.fit(_build("float64_mlp").bfloat16(), X, y, epochs=5)
    binary = nn.Linear(4, 1)  # binary cross-entropy on three classes: one line, before training
    with pytest.raises(devicelab.UserError, match=r"two classes, and y has 3 classes"):
        devicelab.fit(binary, X, y, loss=nn.BCEWithLogitsLoss(), epochs=5)
    with pytest.raises(devicelab.UserError, match=r"the loss returns \(2,\), not one number"):
        devicelab.fit(_build("Leaky"), X, y, loss=nn.CrossEntropyLoss(reduction="none"), epochs=5)

    shutil.copy(user_models.__file__, tmp_path / "mine.py")
    monkeypatch.chdir(tmp_path)
    base = ["train", "--epochs", "5", "--quiet", "--threads", "1"]
    assert main([*base, "--model", "mine.py:Softmaxed"]) == 0
    err = capsys.readouterr().err
    assert (
        err.count("devicelab: warning: the model's outputs are probabilities") == 1 and "Traceback" not in err
    )
    assert main([*base, "--model", "mine.py:TwoHeads"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "devicelab: error: the model returns a dict with the keys 'species', 'hidden' and none of them is "
        "'logits', so devicelab cannot tell which is the prediction (return the prediction under the key "
        "'logits', or as the first item of a tuple)"
    ]


def test_a_class_without_a_source_file_and_an_embedding_given_floats(tmp_path):
    """A class from a notebook cell (its module has no file) trains; an embedding indexed with the float32
    rows is one line that says to index it with x.long()."""
    import sys
    import types

    cell = types.ModuleType("notebook_cell")  # as Jupyter's __main__: no __file__
    sys.modules["notebook_cell"] = cell
    try:
        exec(
            "import torch.nn as nn\nclass Cell(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(4, 3)\n    def forward(self, x):\n        return self.fc(x)\n",
            cell.__dict__,
        )
        X, y, _, _ = lesson_data("cpu")
        result = devicelab.fit(cell.Cell(), X, y, epochs=5, threads=1, runs_dir=tmp_path)
        assert result.epochs_done == 5 and not (result.folder / "model_source.py").exists()
    finally:
        del sys.modules["notebook_cell"]
    with pytest.raises(devicelab.UserError, match=r"indices.*index it with x\.long\(\)"):
        devicelab.fit(_build("RawEmbedding"), X * 9, y, epochs=5)


@pytest.mark.parametrize("layout", ["vmap", "vmap in chunks", "one-by-one"])
def test_a_sweep_leaves_a_frozen_layer_alone(layout, monkeypatch):
    from devicelab.sweep import func_models
    from devicelab.sweep.func_models import FuncModels, LoopModels
    from devicelab.training.config import TrainConfig

    if layout == "vmap in chunks":  # each model a chunk of its own, as many rows would make them
        monkeypatch.setattr(func_models, "CHUNK_BYTES", 1)

    X, y, _, _ = lesson_data("cpu")
    models = [_build("Frozen") for _ in range(2)]
    torch.manual_seed(5)
    models[1] = user_models.Frozen()
    references = [copy.deepcopy(m) for m in models]
    cls = LoopModels if layout == "one-by-one" else FuncModels
    config = TrainConfig(epochs=EPOCHS, hidden=(), lr=0.1, device="cpu")
    trained = cls(models, np.full(2, 0.1), config, X, y, "classification", torch.Generator(), EPOCHS)
    trained.run(0, EPOCHS)
    if layout != "one-by-one":
        assert len(trained.chunks) == (2 if layout == "vmap in chunks" else 1)
    names = [n for n, _ in models[0].named_parameters()]
    for i, reference in enumerate(references):
        _plain_loop(reference, X, y)
        for name, stacked in zip(names, trained.params(), strict=True):
            torch.testing.assert_close(stacked[i], reference.get_parameter(name), atol=1e-5, rtol=1e-5)
