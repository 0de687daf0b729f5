"""A capture that fails at any stage leaves the process usable, and is not tried again for the same
shape; one that works is made for each workload and self-checked once per shape
(devicelab.fast.capture, devicelab.fast.cuda_graph.build_runner, devicelab.training.guard).

This machine has no GPU: the torch calls a capture makes come in through ``cuda`` and ``allocator``, and
``FakeCuda`` plays them the way torch.cuda does (``torch.cuda.graph``: capture_begin on entry,
capture_end on exit; ``capture_end`` failing before it tells the allocator, as in torch 2.4-2.7), failing
at the stage a test names. The same checks on a real GPU: tests/test_train_gpu.py (``gpu``)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from devicelab.data import load_dataset
from devicelab.fast.capture import capture_cuda_graph, run_uncaptured
from devicelab.fast.cuda_graph import build_runner, graph_plan
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

STAGES = ("new graph", "capture_begin", "fn", "capture_end")


class FakeGraph:
    def __init__(self, api: FakeCuda) -> None:
        self.api = api
        api.check("new graph")

    def capture_begin(self, pool=None) -> None:
        self.api.check("capture_begin")
        self.api.capturing = True
        self.api.underway.append((7, 1))  # the allocator now routes this stream's allocations to pool (7, 1)
        self.api.rng_capturing = True

    def capture_end(self) -> None:
        self.api.capturing = False  # cudaStreamEndCapture
        self.api.check("capture_end")  # torch 2.4-2.7 raise here, before telling the allocator
        self.api.underway.remove((7, 1))
        self.api.rng_capturing = False

    def pool(self):
        return (7, 1)

    def reset(self) -> None:
        self.api.calls.append("reset")

    def replay(self) -> None:
        pass


class FakeCuda:
    """torch.cuda and torch._C as a capture uses them, with a failure at ``fail_at``."""

    def __init__(self, fail_at: str | None) -> None:
        self.fail_at, self.calls = fail_at, []
        self.capturing = self.rng_capturing = False
        self.underway: list = []
        self.stream_now = "default"
        self.rng = torch.tensor([1, 2, 3], dtype=torch.uint8)

    def check(self, stage: str) -> None:
        if stage == self.fail_at:
            raise RuntimeError(f"CUDA error at {stage}: operation not permitted when stream is capturing")

    # torch.cuda
    def CUDAGraph(self):
        return FakeGraph(self)

    @contextlib.contextmanager
    def graph(self, graph, pool=None, stream=None):
        self.stream_now = stream
        graph.capture_begin(pool)
        try:
            yield
        finally:  # torch.cuda.graph.__exit__: capture_end, then the stream back (not if capture_end raises)
            graph.capture_end()
            self.stream_now = "default"

    def current_stream(self):
        return self.stream_now

    def set_stream(self, stream) -> None:
        self.stream_now = stream

    @contextlib.contextmanager
    def stream(self, stream):
        yield

    def is_current_stream_capturing(self) -> bool:
        return self.capturing

    def current_device(self) -> int:
        return 0

    def get_rng_state(self):
        return self.rng.clone()

    def set_rng_state(self, state) -> None:
        self.calls.append("set_rng_state")
        self.rng_capturing = False

    # torch._C
    def _cuda_endAllocateToPool(self, device, pool) -> None:
        if pool not in self.underway:
            raise RuntimeError("endAllocatePool: not currently recording to mempool_id")
        self.underway.remove(pool)

    def _cuda_releasePool(self, device, pool) -> None:
        self.calls.append("releasePool")


def work_fn(api: FakeCuda):
    def fn() -> None:
        api.check("fn")

    return fn


@pytest.mark.parametrize("stage", STAGES)
def test_a_capture_failing_at_any_stage_leaves_the_process_as_it_was(stage):
    api = FakeCuda(fail_at=stage)
    with pytest.raises(RuntimeError, match=f"at {stage}"):
        capture_cuda_graph(work_fn(api), None, "side", cuda=api, allocator=api)
    assert api.stream_now == "default"  # the stream the caller had
    assert not api.capturing and not api.underway  # no capture open, the allocator told it ended
    assert not api.rng_capturing  # the default generator out of its capture state
    if stage in ("fn", "capture_end"):  # a graph object exists: reset (it releases a pool it holds)
        assert "reset" in api.calls
    # the pool is released here only where capture_end did not get to tell the allocator
    assert ("releasePool" in api.calls) == (stage == "capture_end")


def test_a_capture_that_works_is_left_alone():
    api = FakeCuda(fail_at=None)
    graph = capture_cuda_graph(work_fn(api), None, "side", cuda=api, allocator=api)
    assert isinstance(graph, FakeGraph) and api.stream_now == "default" and not api.underway
    assert api.calls == []


def test_a_failed_capture_is_tried_once_per_process_and_shape():
    config = TrainConfig(epochs=40, device="cpu", optimizer="adam")
    dataset = load_dataset(config)
    tries = []

    def broken(fn, pool, stream):
        tries.append(1)
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    reasons = []
    for _ in range(3):  # --device auto builds the step for each timing, then the run builds it again
        work = build_workload(config, dataset, torch.device("cpu"))
        plan, _ = graph_plan(work, config)
        runner, why = build_runner(work, config, plan, broken)
        assert runner is None
        reasons.append(why)
    assert len(tries) == 1 and len(set(reasons)) == 1 and "operation not permitted" in reasons[0]


def test_a_capture_that_worked_is_made_for_each_workload_and_self_checked_once(monkeypatch):
    """Device timing's workload, then the run's, of one shape: each captures its own graphs (they replay
    its own tensors), the self-check runs for the first only, and the kept verdict costs the second
    nothing. The second run's graph trains the second module as the eager step does and leaves the
    first module alone."""
    from devicelab.training import guard
    from devicelab.training.runner import select_runner

    monkeypatch.setattr(guard, "_verdicts", {})  # this process's earlier tests may have checked this shape
    config = TrainConfig(epochs=40, device="cpu", optimizer="adam")
    dataset = load_dataset(config)
    captures, fast_runs = [], []

    def counting(fn, pool, stream):
        captures.append(fn)
        return run_uncaptured(fn, pool, stream)

    def fast_runner(work, config):
        plan, _ = graph_plan(work, config)
        runner, why = build_runner(work, config, plan, counting)
        run = runner.run
        runner.run = lambda *args: fast_runs.append(args) or run(*args)
        return runner, why

    built, checks = [], []
    for _ in range(2):
        work = build_workload(config, dataset, torch.device("cpu"))
        runner, _ = select_runner(work, config, fast_runner=fast_runner)
        built.append((work, runner))
        checks.append(len(fast_runs))  # the self-check is the only caller of run() so far
    (first_work, first), (second_work, second) = built
    assert first.name == second.name == "cuda-graph"
    assert len(captures) == 4  # the K-epoch and the one-epoch graph, for each workload
    assert checks == [1, 1]  # the second build's check was the kept verdict
    assert first.self_check.passed and second.self_check.to_dict() == first.self_check.to_dict()
    assert first.self_check.seconds > 0 and second.self_check.seconds == 0.0
    kept = [p.detach().clone() for p in first_work.model.parameters()]
    second.run(0, config.epochs, lambda: False)
    second.sync_module()
    eager = build_workload(config, dataset, torch.device("cpu"))
    for epoch in range(config.epochs):
        eager.run_epoch(epoch)
    torch.testing.assert_close(second_work.losses, eager.losses, rtol=1e-5, atol=1e-7)
    assert all(torch.equal(a, b) for a, b in zip(kept, first_work.model.parameters(), strict=True))


@pytest.mark.gpu
def test_on_cuda_a_refused_capture_leaves_capture_dropout_and_the_allocator_usable():
    """``.item()`` inside a capture: CUDA refuses it, and ``capture_end`` raises on the invalidated
    capture. After that: another capture works and replays, eager dropout draws from the default
    generator, and freed memory is allocated again (the allocator knows no capture is underway)."""
    cuda = torch.device("cuda")
    x = torch.ones(1024, device=cuda)
    stream = torch.cuda.Stream(cuda)

    def syncing() -> None:
        (x * 2).sum().item()

    with pytest.raises(Exception):  # noqa: B017 (torch's error type for this differs between versions)
        capture_cuda_graph(syncing, None, stream)
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    assert not torch.cuda.is_current_stream_capturing()
    out = torch.zeros(1024, device=cuda)
    graph = capture_cuda_graph(lambda: out.copy_(x * 3), None, stream)
    graph.replay()
    assert float(out.sum()) == 3 * 1024  # sync: the test reads the replay's result
    kept = torch.nn.functional.dropout(torch.ones(10_000, device=cuda), 0.5, training=True)
    assert 3000 < int((kept > 0).sum()) < 7000
    big = torch.empty(256 << 20, dtype=torch.uint8, device=cuda)
    del big
    torch.cuda.empty_cache()  # asserts in torch 2.4-2.7 while the allocator thinks a capture is underway
    again = torch.empty(256 << 20, dtype=torch.uint8, device=cuda)
    assert again.numel() == 256 << 20
