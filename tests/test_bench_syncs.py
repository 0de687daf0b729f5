"""Counting syncs: the call-site counter, and the device's own count (CUDA debug mode; a fake here)."""

from __future__ import annotations

import warnings

import pytest
import torch

from devicelab.bench.syncs import SyncCounter, count_device_syncs
from sync_fakes import FakeSyncDebugMode


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


def test_device_count_counts_only_sync_warnings_and_passes_the_others_on():
    fake = FakeSyncDebugMode()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with count_device_syncs(torch.device("cuda"), debug_mode=fake.debug_mode) as counted:
            for _ in range(5):
                fake.sync()  # same line each time: counted although Python would show it once
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert counted.count == 5
    assert [str(w.message) for w in shown] == ["something else"]  # the user still sees their warnings
    fake.sync()  # outside the block: the mode is back to default, nothing warns
    assert counted.count == 5


@pytest.mark.parametrize("user_mode", [0, "default", 1, "warn", 2, "error"])
def test_device_count_puts_back_the_users_debug_mode(user_mode):
    fake = FakeSyncDebugMode(user_mode)
    with count_device_syncs(torch.device("cuda"), debug_mode=fake.debug_mode) as counted:
        fake.sync()  # under "warn" whatever the user had: counted, not raised
    assert counted.count == 1
    assert fake.history == [user_mode, "warn", user_mode]


def test_a_user_in_error_mode_gets_errors_again_after_counting():
    fake = FakeSyncDebugMode("error")
    with count_device_syncs(torch.device("cuda"), debug_mode=fake.debug_mode) as counted:
        fake.sync()
        fake.sync()
    assert counted.count == 2
    with pytest.raises(RuntimeError, match="synchronizing"):
        fake.sync()


def test_device_mode_is_restored_when_the_block_fails():
    fake = FakeSyncDebugMode(2)
    with (
        pytest.raises(RuntimeError, match="boom"),
        count_device_syncs(torch.device("cuda"), debug_mode=fake.debug_mode),
    ):
        raise RuntimeError("boom")
    assert fake.history == [2, "warn", 2]


def test_bench_and_profile_use_one_device_sync_watcher():
    from devicelab import syncs
    from devicelab.bench import syncs as bench_syncs
    from devicelab.profile import sync_audit

    assert bench_syncs.count_device_syncs is syncs.count_device_syncs
    assert sync_audit.watch_device_syncs is syncs.watch_device_syncs


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


@pytest.mark.gpu
def test_cuda_debug_mode_the_user_set_is_put_back():
    device = torch.device("cuda")
    t = torch.ones(8, device=device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        with count_device_syncs(device) as counted:
            t.sum().item()  # sync: deliberate; counted under "warn", not raised
        assert counted.count == 1
        assert torch.cuda.get_sync_debug_mode() == 2
        with pytest.raises(RuntimeError, match="synchronizing"):
            t.sum().item()  # sync: deliberate, the user's "error" mode is back
    finally:
        torch.cuda.set_sync_debug_mode("default")
