"""One `--device auto` policy per meaning, in the library: profile runs on what train would choose
(``choose_device``); a comparison (bench) takes every device here (``devices_to_compare``). Fake GPUs and
fake timings are injected through the functions' parameters where this CPU-only machine has neither."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from devicelab.devices import available_devices, devices_to_compare
from devicelab.errors import UserError
from devicelab.profile.run import profile_workload
from devicelab.training.device_choice import choose_device

CPU = torch.device("cpu")
FAKE_GPUS = [CPU, torch.device("cuda", 0), torch.device("cuda", 1)]

# --- profile: what devicelab train would run ------------------------------------------------------


def _timer(per_epoch: dict[tuple[str, int], float], calls: list):
    def timer(config, dataset, device, threads):
        calls.append((str(device), threads))
        return per_epoch[(str(device), threads)]

    return timer


@pytest.mark.parametrize(
    ("per_epoch", "threads"),
    [
        ({("cpu", 1): 300e-6, ("cpu", 3): 100e-6}, 3),  # 3 threads 3x faster than one: they are used
        ({("cpu", 1): 100e-6, ("cpu", 3): 90e-6}, 1),  # not 1.5x faster: one thread
    ],
)
def test_profile_runs_on_the_device_and_threads_the_trainer_chooses(seed, per_epoch, threads):
    config, dataset = seed
    config = replace(config, fast="off")  # the eager step's thread counts are timed (the kernel has one)
    calls, seen = [], []

    def trainers_policy(cfg, data):
        seen.append(cfg)
        return choose_device(cfg, data, devices=[CPU], timer=_timer(per_epoch, calls), default_threads=3)

    reference = choose_device(config, dataset, devices=[CPU], timer=_timer(per_epoch, []), default_threads=3)
    before = torch.get_num_threads()
    report = profile_workload(config, dataset, steps=2, regime=False, choose=trainers_policy)
    assert seen == [config] and config.device == "auto"  # the policy is asked with the user's config
    assert (reference.device, reference.threads) == ("cpu", threads)
    assert report.workload["device"] == reference.device
    assert report.workload["threads"] == reference.threads  # torch's count while the profile ran
    assert report.workload["device_reason"] == reference.reason
    ours = report.audits[1]  # devicelab's own training ran on that device, with those threads
    assert ours.loop == "devicelab" and ours.device == "cpu"
    assert torch.get_num_threads() == before  # put back afterwards


def test_profile_with_auto_on_this_machine_profiles_choose_devices_answer(seed):
    """No injection of the device list: on this CPU-only machine the trainer's policy can only answer cpu;
    the thread count is whatever its timing (a fake timer here) picks, and the profile follows it."""
    config, dataset = seed
    config = replace(config, fast="off")
    per_epoch = {("cpu", 1): 100e-6, ("cpu", 2): 400e-6, ("cpu", 4): 400e-6}
    answer = choose_device(config, dataset, timer=_timer(per_epoch, []))
    assert answer.device == "cpu" or torch.cuda.is_available()
    report = profile_workload(
        config,
        dataset,
        steps=2,
        regime=False,
        choose=lambda c, d: choose_device(c, d, timer=_timer(per_epoch, [])),
    )
    assert (report.workload["device"], report.workload["threads"]) == (answer.device, answer.threads)
    assert report.workload["device_reason"] == answer.reason


def test_a_named_device_and_threads_are_what_train_would_use_too(seed):
    config, dataset = seed
    calls = []
    named = replace(config, device="cpu", threads=1)
    report = profile_workload(
        named,
        dataset,
        steps=2,
        regime=False,
        choose=lambda c, d: choose_device(c, d, timer=_timer({}, calls)),
    )
    assert calls == []  # one candidate: nothing to time
    assert (report.workload["device"], report.workload["threads"]) == ("cpu", 1)
    assert report.workload["device_reason"] == choose_device(named, dataset, timer=_timer({}, calls)).reason


def test_a_device_given_to_the_library_is_profiled_as_given(seed):
    config, dataset = seed

    def no_policy(c, d):
        raise AssertionError("a device was given: nothing to choose")

    report = profile_workload(
        replace(config, threads=1), dataset, CPU, steps=2, regime=False, choose=no_policy
    )
    assert (report.workload["device"], report.workload["threads"]) == ("cpu", 1)
    assert "given to profile_workload" in report.workload["device_reason"]


def test_a_device_that_is_not_here_is_one_user_error(seed):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config, dataset = seed
    with pytest.raises(UserError, match="not available"):
        profile_workload(replace(config, device="cuda"), dataset, steps=2, regime=False)


# --- bench: every device here -----------------------------------------------------------------------


def test_compare_auto_is_every_device_cpu_first():
    assert devices_to_compare(None, available=lambda: FAKE_GPUS) == ("cpu", "cuda:0", "cuda:1")
    assert devices_to_compare(["auto"], available=lambda: FAKE_GPUS) == ("cpu", "cuda:0", "cuda:1")


def test_compare_on_this_machine_is_what_is_available():
    assert devices_to_compare(None) == tuple(str(d) for d in available_devices())


def test_compare_names_are_split_resolved_and_kept_once_in_order():
    assert devices_to_compare(["cpu, auto", "cpu"], available=lambda: FAKE_GPUS) == (
        "cpu",
        "cuda:0",
        "cuda:1",
    )
    assert devices_to_compare([" cpu ", "cpu,"]) == ("cpu",)


@pytest.mark.parametrize(("specs", "fragment"), [([","], "no device"), (["tpu"], "tpu"), ([""], "no device")])
def test_compare_bad_names_are_user_errors(specs, fragment):
    with pytest.raises(UserError, match=fragment):
        devices_to_compare(specs)


def test_compare_a_gpu_that_is_not_here_says_why():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="not available"):
        devices_to_compare(["cpu", "cuda:0"])
