"""Counting syncs: the call-site counter, and the device's own count (CUDA debug mode; a fake here)."""

from __future__ import annotations

import warnings

import pytest
import torch

from devicelab.bench.syncs import SYNC_WARNING, SyncCounter, count_device_syncs


def test_counter_counts_each_read_and_returns_the_value():
    reads = SyncCounter()
    t = torch.arange(4.0)
    values = [reads.item(t[i]) for i in range(4)]
    assert values == [0.0, 1.0, 2.0, 3.0]
    assert reads.tolist(t) == values
    assert reads.count == 5


def test_cpu_cannot_count_device_syncs():
    with count_device_syncs(torch.device("cpu")) as counted:
        torch.ones(3).sum().item()
    assert counted.count is None


class FakeDebugMode:
    """Stands in for torch.cuda.set_sync_debug_mode on this GPU-less machine."""

    def __init__(self):
        self.modes = []

    def __call__(self, mode):
        self.modes.append(mode)

    def sync(self):
        if self.modes and self.modes[-1] == "warn":
            warnings.warn(f"Attempted to {SYNC_WARNING}", UserWarning, stacklevel=2)


def test_device_count_counts_only_sync_warnings_and_restores_the_mode():
    fake = FakeDebugMode()
    with count_device_syncs(torch.device("cuda"), set_mode=fake) as counted:
        for _ in range(5):
            fake.sync()  # same line each time: counted although Python would show it once
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert counted.count == 5
    assert fake.modes == ["warn", "default"]
    fake.sync()  # outside the block: the mode is back to default, nothing warns
    assert counted.count == 5


def test_device_mode_is_restored_when_the_block_fails():
    fake = FakeDebugMode()
    with pytest.raises(RuntimeError), count_device_syncs(torch.device("cuda"), set_mode=fake):
        raise RuntimeError("boom")
    assert fake.modes == ["warn", "default"]


@pytest.mark.gpu
def test_cuda_debug_mode_counts_exactly_the_syncs_of_a_known_loop():
    device = torch.device("cuda")
    t = torch.ones(8, device=device)
    reads = SyncCounter()
    with count_device_syncs(device) as counted:
        for i in range(10):
            t = t * 1.5 + 1  # queued kernels: no sync
            if i % 3 == 0:
                reads.item(t.sum())
        reads.tolist(t)
    assert reads.count == 5  # i = 0, 3, 6, 9, then the tolist
    assert counted.count == reads.count
    assert torch.cuda.get_sync_debug_mode() == 0
