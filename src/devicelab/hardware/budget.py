"""The CPU budget this process really has (affinity mask, cgroup quota) next to the threads it will start.

A container limited to 2 CPUs on a 64-core host still sees 64 cores in ``os.cpu_count()``; torch and BLAS then
start 64 threads that fight over 2 CPUs, and small operations get many times slower.
"""

from __future__ import annotations

import math

from devicelab.hardware.probes import Probes
from devicelab.hardware.report import CpuBudget, ThreadPool


def parse_cgroup_v2_max(text: str) -> float | None:
    """``cpu.max`` ("max 100000" or "200000 100000") -> CPUs, None for no limit."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    return int(parts[0]) / int(parts[1])


def _cgroup_paths(probes: Probes) -> dict[str, str]:
    """Controller name -> this process's cgroup path, from /proc/self/cgroup ("" is the v2 unified entry)."""
    paths = {}
    for line in (probes.read_file("/proc/self/cgroup") or "").splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a', ''] (a parent's limit applies to its children too)."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) if i else "" for i in range(len(parts), -1, -1)]


def cgroup_quota(probes: Probes) -> tuple[int | None, float | None]:
    """(cgroup version, CPUs allowed by the tightest quota or None) for this process."""
    paths = _cgroup_paths(probes)
    if "" in paths:
        limits = [probes.read_file(f"/sys/fs/cgroup{p}/cpu.max") for p in _ancestors(paths[""])]
        found = [parse_cgroup_v2_max(text) for text in limits if text is not None]
        if found:
            quotas = [q for q in found if q is not None]
            return 2, min(quotas) if quotas else None
    if "cpu" in paths:
        for mount in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"):
            found = [_v1_cpus(probes, f"{mount}{path}") for path in _ancestors(paths["cpu"])]
            found = [cpus for cpus in found if cpus is not None]
            if found:  # a parent's quota applies to its children too: the tightest wins
                return 1, min(found) if min(found) != math.inf else None
    return None, None


def _v1_cpus(probes: Probes, folder: str) -> float | None:
    """CPUs one cgroup v1 folder allows (``inf`` for no quota, -1), None when its files are not there."""
    quota = probes.read_file(f"{folder}/cpu.cfs_quota_us")
    period = probes.read_file(f"{folder}/cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    q, p = int(quota), int(period)
    return q / p if q > 0 and p > 0 else math.inf


def _thread_pools(probes: Probes) -> tuple[ThreadPool, ...]:
    return tuple(
        ThreadPool(
            api=info.get("user_api", "?"),
            library=info.get("internal_api", "?"),
            version=info.get("version"),
            num_threads=int(info.get("num_threads", 0)),
            path=info.get("filepath", ""),
        )
        for info in probes.thread_pools()
    )


def budget_warnings(usable: int, torch_threads: int | None, pools: tuple[ThreadPool, ...]) -> tuple[str, ...]:
    warnings = []
    if torch_threads is not None and torch_threads > usable:
        warnings.append(
            f"torch uses {torch_threads} threads but this process may use only {usable} CPU(s): "
            f"call torch.set_num_threads({usable}) or set OMP_NUM_THREADS={usable}"
        )
    for pool in pools:
        if warnings and pool.api == "openmp" and pool.num_threads == torch_threads:
            continue  # torch's own OpenMP pool: the warning above already says it, with the same fix
        if pool.num_threads > usable:
            warnings.append(
                f"{pool.library} ({pool.api}) uses {pool.num_threads} threads but this process may use only "
                f"{usable} CPU(s): set OMP_NUM_THREADS={usable} (threadpoolctl.threadpool_limits in code)"
            )
    return tuple(warnings)


def collect_budget(probes: Probes) -> CpuBudget:
    missing = {}
    affinity = probes.affinity()
    if affinity is None:
        missing["affinity_cpus"] = "this system has no CPU affinity mask (macOS)"
    version, quota = cgroup_quota(probes)
    if version is None:
        missing["cgroup_version"] = "no cgroup CPU controller found (not Linux, or not mounted)"
    logical = probes.psutil.cpu_count(logical=True) or 1
    usable = min(affinity or logical, math.ceil(quota) if quota else logical)
    usable = max(1, usable)
    torch = probes.torch
    torch_threads = int(torch.get_num_threads())
    pools = _thread_pools(probes)
    return CpuBudget(
        affinity_cpus=affinity,
        cgroup_version=version,
        cgroup_quota_cpus=quota,
        usable_cpus=usable,
        torch_threads=torch_threads,
        torch_interop_threads=int(torch.get_num_interop_threads()),
        thread_pools=pools,
        warnings=budget_warnings(usable, torch_threads, pools),
        missing=missing,
    )
