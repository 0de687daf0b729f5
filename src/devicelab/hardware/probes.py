"""Every side effect the hardware collection has, in one object, so tests can pass in fakes.

Like ``run_lambda`` in torch's ``collect_env``: the probes in cpu.py, gpu.py, budget.py and software.py read
files, run commands and query torch and NVML only through a ``Probes``. ``default_probes()`` is the real machine;
tests build one with ``dataclasses.replace(default_probes(), torch=fake_torch, nvml=...)``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def read_text(path: str) -> str | None:
    """The file's text, or None when it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def run_command(args: Sequence[str], timeout: float = 10.0) -> str | None:
    """The command's stdout, or None when it is missing, fails or hangs."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def affinity_count() -> int | None:
    """How many CPUs this process may run on (its affinity mask), or None where unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    import psutil

    process = psutil.Process()
    if hasattr(process, "cpu_affinity"):  # Windows; macOS has no affinity
        return len(process.cpu_affinity())
    return None


def thread_pools() -> list[dict]:
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded into this process."""
    from threadpoolctl import threadpool_info

    return threadpool_info()


def nvidia_device_visible() -> bool:
    """A cheap hint, without loading NVML, that an NVIDIA driver and GPU exist (Linux device nodes)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/gpus")


def archspec_host() -> str | None:
    """archspec's name for this machine's CPU (used where no flag list is readable: macOS, Windows)."""
    try:
        import archspec.cpu
    except ImportError:  # a dependency, but a broken install should still get a report
        return None
    return archspec.cpu.host().name


def load_nvml() -> Any:
    """pynvml, initialised. Raises when nvidia-ml-py is missing or the NVML library cannot be loaded."""
    import pynvml

    pynvml.nvmlInit()
    return pynvml


@dataclass(frozen=True)
class Probes:
    torch: Any  # the torch module (or a fake with the same attributes)
    psutil: Any
    nvml: Callable[[], Any]  # returns an initialised pynvml-like module; raises when NVML is unusable
    nvidia_hint: Callable[[], bool]  # is an NVIDIA driver visible without asking torch?
    read_file: Callable[[str], str | None]
    run: Callable[[Sequence[str]], str | None]
    affinity: Callable[[], int | None]
    thread_pools: Callable[[], list[dict]]
    archspec: Callable[[], str | None]
    system: str  # platform.system(): Linux, Windows, Darwin
    machine: str  # platform.machine()
    environ: Mapping[str, str]


def default_probes() -> Probes:
    """The real machine. Imports torch and psutil (both needed for any report)."""
    import psutil
    import torch

    return Probes(
        torch=torch,
        psutil=psutil,
        nvml=load_nvml,
        nvidia_hint=nvidia_device_visible,
        read_file=read_text,
        run=run_command,
        affinity=affinity_count,
        thread_pools=thread_pools,
        archspec=archspec_host,
        system=platform.system(),
        machine=platform.machine(),
        environ=os.environ,
    )
