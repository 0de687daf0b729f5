"""The profiler on more kinds of ordinary training scripts, each defect found on such a script kept here:
a script shorter than warm-up + three windows (every table, each on fewer steps), a model saved or
copied while its in-place ReLU runs out of place, ``--`` before the script, a model written as tensor
math (said, and the training equal to a plain run), and a ``torch.compile``d module (the watcher's
hooks stay out of its graph), and training through ``torch.func.grad``. In this process: ``api.profile_program``, ``Watch``, ``cli.main``."""

from __future__ import annotations

import copy
import io
import pickle
import runpy
import sys
import textwrap

import pytest
import torch
from torch import nn

from devicelab import cli
from devicelab.profile import api, record, script
from devicelab.profile.watch import ROUND, Watch

MLP_LOOP = """
import sys
import torch
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
print("argv", sys.argv)
for _ in range({steps}):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
"""

TENSOR_MATH = """
import sys
import torch

torch.manual_seed(3)
x, y = torch.randn(40, 3), torch.randn(40, 1)
w1 = torch.randn(3, 8, requires_grad=True)
w2 = torch.randn(8, 1, requires_grad=True)
opt = torch.optim.Adam([w1, w2], lr=0.01)
for _ in range(60):
    keep = torch.rand(40) > 0.2  # random rows each step: the profiler must not move the generator
    pred = torch.tanh(x[keep] @ w1) @ w2
    loss = ((pred - y[keep]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
torch.save(torch.cat([w1.detach().flatten(), w2.detach().flatten(), loss.detach().reshape(1)]), sys.argv[1])
"""


FUNC_GRAD = """
import sys
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
params = {k: v.detach() for k, v in net.named_parameters()}
x, y = torch.randn(32, 3), torch.randn(32, 1)


def loss_fn(p, x, y):
    return ((functional_call(net, p, (x,)) - y) ** 2).mean()


for _ in range(30):
    grads = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x[:, None], y[:, None])  # per sample
    params = {k: params[k] - 0.05 * grads[k].mean(0) for k in params}
torch.save(params, sys.argv[1])
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    torch.set_num_threads(1)

    def write(name: str, source: str):
        (tmp_path / name).write_text(textwrap.dedent(source))
        return tmp_path / name

    return write


def test_a_script_shorter_than_three_windows_has_every_table(here, capsys):
    """77 steps, ``--steps 40``: windows one after the other needed 2 + 80 + 40 steps, so the layer table
    was never measured ("the program ended first"); in rounds of 25 the phases and the layers both are."""
    assert ROUND == 25
    here("short.py", MLP_LOOP.format(steps=77))
    report, outcome = api.profile_program(
        script.check("script", "short.py"), warmup=2, steps=40, stop_after=False
    )
    assert outcome.exit_code == 0 and capsys.readouterr().out.startswith("argv ['short.py']")
    assert report.measured == ("baseline", "phases", "layers")
    assert report.breakdown.steps == 25 and report.layers.steps == 25  # round one of each, whole
    assert [row.name.rsplit(".", 1)[-1] for row in report.layers.layers] == [
        "0",
        "1",
        "2",
    ]  # Sequential.0 or 0
    assert report.round_steps == 25 and report.to_dict()["round_steps"] == 25
    assert "in rounds of 25 (phases, layers, phases, ...)" in str(report)


def test_rounds_add_up_to_the_steps_asked_for():
    """A long loop: phases, layers, phases, layers, each window ends with exactly ``steps`` steps (the
    second round adds to the first), as one window of ``steps`` did."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    windows = []
    with Watch(warmup=1, steps=30) as w:
        for _ in range(1 + 2 * 30 + 30 + 40):
            if not windows or windows[-1] != w.window:
                windows.append(w.window)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert windows == ["warmup", "phases", "layers", "phases", "layers", "done"]
    assert w.meter.step == 30 and len(w.baseline) >= 30 and w.tape.steps == 30
    assert model[1].inplace is True  # run out of place in the layer window, put back after each round
    report = api.build(w, record.Profiled(kind="code", target="test"))
    assert report.breakdown.steps == 30 and report.layers.steps == 30


def test_a_model_saved_or_copied_in_the_layer_window_keeps_its_inplace_relu():
    """The layer window runs ``ReLU(inplace=True)`` out of place; ``torch.save(model)`` or
    ``copy.deepcopy(model)`` made meanwhile (a checkpoint, the best model so far) saved ``inplace=False``."""
    original = vars(nn.Module)["__getstate__"]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    seen = []
    with Watch(warmup=1, steps=2) as w:
        for _ in range(8):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if w.window == "layers" and model[1].inplace is False:
                buffer = io.BytesIO()
                torch.save(model, buffer)
                buffer.seek(0)
                saved = torch.load(buffer, weights_only=False)
                seen.append(
                    (
                        saved[1].inplace,
                        copy.deepcopy(model)[1].inplace,
                        pickle.loads(pickle.dumps(model))[1].inplace,
                    )
                )
    assert seen and all(flags == (True, True, True) for flags in seen)
    assert model[1].inplace is True and vars(nn.Module)["__getstate__"] is original


def test_a_double_dash_ends_devicelabs_options(here, capsys):
    """``devicelab profile [OPTIONS] -- train.py ARGS``: the ``--`` was taken for the script's name."""
    here("dash.py", MLP_LOOP.format(steps=6))
    assert cli.main(["profile", "--warmup", "1", "--steps", "2", "--", "dash.py", "--lr", "1"]) == 0
    assert "argv ['dash.py', '--lr', '1']" in capsys.readouterr().out
    assert cli.main(["profile", "--steps", "2", "--"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("devicelab: error: -- is not followed by a script")


def test_a_model_in_tensor_math_is_said_and_trains_as_without_the_profiler(here, capsys):
    """No module: the phases put the model's forward in "loss", and the layer table is empty; the note
    says so. The training (random rows each step) ends with the same weights and loss as a plain run."""
    run_plain(here("tensors.py", TENSOR_MATH), "plain.pt")
    program = script.check("script", "tensors.py", ("watched.pt",))
    report, outcome = api.profile_program(program, warmup=2, steps=8, stop_after=False)
    assert outcome.exit_code == 0 and report.layers is None
    assert report.breakdown.steps == 8 and record.NO_MODULE in report.notes
    assert torch.equal(torch.load("plain.pt"), torch.load("watched.pt"))


def test_a_compiled_module_is_one_block_and_the_hooks_stay_out_of_its_graph():
    """The reference: the same compiled module trained without the watcher (no graph break). Watched,
    the hooks were traced into its graph (3 graph breaks at the watcher's thread check) and its layers'
    calls made it compile again at each change of the hooks; now no graph break, one more compile at
    most (the hooks that look for the first step come off), and one row for the compiled module."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    compiled = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    with Watch(warmup=2, steps=3) as w:
        for _ in range(2 + 6 + 3 + 2):
            loss = nn.functional.cross_entropy(compiled(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    report = api.build(w, record.Profiled(kind="code", target="test"))
    try:
        assert sum(counters["graph_break"].values()) == 0
        assert counters["stats"]["unique_graphs"] <= 2
        (kind,) = [row.type for row in report.layers.layers]
        assert kind == "OptimizedModule" and report.breakdown.steps == 3
        assert any("torch.compile'd" in note for note in report.notes)
    finally:
        torch._dynamo.reset()


def run_plain(path, *args: str) -> None:
    saved_argv = sys.argv
    try:
        sys.argv = [str(path), *args]
        runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved_argv


def test_training_through_torch_func_grad_runs_and_trains_as_without_the_profiler(here):
    """Per-sample gradients, ``vmap(grad(loss_fn))`` over ``functional_call``: the layer window's global
    backward hooks wrapped each module's output in an autograd.Function that functorch refuses, and the
    script raised RuntimeError ("must override the setup_context staticmethod"); then the hook-cost probe's
    ``backward()`` ran inside the transform, and activation statistics kept from inside ``vmap`` failed to
    read afterwards (an internal assert, in devicelab's own traceback). Now no backward hooks, probes or
    statistics inside a transform (the layers' forward only), and the same weights as a plain run."""
    path = here("func_grad.py", FUNC_GRAD)
    run_plain(path, "plain.pt")
    program = script.check("script", "func_grad.py", ("watched.pt",))
    report, outcome = api.profile_program(program, warmup=2, steps=4, stop_after=False)
    assert outcome.exit_code == 0 and outcome.error is None
    assert report.profiled.step_source == "backward" and report.layers.steps == 4
    assert [(row.type, row.backward_s) for row in report.layers.layers] == [
        ("Linear", None),
        ("Tanh", None),
        ("Linear", None),
    ]
    plain, watched = torch.load("plain.pt"), torch.load("watched.pt")
    assert all(torch.equal(plain[k], watched[k]) for k in plain)
