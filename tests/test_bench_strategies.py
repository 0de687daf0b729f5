"""The four recording strategies against the lesson's plain PyTorch loop, and their sync counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from devicelab.bench.eta import Marks
from devicelab.bench.strategies import STRATEGIES
from devicelab.bench.syncs import SyncCounter
from devicelab.data import load_dataset
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

EPOCHS = 60


class LessonMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 10)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


@pytest.fixture(scope="module")
def data():
    config = TrainConfig()
    dataset = load_dataset(config)
    x, y, _, _ = dataset.tensors("cpu")
    return config, dataset, x, y


@pytest.fixture(scope="module")
def lesson_losses(data):
    """The lesson's loop, written out: every epoch's loss.item()."""
    _, _, x, y = data
    torch.manual_seed(42)
    model = LessonMLP()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for _ in range(EPOCHS):
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def run(data, strategy, every):
    config, dataset, x, _ = data
    reads = SyncCounter()
    recorded = STRATEGIES[strategy](
        build_workload(config, dataset, x.device, EPOCHS), EPOCHS, every, reads, Marks(EPOCHS)
    )
    return recorded, reads.count


@pytest.mark.parametrize("strategy", ["item", "tensor", "detach"])
@pytest.mark.parametrize("every", [1, 7, None])
def test_recorded_losses_match_the_lesson_loop(data, lesson_losses, strategy, every):
    recorded, _ = run(data, strategy, every)
    expected_at = [] if every is None else list(range(every, EPOCHS + 1, every))
    assert recorded.epochs == expected_at
    assert recorded.values == [lesson_losses[e - 1] for e in expected_at]


@pytest.mark.parametrize("every", [1, 7, None])
def test_buffer_records_every_epoch_whatever_the_read_interval(data, lesson_losses, every):
    recorded, _ = run(data, "buffer", every)
    assert recorded.epochs == list(range(1, EPOCHS + 1))
    assert recorded.values == lesson_losses


@pytest.mark.parametrize(
    ("strategy", "every", "syncs"),
    [
        ("item", 1, EPOCHS),
        ("item", 7, EPOCHS // 7),  # 8 record points in 60 epochs
        ("item", None, 0),
        ("tensor", 7, 1),  # one read of everything after the loop
        ("tensor", None, 0),
        ("detach", 1, 1),
        ("buffer", 7, EPOCHS // 7 + 1),  # 8 reads at record points + the last 4 epochs after the loop
        ("buffer", 6, EPOCHS // 6),  # 60 is a record point: nothing left to read after the loop
        ("buffer", None, 1),
    ],
)
def test_sync_counter_counts_every_read(data, strategy, every, syncs):
    _, count = run(data, strategy, every)
    assert count == syncs


def test_item_reads_are_the_real_item_calls(data):
    """An independent count: the profiler sees one aten::item per counted read."""
    config, dataset, x, _ = data
    parts = build_workload(config, dataset, x.device, EPOCHS)
    reads = SyncCounter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        STRATEGIES["item"](parts, EPOCHS, 7, reads, Marks(EPOCHS))
    items = sum(e.count for e in prof.key_averages() if e.key == "aten::item")
    assert items == reads.count == EPOCHS // 7


def test_item_strategy_records_what_profiles_lesson_loop_records(data):
    """bench's ``item`` loop and profile's ``lesson_loop`` are two short copies of the lesson's loop (each
    shaped for its own measurement); this keeps them equal."""
    from devicelab.profile.loops import lesson_loop

    config, dataset, x, y = data
    recorded, _ = run(data, "item", 1)
    parts = build_workload(config, dataset, x.device, EPOCHS)
    assert lesson_loop(parts.model, parts.loss_fn, parts.torch_optimizer(), x, y, EPOCHS) == recorded.values
