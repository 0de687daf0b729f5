"""--device auto: the choice follows the timings of this workload (fake GPUs injected where this machine
has none; the real CPU timed for real)."""

from __future__ import annotations

import pytest
import torch

from devicelab.data import load_dataset
from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import MULTI_THREAD_MARGIN, choose_device

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture(scope="module")
def iris():
    return load_dataset(TrainConfig())


# the thread-timing policy is that of the eager step (the fused kernel runs on one thread: see below)
EAGER = TrainConfig(fast="off")


def fake_timer(table: dict[tuple[str, int], float], calls: list | None = None):
    def timer(config, dataset, device, threads):
        if calls is not None:
            calls.append((str(device), threads))
        return table[(str(device), threads)]

    return timer


def test_auto_takes_the_cpu_when_it_is_faster_and_says_why(iris):
    timings = {("cpu", 1): 150e-6, ("cpu", 4): 900e-6, ("cuda:0", 4): 400e-6}
    choice = choose_device(EAGER, iris, devices=[CPU, GPU], timer=fake_timer(timings), default_threads=4)
    assert (choice.device, choice.threads) == ("cpu", 1)
    assert "cpu (1 thread) 150 µs" in choice.reason and "cuda:0 400 µs" in choice.reason
    assert "2.7x faster than cuda:0" in choice.reason
    assert choice.to_dict()["timed_us_per_epoch"] == {
        "cpu (1 thread)": 150.0,
        "cpu (4 threads)": 900.0,
        "cuda:0": 400.0,
    }


def test_auto_takes_the_gpu_when_it_is_faster(iris):
    timings = {("cpu", 1): 5e-3, ("cpu", 4): 3e-3, ("cuda:0", 4): 1e-3}
    choice = choose_device(EAGER, iris, devices=[CPU, GPU], timer=fake_timer(timings), default_threads=4)
    assert choice.device == "cuda:0" and "faster than cpu" in choice.reason


def test_the_gpu_is_compared_with_the_cpu_as_it_would_run(iris):
    """16 threads time fastest but would not be used (not 1.5x faster than one): the GPU beats one thread,
    and the reason compares it with that, not with the 16-thread figure it did not beat."""
    timings = {("cpu", 1): 150e-6, ("cpu", 16): 110e-6, ("cuda:0", 16): 130e-6}
    choice = choose_device(EAGER, iris, devices=[CPU, GPU], timer=fake_timer(timings), default_threads=16)
    assert choice.device == "cuda:0"
    assert f"{150 / 130:.1f}x faster than cpu (1 thread)" in choice.reason
    assert "16 threads)" not in choice.reason.split(";", 1)[1]  # only in the listing of timings


@pytest.mark.parametrize(("multi_us", "expected"), [(80.0, 1), (100 / MULTI_THREAD_MARGIN, 4), (20.0, 4)])
def test_more_threads_only_when_clearly_faster(iris, multi_us, expected):
    timings = {("cpu", 1): 100e-6, ("cpu", 4): multi_us * 1e-6}
    choice = choose_device(
        TrainConfig(device="cpu", fast="off"),
        iris,
        devices=[CPU],
        timer=fake_timer(timings),
        default_threads=4,
    )
    assert choice.threads == expected
    if expected == 1:
        assert "one thread unless" in choice.reason


def test_nothing_is_timed_when_there_is_one_candidate(iris):
    calls = []
    config = TrainConfig(device="cpu", threads=2)
    choice = choose_device(config, iris, devices=[CPU], timer=fake_timer({}, calls), default_threads=2)
    assert calls == [] and (choice.device, choice.threads) == ("cpu", 2) and "asked for" in choice.reason


def test_the_real_cpu_is_timed(iris):
    config = TrainConfig(device="cpu", fast="off")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(3)  # neither of the counts timed below
    try:
        choice = choose_device(config, iris, default_threads=2)
        assert torch.get_num_threads() == 3  # timing 1 and 2 threads leaves the process as it was
    finally:
        torch.set_num_threads(threads_before)
    assert choice.device == "cpu" and choice.threads in (1, 2)
    assert all(c.s_per_epoch > 0 for c in choice.candidates) and len(choice.candidates) == 2


def test_the_fused_kernels_one_thread_is_not_timed_against_more(iris):
    calls = []
    timings = {("cpu", 1): 5e-6, ("cuda:0", 4): 30e-6}
    choice = choose_device(
        TrainConfig(), iris, devices=[CPU], timer=fake_timer(timings, calls), default_threads=4
    )
    assert calls == [] and (choice.device, choice.threads) == ("cpu", 1) and "fused kernel" in choice.reason
    # beside a GPU, the CPU is timed once, with its one thread
    choice = choose_device(
        TrainConfig(), iris, devices=[CPU, GPU], timer=fake_timer(timings, calls), default_threads=4
    )
    assert sorted(set(calls)) == [("cpu", 1), ("cuda:0", 4)] and choice.device == "cpu"
    # a model the kernel cannot take (dropout) has its threads timed as before
    calls.clear()
    dropout = TrainConfig(dropout=0.1, device="cpu")
    choose_device(
        dropout,
        iris,
        devices=[CPU],
        timer=fake_timer({("cpu", 1): 1, ("cpu", 4): 1}, calls),
        default_threads=4,
    )
    assert sorted(set(calls)) == [("cpu", 1), ("cpu", 4)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_a_user_error(iris):
    with pytest.raises(UserError, match="not available"):
        choose_device(TrainConfig(device="cuda:0"), iris)


def test_a_device_whose_timing_fails_is_ruled_out_with_one_line(iris):
    """Out of memory (or any error) while timing a GPU: the run takes another device and says why."""

    def timer(config, dataset, device, threads):
        if device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB\nmore text")
        return 1e-4 * threads

    choice = choose_device(EAGER, iris, devices=[CPU, GPU], timer=timer, default_threads=2)
    assert choice.device == "cpu"
    assert (
        "cuda:0 ruled out (OutOfMemoryError: CUDA out of memory. Tried to allocate 9.00 GiB)" in choice.reason
    )
    assert "\n" not in choice.reason
    assert choice.to_dict()["ruled_out"] == {
        "cuda:0": "OutOfMemoryError: CUDA out of memory. Tried to allocate 9.00 GiB"
    }


def test_when_no_device_can_be_timed_the_error_is_one_line(iris):
    def timer(config, dataset, device, threads):
        raise RuntimeError(f"{device} broke")

    with pytest.raises(UserError, match=r"no device could run this workload; cpu \(1 thread\) ruled out"):
        choose_device(EAGER, iris, devices=[CPU, GPU], timer=timer, default_threads=2)


def test_timing_takes_the_runs_data_path_and_a_bounded_number_of_steps(iris):
    """data="auto" (the run's path: rows that do not fit the device are streamed) and at most a few
    mini-batches a timed call, not whole epochs: iris in batches of 1 is 120 steps an epoch."""
    from functools import partial

    from devicelab.training.device_choice import MAX_TIMED_STEPS, time_epoch
    from devicelab.training.workload import build_workload

    config = TrainConfig(batch_size=1, optimizer="adam", fast="off", epochs=5)
    modes, steps = [], []

    def build(device, n_epochs, *, data):
        modes.append(data)
        work = build_workload(config, iris, device, n_epochs, data=data)
        work.optimizer.register_step_post_hook(lambda *args: steps.append(1))
        return work

    seconds = time_epoch(config, iris, CPU, 1, build=build)
    assert modes == ["auto"] and seconds > 0
    assert MAX_TIMED_STEPS < 120 and len(steps) < 3 * 120, len(steps)  # before: at least 6 whole epochs
    whole = partial(build_workload, config, iris)(CPU, 1, data="auto")
    assert whole.first_rows(MAX_TIMED_STEPS).x_train.shape[0] == MAX_TIMED_STEPS
