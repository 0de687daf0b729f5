"""The backward of a layer whose inputs need no gradient (the first one, on the batch) ends at its
parameters' last gradient accumulation, not when ``backward()`` returns: the autograd work that comes
after it (other branches, the program's gradient hooks) lands between the layers, never in the layer, and
no row of the table is negative."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import profile

import devicelab
from devicelab.report.profile import format_layers

SLEEP_S = 0.02


class Penalised(nn.Module):
    """``fc1`` on the batch, and a penalty on a big parameter of the model's own computed first: its
    backward (two 384x384 matmuls) runs after ``fc1``'s, inside ``backward()``, in no layer."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Parameter(torch.randn(384, 384) / 20)
        self.fc1, self.relu, self.fc2 = nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)

    def forward(self, x):
        penalty = (self.big @ self.big).square().mean()
        return self.fc2(self.relu(self.fc1(x))) + 1e-3 * penalty


def _training(model: nn.Module):
    torch.manual_seed(0)
    x, y = torch.randn(64, 16), torch.randint(0, 4, (64,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    return step


def _profiler_backward(model: Penalised, step, steps: int) -> float:
    """torch.profiler: the backward operators of ``fc1``'s autograd nodes (by ``sequence_nr`` of the
    operators in its forward range), seconds per step, median step."""
    opened = []
    handles = [
        model.fc1.register_forward_pre_hook(lambda m, a: opened.append(record_function("fc1").__enter__())),
        model.fc1.register_forward_hook(lambda m, a, o: opened.pop().__exit__(None, None, None)),
    ]
    with profile() as prof:
        for i in range(steps):
            with record_function(f"step::{i}"):
                step()
    for handle in handles:
        handle.remove()

    def ancestors(event):
        while event.cpu_parent is not None:
            event = event.cpu_parent
            yield event.name

    events = prof.events()
    nodes = {e.sequence_nr for e in events if e.sequence_nr >= 0 and "fc1" in ancestors(e)}
    per_step = [0.0] * steps
    for e in events:
        if e.name.startswith("autograd::engine::evaluate_function") and e.sequence_nr in nodes:
            name = next(n for n in ancestors(e) if n.startswith("step::"))
            per_step[int(name.removeprefix("step::"))] += e.cpu_time_total / 1e6
    return statistics.median(per_step)


def _layers(step, steps: int):
    with devicelab.watch(warmup=1, steps=steps) as w:
        for _ in range(1 + 3 * steps + 2):
            step()
    return w.report().layers


def _rows(layers) -> dict[str, float]:
    return {r.name: r.backward_s * r.calls for r in layers.layers}


def test_the_first_layer_backward_ends_at_its_last_gradient_not_at_the_end_of_backward():
    torch.set_num_threads(1)
    model = Penalised()
    step = _training(model)
    reference = _profiler_backward(model, step, 10)
    layers = _layers(step, 10)
    rows = _rows(layers)
    between = layers.total.backward_s - sum(rows.values())
    # the penalty's matmuls (hundreds of µs) are in no layer: they are the rest, not fc1's
    assert rows["fc1"] < 4 * reference + 100e-6, (rows, reference)
    assert between > rows["fc1"], (rows, between)
    assert min(rows.values()) >= 0


def test_a_gradient_hook_of_the_program_lands_between_the_layers_and_no_row_is_negative():
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    step = _training(model)
    calls = []

    def slow_hook(grad):  # the program's own work on a gradient (DDP's all-reduce, a clipping hook)
        calls.append(1)
        time.sleep(SLEEP_S)
        return grad

    model[0].weight.register_hook(slow_hook)
    layers = _layers(step, 4)
    assert calls  # the program's hook still ran, through the watcher's wrapper
    rows = _rows(layers)
    assert rows["Sequential.0"] < SLEEP_S / 4, rows  # the sleep is not the layer's
    assert layers.total.backward_s >= SLEEP_S  # but the step's
    screen = format_layers(layers)
    between = next(line for line in screen.splitlines() if "(between layers)" in line)
    assert float(between.split()[4].replace(",", "")) >= 0.8 * SLEEP_S * 1e6, screen
    assert "-" not in between, screen
    assert min(rows.values()) >= 0
    # the watcher's wrapper is gone with its window: the program's hook is its own function again
    assert list(model[0].weight._backward_hooks.values()) == [slow_hook]
