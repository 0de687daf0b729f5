"""The layer table against hand computations, and the hooks it rests on (always removed)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from devicelab.data import load_dataset
from devicelab.profile import hooks
from devicelab.profile.clocks import PerfClock
from devicelab.profile.layers import profile_layers
from devicelab.training.config import TrainConfig
from devicelab.training.setup import build_model, make_loss


def _no_hooks_left(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks, name
        assert not module._forward_pre_hooks, name
        assert not module._backward_hooks, name
        assert not module._backward_pre_hooks, name
        assert module._is_full_backward_hook is None, name


@pytest.fixture(scope="module")
def seed():
    config = TrainConfig()
    dataset = load_dataset(config)
    model = build_model(config, dataset)
    x, y, _, _ = dataset.tensors("cpu")
    return model, make_loss(dataset.task), x, y


def test_seed_mlp_layer_table_matches_hand_computation(seed):
    model, loss_fn, x, y = seed
    profile = profile_layers(model, x, loss=lambda out: loss_fn(out, y), steps=3)
    batch = x.shape[0]
    assert batch == 120
    rows = {layer.name: layer for layer in profile.layers}
    assert list(rows) == ["fc1", "relu", "fc2"]  # the container is the total, not a row
    assert [rows[n].type for n in rows] == ["Linear", "ReLU", "Linear"]
    assert rows["fc1"].output_shape == (120, 10)
    assert rows["relu"].output_shape == (120, 10)
    assert rows["fc2"].output_shape == (120, 3)
    # parameters: weight + bias
    assert rows["fc1"].params == 4 * 10 + 10 == 50
    assert rows["relu"].params == 0
    assert rows["fc2"].params == 10 * 3 + 3 == 33
    # MACs of a Linear layer: one per (row, output, input)
    assert rows["fc1"].macs == batch * 4 * 10
    assert rows["relu"].macs == 0
    assert rows["fc2"].macs == batch * 10 * 3
    assert profile.total.name == "(total)" and profile.total.type == "MLP"
    assert profile.total.params == 83 == sum(p.numel() for p in model.parameters())
    assert profile.total.macs == batch * (4 * 10 + 10 * 3)
    assert profile.total.output_shape == (120, 3)
    for layer in (*profile.layers, profile.total):
        assert layer.calls == 1
        assert layer.forward_s is not None and layer.forward_s > 0
        assert layer.backward_s is not None and layer.backward_s > 0
    assert profile.clock == "perf_counter"
    _no_hooks_left(model)


def test_activation_statistics_match_a_plain_forward(seed):
    model, _, x, _ = seed
    profile = profile_layers(model, x, steps=1, backward=False)
    rows = {layer.name: layer for layer in profile.layers}
    with torch.no_grad():
        hidden = model.fc1(x)
        active = model.relu(hidden)
        out = model.fc2(active)
    for name, reference in (("fc1", hidden), ("relu", active), ("fc2", out)):
        stats = rows[name].stats
        assert stats.mean == pytest.approx(reference.mean().item(), rel=1e-5, abs=1e-7)
        assert stats.std == pytest.approx(reference.std(correction=0).item(), rel=1e-5)
        assert stats.zero_fraction == pytest.approx((reference == 0).float().mean().item())
        assert stats.dead_fraction == pytest.approx((reference == 0).all(dim=0).float().mean().item())
        assert stats.nonfinite_fraction == 0
    assert rows["relu"].stats.zero_fraction > 0  # ReLU zeroes the negative half


def test_activation_stats_of_a_known_tensor():
    x = torch.tensor([[0.0, 1.0, math.nan], [0.0, 3.0, math.inf]])
    mean, std, zeros, dead, nonfinite = hooks.activation_stats(x).tolist()
    finite = torch.tensor([0.0, 1.0, 0.0, 3.0])
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(finite.std(correction=0).item())
    assert zeros == pytest.approx(2 / 6)
    assert dead == pytest.approx(1 / 3)  # column 0 is zero in every row
    assert nonfinite == pytest.approx(2 / 6)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.relu(self.conv(x)))))


def test_small_cnn_shapes_parameters_and_macs():
    torch.manual_seed(0)
    model = SmallCNN()
    n, c_in, h, w, c_out, k = 2, 3, 16, 16, 8, 3
    x = torch.randn(n, c_in, h, w)
    profile = profile_layers(model, x, steps=2)
    rows = {layer.name: layer for layer in profile.layers}
    assert list(rows) == ["conv", "relu", "pool", "flat", "fc"]
    assert rows["conv"].output_shape == (n, c_out, h, w)  # padding 1 keeps 16x16
    assert rows["pool"].output_shape == (n, c_out, h // 2, w // 2)
    assert rows["flat"].output_shape == (n, c_out * (h // 2) * (w // 2))
    assert rows["fc"].output_shape == (n, 10)
    assert rows["conv"].params == c_out * c_in * k * k + c_out
    assert rows["fc"].params == 512 * 10 + 10
    # conv: every output element is a dot product over c_in * k * k inputs
    assert rows["conv"].macs == n * c_out * h * w * c_in * k * k
    assert rows["relu"].macs == rows["pool"].macs == rows["flat"].macs == 0
    assert rows["fc"].macs == n * 512 * 10
    assert profile.total.macs == n * c_out * h * w * c_in * k * k + n * 512 * 10
    _no_hooks_left(model)


def test_grouped_conv1d_macs():
    conv = nn.Conv1d(4, 6, kernel_size=5, groups=2)
    model = nn.Sequential(conv, nn.Tanh())
    profile = profile_layers(model, torch.randn(2, 4, 20), steps=1)
    row = profile.layers[0]
    length_out = 20 - 5 + 1
    assert row.output_shape == (2, 6, length_out)
    assert row.macs == 2 * 6 * length_out * (4 // 2) * 5
    assert profile.layers[1].macs == 0


def test_single_layer_model_is_its_own_row():
    model = nn.Linear(3, 2)
    profile = profile_layers(model, torch.randn(5, 3), steps=2)
    assert len(profile.layers) == 1 and profile.layers[0] is profile.total
    assert profile.total.macs == 5 * 3 * 2 and profile.total.params == 8


class Boom(nn.Module):
    """Raises on its ``fail_at``-th call (counting from 1)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom inside the model")
        return x


@pytest.mark.parametrize("fail_at", [1, 2, 4], ids=["inspect-pass", "forward-pass", "backward-pass"])
def test_hooks_removed_after_an_exception_inside_the_model(fail_at):
    # warmup=0, steps=2: call 1 is the inspect pass, calls 2-3 the forward pass, 4-5 the backward pass
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), Boom(fail_at), nn.Linear(4, 2))
    grad_before = torch.ones(4, 4)
    model[0].weight.grad = grad_before
    with pytest.raises(RuntimeError, match="boom inside the model"):
        profile_layers(model, torch.randn(3, 4), steps=2, warmup=0)
    assert model[2].calls == fail_at
    _no_hooks_left(model)
    assert model[1].inplace is True  # put back after the backward pass
    assert model[0].weight.grad is grad_before  # gradients put back as they were


def test_hooks_removed_after_a_normal_run_and_inplace_relu_profiled():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    profile = profile_layers(model, torch.randn(6, 4), steps=2)
    assert all(layer.backward_s is not None for layer in profile.layers)
    _no_hooks_left(model)
    assert model[1].inplace is True
    assert all(p.grad is None for p in model.parameters())  # as before the run


def test_forward_bypasses_hooks_while_call_runs_them():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = torch.randn(2, 4)
    with hooks.attach(model, clock=PerfClock(), forward=True) as tapes:
        model(x)
        assert len(tapes[""].forward) == 1 and len(tapes["0"].forward) == 1
        model.forward(x)  # skips the model's own hooks; Sequential.forward still calls each layer(x)
        assert len(tapes[""].forward) == 1
        assert len(tapes["0"].forward) == 2
        model[0].forward(x)  # a layer's forward called directly: no hook at all
        assert len(tapes["0"].forward) == 2
        model[0](x)
        assert len(tapes["0"].forward) == 3
    _no_hooks_left(model)


def test_shared_module_counts_each_call():
    shared = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = shared

        def forward(self, x):
            return self.block(self.block(x))

    profile = profile_layers(Twice(), torch.randn(3, 4), steps=3)
    (row,) = profile.layers
    assert row.calls == 2
    assert row.macs == 3 * 4 * 4  # per call
    assert profile.total.macs == 2 * 3 * 4 * 4
