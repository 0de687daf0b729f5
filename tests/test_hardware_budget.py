"""The CPU budget: affinity and cgroup v1/v2 quotas (as the kernel writes those files) and thread warnings."""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace

import pytest
import torch

from devicelab.hardware import default_probes
from devicelab.hardware.budget import collect_budget, parse_cgroup_v2_max


def probes(files: dict[str, str], *, affinity=8, cpus=64, torch_threads=64, pools=()):
    fake_torch = SimpleNamespace(get_num_threads=lambda: torch_threads, get_num_interop_threads=lambda: 32)
    fake_psutil = SimpleNamespace(cpu_count=lambda logical=True: cpus)
    return dataclasses.replace(
        default_probes(),
        torch=fake_torch,
        psutil=fake_psutil,
        read_file=files.get,
        affinity=lambda: affinity,
        thread_pools=lambda: list(pools),
    )


def test_cgroup_v2_quota_in_a_container():
    files = {"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": "150000 100000\n"}
    budget = collect_budget(probes(files, affinity=64))
    assert (budget.cgroup_version, budget.cgroup_quota_cpus) == (2, 1.5)
    assert budget.usable_cpus == 2  # 1.5 CPUs of time: two threads can still run
    assert "torch uses 64 threads but this process may use only 2 CPU(s)" in budget.warnings[0]
    assert "torch.set_num_threads(2)" in budget.warnings[0]


def test_cgroup_v2_parent_limit_applies():
    files = {
        "/proc/self/cgroup": "0::/user.slice/job.scope\n",
        "/sys/fs/cgroup/user.slice/job.scope/cpu.max": "max 100000\n",
        "/sys/fs/cgroup/user.slice/cpu.max": "400000 100000\n",
        "/sys/fs/cgroup/cpu.max": "max 100000\n",
    }
    budget = collect_budget(probes(files, affinity=64, torch_threads=4))
    assert budget.cgroup_quota_cpus == 4 and budget.usable_cpus == 4
    assert budget.warnings == ()


def test_cgroup_v2_without_quota():
    files = {"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": "max 100000\n"}
    budget = collect_budget(probes(files, affinity=6, torch_threads=6))
    assert (budget.cgroup_version, budget.cgroup_quota_cpus, budget.usable_cpus) == (2, None, 6)


def test_cgroup_v1_quota_seen_from_inside_a_container():
    # /proc/self/cgroup names the host's path; inside the container the controller is mounted at its root.
    files = {
        "/proc/self/cgroup": "5:memory:/docker/3f2a\n4:cpu,cpuacct:/docker/3f2a\n0::/\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "400000\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    }
    budget = collect_budget(probes(files, affinity=32))
    assert (budget.cgroup_version, budget.cgroup_quota_cpus, budget.usable_cpus) == (1, 4.0, 4)


def test_cgroup_v1_parent_quota_applies_when_the_leaf_has_none():
    files = {
        "/proc/self/cgroup": "4:cpu,cpuacct:/kubepods/pod1/c2\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c2/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c2/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us": "300000\n",
        "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    }
    budget = collect_budget(probes(files, affinity=64, torch_threads=64))
    assert (budget.cgroup_version, budget.cgroup_quota_cpus, budget.usable_cpus) == (1, 3.0, 3)


def test_cgroup_v1_unlimited():
    files = {
        "/proc/self/cgroup": "1:cpu:/\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    }
    budget = collect_budget(probes(files, affinity=2, torch_threads=2))
    assert (budget.cgroup_version, budget.cgroup_quota_cpus, budget.usable_cpus) == (1, None, 2)


def test_affinity_mask_limits_budget_and_blas_pool_is_warned_about():
    pools = [
        {
            "user_api": "blas",
            "internal_api": "openblas",
            "num_threads": 64,
            "version": "0.3.27",
            "filepath": "/x.so",
        }
    ]
    budget = collect_budget(probes({}, affinity=4, torch_threads=4, pools=pools))
    assert budget.cgroup_version is None and "cgroup" in budget.missing["cgroup_version"]
    assert budget.usable_cpus == 4
    (warning,) = budget.warnings
    assert "openblas (blas) uses 64 threads" in warning and "OMP_NUM_THREADS=4" in warning


def test_no_affinity_on_macos():
    budget = collect_budget(probes({}, affinity=None, cpus=10, torch_threads=10))
    assert budget.affinity_cpus is None and budget.usable_cpus == 10


@pytest.mark.parametrize(
    ("text", "cpus"), [("max 100000", None), ("50000 100000", 0.5), ("200000 50000", 4.0)]
)
def test_parse_cpu_max(text, cpus):
    assert parse_cgroup_v2_max(text) == cpus


def test_this_process():
    budget = collect_budget(default_probes())
    if hasattr(os, "sched_getaffinity"):
        assert budget.affinity_cpus == len(os.sched_getaffinity(0))
    assert budget.torch_threads == torch.get_num_threads()
    assert 1 <= budget.usable_cpus <= (os.cpu_count() or 1)
    assert any(pool.api == "openmp" for pool in budget.thread_pools)  # torch's OpenMP runtime is loaded


def test_torchs_own_openmp_pool_is_not_warned_about_twice():
    pools = [{"user_api": "openmp", "internal_api": "openmp", "num_threads": 8, "filepath": "/t/libgomp.so"}]
    budget = collect_budget(probes({}, affinity=2, torch_threads=8, pools=pools))
    (warning,) = budget.warnings
    assert warning.startswith("torch uses 8 threads") and "OMP_NUM_THREADS=2" in warning
