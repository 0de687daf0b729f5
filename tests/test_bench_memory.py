"""Memory kept by recording, on a real short CPU run: appending the loss tensor grows, .item() does not."""

from __future__ import annotations

import pytest
import torch

from devicelab.bench.eta import Marks
from devicelab.bench.memory import MemoryProbe
from devicelab.bench.strategies import STRATEGIES
from devicelab.bench.syncs import SyncCounter
from devicelab.data import load_dataset
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

pytestmark = pytest.mark.usefixtures("one_thread")  # as bench logging and devicelab run tiny ops

EPOCHS = 400


def growth(strategy: str, every: int | None, device: str = "cpu"):
    config = TrainConfig()
    dataset = load_dataset(config)
    parts = build_workload(config, dataset, torch.device(device), EPOCHS)
    probe = MemoryProbe(torch.device(device))
    probe.start()
    recorded = STRATEGIES[strategy](parts, EPOCHS, every, SyncCounter(), Marks(EPOCHS))
    use = probe.stop()
    assert len(recorded.values) == (EPOCHS if strategy == "buffer" else EPOCHS // (every or EPOCHS + 1))
    return use


def test_tensor_records_grow_memory_and_item_records_do_not():
    tensor = growth("tensor", 1).host_growth_bytes
    item = growth("item", 1).host_growth_bytes
    # each kept graph costs kilobytes (about 6 KB measured here); a Python float costs 24 bytes
    assert tensor > EPOCHS * 1000, tensor
    assert item < tensor / 10, (item, tensor)


def test_tensor_growth_scales_with_the_number_of_records():
    every_step = growth("tensor", 1).host_growth_bytes
    every_tenth = growth("tensor", 10).host_growth_bytes
    assert every_tenth < every_step / 3, (every_tenth, every_step)


def test_cpu_has_no_device_allocator_figure():
    assert growth("item", None).device_peak_bytes is None


@pytest.mark.gpu
def test_cuda_peak_grows_with_kept_tensors():
    tensor = growth("tensor", 1, "cuda")
    item = growth("item", 1, "cuda")
    # every kept loss is a device scalar (one 512-byte allocator block); .item() keeps nothing there
    assert tensor.device_peak_bytes >= EPOCHS * 512
    assert item.device_peak_bytes < tensor.device_peak_bytes / 10
    assert tensor.host_growth_bytes > item.host_growth_bytes
