"""devicelab sweep --model: the user's module with many seeds, together under torch.func or one by one,
each model's losses equal to its own plain loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from devicelab.data import load_dataset
from devicelab.sweep import Grid
from devicelab.sweep.run import run_sweep
from devicelab.training.config import TrainConfig
from devicelab.training.user_model import record

MODULES = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=6):
        super().__init__()
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class LazyPair(nn.Module):  # a lazy first layer (shaped by the first forward), returns (logits, hidden)
    def __init__(self):
        super().__init__()
        self.fc1 = nn.LazyLinear(6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return self.fc2(h), h


class Spare(Net):  # a layer the forward never uses: no gradient, left as it is (as torch.optim leaves it)
    def __init__(self):
        super().__init__()
        self.spare = nn.Linear(6, 6)


class Reads(Net):  # reads a value to the host in its forward: vmap cannot batch it
    def forward(self, x):
        scale = 1.0 if float(self.fc1.weight.detach().abs().max()) >= 0 else 2.0
        return self.fc2(torch.tanh(self.fc1(x))) * scale
"""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("name", "layout"), [("Net", "vmap"), ("Reads", "one-by-one"), ("LazyPair", "vmap"), ("Spare", "vmap")]
)
def test_each_seed_trains_as_its_own_plain_loop(tmp_path, name, layout):
    (tmp_path / "net.py").write_text(MODULES)
    source = record(f"{tmp_path / 'net.py'}:{name}", {})
    config = TrainConfig(epochs=40, log_every=20, hidden=(), optimizer="adam", lr=0.01, device="cpu")
    config = dataclasses.replace(config, extra={"model": source})
    seeds = (0, 1, 2)
    result = run_sweep(config, Grid(lrs=(0.01,), seeds=seeds, hiddens=((),)), dataset=load_dataset(config))
    assert result.layout == layout, result.layout_reason
    if layout == "one-by-one":
        assert "torch.func cannot vmap" in result.layout_reason

    dataset = load_dataset(config)
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    from devicelab.sweep.func_models import seeded_user_model

    for i, seed in enumerate(seeds):
        model = seeded_user_model(source, seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        expected = []
        for _ in range(40):
            out = model(x)
            loss = nn.functional.cross_entropy(out[0] if isinstance(out, tuple) else out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            expected.append(loss.item())
        np.testing.assert_allclose(result.groups[0].losses[i], expected, atol=1e-5)
    best = result.best_run()  # the best model as a run, rebuilt from the module's source
    assert type(best.model).__name__ == name
