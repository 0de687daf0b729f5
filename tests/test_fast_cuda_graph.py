"""The CUDA-graph runner (devicelab.fast.cuda_graph) against devicelab's eager step.

On the CPU the runner's arithmetic runs uncaptured (``run_uncaptured``: the very ops a graph would hold,
with the epoch index and Adam's step as device tensors) and must give eager's loss history, weights and
optimizer state. The ``gpu`` tests capture it for real and run only where CUDA is.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from devicelab.data import load_dataset
from devicelab.fast.cuda_graph import (
    GraphRunner,
    build_runner,
    capture_cuda_graph,
    capture_pays,
    cuda_graph_runner,
    graph_plan,
    run_uncaptured,
)
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

pytestmark = pytest.mark.usefixtures("one_thread")  # as bench logging and devicelab run tiny ops

CPU = torch.device("cpu")

# (id, dataset, config fields): SGD, momentum, Adam/AdamW; full batch and mini-batch (ragged last batch:
# 120 iris rows in 32s, the diabetes training rows in 128s); classification (iris) and regression (diabetes)
CASES = [
    ("sgd-full", "iris", {}),
    ("sgd-full-regression", "diabetes", {}),
    ("momentum-wd-full", "iris", {"momentum": 0.9, "weight_decay": 1e-3}),
    ("adam-full", "iris", {"optimizer": "adam", "lr": 0.005}),
    ("adamw-full-regression", "diabetes", {"optimizer": "adamw", "lr": 0.005, "weight_decay": 0.01}),
    ("sgd-minibatch", "iris", {"batch_size": 32}),
    ("momentum-minibatch-regression", "diabetes", {"batch_size": 128, "momentum": 0.9}),
    ("adam-minibatch", "iris", {"batch_size": 32, "optimizer": "adam", "lr": 0.005}),
    ("adam-minibatch-regression", "diabetes", {"batch_size": 128, "optimizer": "adam"}),
]
IDS = [case[0] for case in CASES]
# on CUDA a subset (each eager run there takes seconds): every optimizer, both tasks, both batchings
ON_CUDA = "sgd-full momentum-wd-full adam-full adamw-full-regression sgd-minibatch adam-minibatch-regression"
CUDA_CASES = [case for case in CASES if case[0] in ON_CUDA.split()]


@pytest.fixture(scope="module")
def datasets():
    return {name: load_dataset(TrainConfig(dataset=name)) for name in ("iris", "diabetes")}


def eager_run(config: TrainConfig, dataset, device: torch.device, epochs: int | None = None):
    work = build_workload(config, dataset, device)
    for i in range(config.epochs if epochs is None else epochs):
        work.run_epoch(i)
    return work


def train_like_the_loop(runner, config: TrainConfig, start: int = 0) -> None:
    """Epochs ``start..config.epochs`` between log points, the weights and state written back at each."""
    epoch = start
    while epoch < config.epochs:
        stop = min((epoch // config.log_every + 1) * config.log_every, config.epochs)
        epoch = runner.run(epoch, stop, lambda: False)
        runner.sync_module()


def uncaptured(config: TrainConfig, dataset, **kwargs):
    work = build_workload(config, dataset, CPU)
    plan, why = graph_plan(work, config)
    assert plan is not None, why
    runner = GraphRunner(work, config, plan, run_uncaptured, **kwargs)
    runner.setup()
    return work, runner


def assert_same_state(fast, eager, atol: float = 1e-6) -> None:
    """Weights, and the optimizer state in torch's own format (keys, step counts, buffers)."""
    for (name, a), b in zip(fast.model.state_dict().items(), eager.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=name)
    if eager.optimizer is None:
        assert fast.optimizer is None
        return
    got, want = fast.optimizer.state_dict(), eager.optimizer.state_dict()
    assert got["param_groups"] == want["param_groups"]
    assert got["state"].keys() == want["state"].keys()
    for index, state in want["state"].items():
        assert got["state"][index].keys() == state.keys(), index
        for key, value in state.items():
            mine = got["state"][index][key]
            assert mine.device == value.device and mine.dtype == value.dtype, (index, key)
            torch.testing.assert_close(mine, value, rtol=0, atol=atol, msg=f"{index} {key}")


@pytest.mark.parametrize(("name", "dataset", "extra"), CASES, ids=IDS)
def test_uncaptured_step_equals_eager_over_2000_epochs(name, dataset, extra, datasets):
    config = TrainConfig(dataset=dataset, epochs=2000, device="cpu", **extra)
    eager = eager_run(config, datasets[dataset], CPU)
    work, runner = uncaptured(config, datasets[dataset])
    train_like_the_loop(runner, config)
    np.testing.assert_allclose(work.losses.numpy(), eager.losses.numpy(), rtol=0, atol=1e-5)
    assert_same_state(work, eager)
    assert runner.steps == 2000 * runner.plan.steps_per_epoch
    # the shuffle drew what the eager epochs drew: the next draw is the same
    assert torch.equal(work.generator.get_state(), eager.generator.get_state())


def test_cuda_adam_arithmetic_on_the_cpu_is_torchs_foreach_adam(datasets):
    """The CUDA path's Adam (torch's foreach formulas, its last fma done in float64) run on the CPU,
    where torch's own rounding differs a little (it computes ``p + (s * m) / d``): equal to 1e-5."""
    config = TrainConfig(epochs=2000, device="cpu", optimizer="adam", lr=0.005)
    eager = eager_run(config, datasets["iris"], CPU)
    work, runner = uncaptured(config, datasets["iris"], foreach=True)
    train_like_the_loop(runner, config)
    np.testing.assert_allclose(work.losses.numpy(), eager.losses.numpy(), rtol=0, atol=1e-5)
    assert_same_state(work, eager, atol=1e-4)


@pytest.mark.parametrize(
    "extra",
    [{"momentum": 0.9}, {"batch_size": 32, "optimizer": "adam", "lr": 0.005}],
    ids=["momentum", "adam-minibatch"],
)
def test_load_module_continues_a_run_as_eager_does(extra, datasets):
    """Resume: weights, optimizer state and shuffle state from 300 eager epochs, then the runner."""
    config = TrainConfig(epochs=600, device="cpu", **extra)
    whole = eager_run(config, datasets["iris"], CPU)
    first = eager_run(config, datasets["iris"], CPU, epochs=300)
    work = build_workload(config, datasets["iris"], CPU)
    work.model.load_state_dict(first.model.state_dict())
    work.optimizer.load_state_dict(first.optimizer.state_dict())
    work.generator.set_state(first.generator.get_state())
    plan, _ = graph_plan(work, config)
    runner = GraphRunner(work, config, plan, run_uncaptured)
    runner.setup()
    train_like_the_loop(runner, config, start=300)
    np.testing.assert_allclose(work.losses[300:].numpy(), whole.losses[300:].numpy(), rtol=0, atol=1e-5)
    assert_same_state(work, whole)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_new_learning_rate_read_by_load_module_is_captured_again(optimizer, datasets):
    config = TrainConfig(
        epochs=200, device="cpu", optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0
    )
    eager = build_workload(config, datasets["iris"], CPU)
    work, runner = uncaptured(config, datasets["iris"])
    for i in range(100):
        eager.run_epoch(i)
    assert runner.run(0, 100, lambda: False) == 100
    runner.sync_module()
    for w in (eager, work):
        w.optimizer.param_groups[0]["lr"] = 0.02
    runner.load_module()
    assert runner.plan.lr == 0.02 and not runner.graphs
    for i in range(100, 200):
        eager.run_epoch(i)
    assert runner.run(100, 200, lambda: False) == 200
    runner.sync_module()
    np.testing.assert_allclose(work.losses.numpy(), eager.losses.numpy(), rtol=0, atol=1e-6)
    assert_same_state(work, eager)


def test_run_stops_between_replays_and_returns_the_epoch_reached(datasets):
    config = TrainConfig(epochs=100, device="cpu")
    eager = eager_run(config, datasets["iris"], CPU, epochs=20)
    work, runner = uncaptured(config, datasets["iris"])
    k = runner.plan.epochs_per_graph
    assert k == 20  # full batch, a divisor of log_every=100
    assert runner.run(0, 100, lambda: True) == k
    np.testing.assert_allclose(work.losses[:k].numpy(), eager.losses[:k].numpy(), rtol=0, atol=1e-6)
    assert (work.losses[k:] == 0).all()
    # a stop that is not a multiple of K: the rest runs one epoch a replay
    assert runner.run(k, k + 7, lambda: False) == k + 7
    assert (work.losses[: k + 7] != 0).all() and (work.losses[k + 7 :] == 0).all()


def test_a_failing_capture_falls_back_in_one_line_and_leaves_the_workload_as_it_was(datasets):
    def broken(fn, pool, stream):
        raise RuntimeError("operation not permitted when stream is capturing\nsecond line")

    config = TrainConfig(epochs=100, device="cpu", optimizer="adam", batch_size=32)
    work = build_workload(config, datasets["iris"], CPU)
    weights = {k: v.clone() for k, v in work.model.state_dict().items()}
    shuffle = work.generator.get_state()
    plan, _ = graph_plan(work, config)
    runner, why = build_runner(work, config, plan, broken)
    assert runner is None
    assert why == (
        "CUDA graph capture failed (RuntimeError: operation not permitted when stream is capturing); "
        "training on eager"
    )
    for key, value in work.model.state_dict().items():  # the warm-up's updates were put back
        assert torch.equal(value, weights[key]), key
    assert not work.optimizer.state and (work.losses == 0).all()
    assert torch.equal(work.generator.get_state(), shuffle)


def test_what_cannot_be_captured_says_why(datasets):
    iris = datasets["iris"]
    config = TrainConfig(epochs=10, device="cpu")
    runner, why = cuda_graph_runner(build_workload(config, iris, CPU), config)
    assert runner is None and why == "CUDA graphs need a CUDA device, not cpu"

    dropout = TrainConfig(epochs=10, device="cpu", dropout=0.2)
    plan, why = graph_plan(build_workload(dropout, iris, CPU), dropout)
    assert plan is None and "dropout" in why

    work = build_workload(config, iris, CPU)
    other = dataclasses.replace(work, model=nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 3)))
    plan, why = graph_plan(other, config)
    assert plan is None and "Sigmoid is not a layer" in why

    work.model.fc1.register_forward_hook(lambda *args: None)
    plan, why = graph_plan(work, config)
    assert plan is None and "hooks" in why

    rows = TrainConfig(dataset="diabetes", epochs=10, device="cpu", batch_size=1)
    diabetes = datasets["diabetes"]
    plan, why = graph_plan(build_workload(rows, diabetes, CPU), rows)
    assert plan is None and why.startswith(f"{len(diabetes.x_train)} mini-batches an epoch are too many")


def test_mini_batch_epochs_are_unrolled_within_the_step_budget(datasets):
    config = TrainConfig(epochs=100, device="cpu", batch_size=16, log_every=50)
    plan, _ = graph_plan(build_workload(config, datasets["iris"], CPU), config)
    assert plan.steps_per_epoch == 8 and plan.epochs_per_graph == 5  # 8 × 5 ≤ 64 steps, 5 divides 50
    short = TrainConfig(epochs=3, device="cpu")  # never more epochs a graph than the loss buffer holds
    plan, _ = graph_plan(build_workload(short, datasets["iris"], CPU), short)
    assert plan.epochs_per_graph <= 3
    for log_every, k in ((100, 20), (50, 10), (30, 15), (7, 7), (23, 20)):
        every = TrainConfig(epochs=1000, device="cpu", log_every=log_every)
        plan, _ = graph_plan(build_workload(every, datasets["iris"], CPU), every)
        assert plan.epochs_per_graph == k, log_every


def test_capture_pays_for_small_steps_not_for_compute_bound_ones():
    seed_step = 6.0 * 120 * (4 * 10 + 10 * 3)
    assert capture_pays(seed_step, n_layers=2, sms=132)
    big = 6.0 * 4096 * (4 * 1024 + 1024 * 1024 + 1024 * 3)  # the no-regression shape: 26 GFLOP
    assert capture_pays(big, n_layers=3, sms=132)  # ~0.5 ms of arithmetic, launches still ~10%
    huge = 6.0 * 8192 * (4 * 4096 + 4096 * 4096 + 4096 * 3)  # 0.8 TFLOP a step: launches ≪ 2%
    assert not capture_pays(huge, n_layers=3, sms=132)


def _uncaptured_fast_runner(work, config):
    plan, why = graph_plan(work, config)
    return build_runner(work, config, plan, run_uncaptured) if plan else (None, why)


@pytest.fixture
def graph_runner_on_the_cpu(monkeypatch):
    """devicelab.train with this runner (uncaptured) as the CPU's fast path: the loop as it runs it."""
    from devicelab.training import runner

    monkeypatch.setattr(runner, "_fast_runner", _uncaptured_fast_runner)


def _without_clock(rows):
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]


@pytest.mark.parametrize(
    "extra",
    [{"optimizer": "adam", "lr": 0.005, "batch_size": 32}, {"dataset": "diabetes", "momentum": 0.9}],
    ids=["adam-minibatch", "momentum-regression"],
)
def test_train_with_the_runner_logs_and_saves_what_eager_does(extra, graph_runner_on_the_cpu):
    from devicelab import train

    common = {"epochs": 300, "log_every": 50, "device": "cpu", "threads": 1, "quiet": True, **extra}
    fast = train(TrainConfig(fast="on", **common))
    eager = train(TrainConfig(fast="off", **common))
    assert (fast.path, eager.path) == ("cuda-graph", "eager")
    assert fast.status == eager.status == "completed"
    np.testing.assert_allclose(fast.losses, eager.losses, rtol=0, atol=1e-6)
    assert _without_clock(fast.metrics) == _without_clock(eager.metrics)
    assert fast.host_syncs == eager.host_syncs == 300 // 50
    for key, value in eager.optimizer_state["state"].items():
        for name, tensor in value.items():
            torch.testing.assert_close(fast.optimizer_state["state"][key][name], tensor, rtol=0, atol=1e-6)


def test_the_nan_stop_with_the_runner_keeps_the_last_good_weights_as_eager_does(graph_runner_on_the_cpu):
    from devicelab import train

    common = {"dataset": "diabetes", "lr": 5.0, "momentum": 0.9, "epochs": 300, "log_every": 5}
    common |= {"device": "cpu", "threads": 1, "quiet": True}
    fast = train(TrainConfig(fast="on", **common))
    eager = train(TrainConfig(fast="off", **common))
    assert fast.path == "cuda-graph"
    assert fast.status == eager.status == "diverged"
    assert fast.diverged_epoch == eager.diverged_epoch and fast.epochs_done == eager.epochs_done
    for a, b in zip(fast.model.state_dict().values(), eager.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# -- on a CUDA device ------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "dataset", "extra"), CUDA_CASES, ids=ON_CUDA.split())
def test_captured_graph_equals_eager_on_cuda_over_2000_epochs(name, dataset, extra, datasets):
    cuda = torch.device("cuda")
    config = TrainConfig(dataset=dataset, epochs=2000, device="cuda", **extra)
    eager = eager_run(config, datasets[dataset], cuda)
    work = build_workload(config, datasets[dataset], cuda)
    runner, why = cuda_graph_runner(work, config)
    assert runner is not None, why
    assert runner.graphs and all(isinstance(g, torch.cuda.CUDAGraph) for g in runner.graphs.values())
    assert runner.setup_s > 0
    train_like_the_loop(runner, config)
    np.testing.assert_allclose(work.losses.cpu().numpy(), eager.losses.cpu().numpy(), rtol=0, atol=1e-5)
    assert_same_state(work, eager, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "extra",
    [{}, {"batch_size": 32, "optimizer": "adam", "lr": 0.005}],
    ids=["full-batch-sgd", "minibatch-adam"],
)
def test_captured_run_syncs_once_per_log_point(extra, datasets):
    """torch.cuda.set_sync_debug_mode counts the real syncs: replays, permutation draws, the epoch
    index and the state written back at each log point add none to the log point's one read."""
    config = TrainConfig(epochs=400, log_every=50, device="cuda", **extra)
    work = build_workload(config, datasets["iris"], torch.device("cuda"))
    runner, why = cuda_graph_runner(work, config)
    assert runner is not None, why
    torch.cuda.synchronize()  # sync: the test's own, before counting starts
    reads = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for start in range(0, config.epochs, config.log_every):
                runner.run(start, start + config.log_every, lambda: False)
                runner.sync_module()
                work.losses[start : start + config.log_every].cpu()  # sync: the log point's one read
                reads += 1
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "called a synchronizing" in str(w.message)]
    assert reads == 400 // 50
    assert len(syncs) == reads, [str(w.message)[:120] for w in syncs]


@pytest.mark.gpu
def test_a_capture_that_fails_for_real_falls_back_and_eager_still_trains(datasets):
    """A sync inside the capture (``.item()``) makes CUDA refuse it: one line, then eager trains from
    the untouched workload exactly as a fresh eager run does."""
    cuda = torch.device("cuda")
    config = TrainConfig(epochs=200, device="cuda", optimizer="adam", lr=0.005)
    work = build_workload(config, datasets["iris"], cuda)

    def syncing(fn, pool, stream):
        return capture_cuda_graph(lambda: (fn(), work.losses[0].item()), pool, stream)

    runner, why = cuda_graph_runner(work, config, capture=syncing)
    assert runner is None and why.startswith("CUDA graph capture failed (") and "\n" not in why
    assert torch.cuda.current_stream() == torch.cuda.default_stream()  # the capture stream was put back
    for i in range(config.epochs):
        work.run_epoch(i)
    eager = eager_run(config, datasets["iris"], cuda)
    np.testing.assert_allclose(work.losses.cpu().numpy(), eager.losses.cpu().numpy(), rtol=0, atol=1e-6)
