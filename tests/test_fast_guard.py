"""A fast path is trusted only after its self-check against the eager step, and a fast path that fails
mid-run hands over to the eager step from the last log point, nothing lost (devicelab.training.guard).

The CUDA-graph runner's arithmetic runs uncaptured on the CPU (the ops a graph would hold); what the CPU
cannot do, a GPU that computes wrong or whose replay raises, is injected through ``fast_runner``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import partial

import numpy as np
import pytest
import torch

from devicelab.data import load_dataset
from devicelab.fast.cuda_graph import GraphRunner, graph_plan, run_uncaptured
from devicelab.training.callbacks import Callbacks
from devicelab.training.config import TrainConfig
from devicelab.training.guard import SELF_CHECK_TOL
from devicelab.training.loop import run_training, train
from devicelab.training.runner import select_runner
from devicelab.training.workload import build_workload

CPU = torch.device("cpu")
CONFIG = TrainConfig(
    epochs=60, log_every=20, device="cpu", threads=1, optimizer="adam", lr=0.01, batch_size=32
)


@pytest.fixture(scope="module")
def iris():
    return load_dataset(CONFIG)


class OffRunner(GraphRunner):
    """A step that computes slightly wrong (a device that miscomputes, a capture that froze a value)."""

    def _step(self, x, y):
        loss = super()._step(x, y)
        with torch.no_grad():
            self.params[0].mul_(1.001)
        return loss


def graph_runner(capture=run_uncaptured, kind=GraphRunner):
    """A fast_runner: the CUDA-graph runner on the CPU, with ``capture`` making its "graphs"."""

    def make(work, config):
        plan, why = graph_plan(work, config)
        assert plan is not None, why
        runner = kind(work, config, plan, capture)
        runner.setup()
        return runner, "the captured step (uncaptured on the CPU)"

    return make


def test_a_fast_path_that_computes_wrong_is_not_trusted(iris):
    """A step that is off (here by 0.1% a step) fails the check: eager, with the figures."""
    work = build_workload(CONFIG, iris, CPU)
    before = {k: v.clone() for k, v in work.model.state_dict().items()}
    shuffle = work.generator.get_state()
    runner, reason = select_runner(work, CONFIG, fast_runner=graph_runner(kind=OffRunner))
    assert runner.name == "eager"
    assert "self-check" in reason and "losses differ by up to" in reason, reason
    check = runner.self_check
    assert not check.passed and max(check.max_loss_diff, check.max_weight_diff) > SELF_CHECK_TOL
    for key, value in work.model.state_dict().items():  # the check put back everything it changed
        assert torch.equal(value, before[key]), key
    assert torch.equal(work.generator.get_state(), shuffle) and not work.optimizer.state


def test_a_right_fast_path_passes_and_trains_what_eager_trains(iris):
    work = build_workload(CONFIG, iris, CPU)
    runner, reason = select_runner(work, CONFIG, fast_runner=graph_runner())
    assert runner.name == "cuda-graph", reason
    check = runner.self_check
    assert check.passed and check.epochs == runner.plan.epochs_per_graph + 1
    assert check.max_loss_diff <= SELF_CHECK_TOL and check.max_weight_diff <= SELF_CHECK_TOL


class FailingGraph:
    """A replay that raises from its ``fail_at``-th call on (the GPU lost, an illegal address, ...)."""

    calls = 0

    def __init__(self, fn, fail_at: int) -> None:
        self.fn, self.fail_at = fn, fail_at

    def replay(self) -> None:
        FailingGraph.calls += 1
        if FailingGraph.calls >= self.fail_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")
        self.fn()

    def pool(self) -> None:
        return None


def test_a_replay_that_fails_mid_run_hands_over_to_eager_from_the_last_log_point(iris):
    """The run goes on from the last log point on the eager step: its losses are the eager run's."""
    eager = train(dataclasses.replace(CONFIG, fast="off"), dataset=iris)
    FailingGraph.calls = 0
    # two replays an interval (K = 10 epochs), the self-check two if this shape was not checked yet
    failing = graph_runner(capture=lambda fn, pool, stream: FailingGraph(fn, fail_at=5))
    said = []

    class Note(Callbacks):
        def on_fallback(self, reason):
            said.append(reason)

    result = run_training(
        CONFIG, iris, partial(build_workload, CONFIG, iris), fast_runner=failing, callbacks=Note()
    )
    assert result.status == "completed" and result.epochs_done == CONFIG.epochs
    assert len(said) == 1 and "cuda-graph path failed" in said[0] and "RuntimeError" in said[0]
    assert "\n" not in said[0] and result.fallback == said[0]
    where = re.search(r"failed in epochs (\d+)-\d+ .*continued on the eager step from epoch (\d+)", said[0])
    assert where and int(where[1]) - 1 == int(where[2]) > 0, said[0]  # from a log point after the first
    np.testing.assert_allclose(result.losses, eager.losses, rtol=1e-5)
    for (name, a), b in zip(
        result.model.state_dict().items(), eager.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


class FailingReadRunner(GraphRunner):
    """The fault surfaces at the first read after the replays (writing the state back)."""

    def sync_module(self) -> None:
        if self.steps > 60:
            raise RuntimeError("CUDA error: unspecified launch failure")
        super().sync_module()


def test_a_fault_at_the_read_after_replay_hands_over_too(iris, tmp_path):
    def make(work, config):
        plan, _ = graph_plan(work, config)
        runner = FailingReadRunner(work, config, plan, run_uncaptured)
        runner.setup()
        return runner, "fast"

    config = dataclasses.replace(CONFIG, runs_dir=str(tmp_path))
    result = run_training(config, iris, partial(build_workload, config, iris), fast_runner=make)
    assert result.status == "completed" and "unspecified launch failure" in result.fallback
    folder = result.save()
    step = json.loads((folder / "summary.json").read_text())["step"]
    assert step["fallback"] == result.fallback and step["self_check"]["passed"] is True


@pytest.mark.gpu
def test_on_cuda_the_captured_step_passes_its_self_check():
    config = TrainConfig(epochs=200, log_every=50, device="cuda", fast="on", optimizer="adam", batch_size=32)
    result = train(config)
    assert result.path == "cuda-graph", result.path_reason
    check = result.self_check
    assert check["passed"] and check["max_loss_diff"] <= SELF_CHECK_TOL, check


@pytest.mark.gpu
def test_on_cuda_a_replay_that_fails_hands_over_to_eager():
    from devicelab.fast.capture import capture_cuda_graph

    config = TrainConfig(epochs=200, log_every=50, device="cuda", fast="on", optimizer="adam", lr=0.005)
    dataset = load_dataset(config)
    replays = []

    class Flaky:
        def __init__(self, graph):
            self.graph = graph

        def replay(self):
            replays.append(1)
            if len(replays) == 12:
                raise RuntimeError("CUDA error: injected at replay")
            self.graph.replay()

        def pool(self):
            return self.graph.pool()

    flaky = graph_runner(capture=lambda fn, pool, stream: Flaky(capture_cuda_graph(fn, pool, stream)))
    result = run_training(config, dataset, partial(build_workload, config, dataset), fast_runner=flaky)
    assert result.status == "completed" and "injected at replay" in result.fallback
    eager = train(dataclasses.replace(config, fast="off"), dataset=dataset)
    np.testing.assert_allclose(result.losses, eager.losses, rtol=0, atol=1e-5)
