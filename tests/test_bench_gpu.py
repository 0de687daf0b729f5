"""bench logging on CUDA: PyTorch's own sync count agrees with the call-site count, memory, the CLI."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def experiment():
    from devicelab.bench.logging_experiment import Grid, run_experiment
    from devicelab.training.config import TrainConfig

    grid = Grid(
        epochs=200,
        intervals=(1, 10, None),
        strategies=("item", "tensor", "detach", "buffer"),
        devices=("cuda:0",),
        repeats=2,
        order_seed=0,
        threads=1,
    )
    return run_experiment(TrainConfig(epochs=200), grid)


def test_debug_mode_counts_exactly_the_reads_of_every_strategy(experiment):
    expected = {
        ("item", 1): 200,
        ("item", 10): 20,
        ("item", None): 0,
        ("tensor", 1): 1,
        ("tensor", None): 0,
        ("detach", 10): 1,
        ("buffer", 1): 200,
        ("buffer", 10): 20,
        ("buffer", None): 1,
    }
    for (strategy, k), syncs in expected.items():
        cell = experiment.cell("cuda:0", strategy, k)
        assert (cell.syncs, cell.device_syncs) == (syncs, syncs), (strategy, k)


def test_kept_tensors_show_in_the_device_allocator(experiment):
    tensor = experiment.cell("cuda:0", "tensor", 1)
    item = experiment.cell("cuda:0", "item", 1)
    assert min(tensor.device_bytes) >= 200 * 512  # one 512-byte block per kept loss
    assert max(item.device_bytes) < min(tensor.device_bytes)


def test_sync_cost_on_cuda_is_the_measured_round_trip(experiment):
    (cost,) = experiment.sync_costs
    assert cost.device == "cuda:0" and cost.round_trip.label == "sync_round_trip"
    assert cost.per_sync_s == cost.round_trip.median > 0  # measured, never clamped to zero


def test_cli_quick_on_cuda_gives_three_verdicts(cli):
    result = cli(
        "bench", "logging", "--quick", "--device", "cuda", "--epochs", "300", "--repeats", "2", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["grid"]["devices"] == ["cuda:0"]
    assert [v["device"] for v in data["verdicts"]] == ["cuda:0"] * 3
    assert all(c["device_syncs"] == c["syncs"] for c in data["cells"])
