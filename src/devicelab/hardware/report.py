"""The hardware report as typed, immutable records: what ``collect()`` returns and ``--json`` writes.

A field that could not be read is ``None``, and the record's ``missing`` maps that field's name to the reason.
``SCHEMA_VERSION`` changes whenever a field is renamed, removed or changes meaning (adding one does not);
``schema.json`` beside this file describes the current version and a test checks real output against it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

SCHEMA_VERSION = 2  # 2: launch_latency became launch_back_to_back, launch_and_sync added

Missing = dict[str, str]  # field name -> why it is None


@dataclass(frozen=True)
class Cache:
    level: int
    kind: str  # "data", "instruction" or "unified"
    size_bytes: int


@dataclass(frozen=True)
class CpuInfo:
    model_name: str | None
    vendor: str | None
    machine: str  # platform.machine(): x86_64, aarch64, arm64, AMD64
    family: int | None
    model: int | None
    stepping: int | None
    microarchitecture: str | None  # from devicelab's family/model table
    archspec_target: str | None  # archspec's name for the newest target this CPU runs
    archspec_notes: tuple[str, ...]  # archspec's why_not for near-miss newer targets
    model_mismatch: (
        str | None
    )  # when the feature flags contradict the family/model name (a VM's model number)
    hypervisor: bool | None
    physical_cores: int | None
    logical_threads: int | None
    base_mhz: float | None
    max_mhz: float | None
    caches: tuple[Cache, ...]
    isa: tuple[str, ...]  # deep-learning-relevant ISA extensions present, e.g. "AVX-512 BF16", "AMX-BF16"
    flags: frozenset[str] = field(default_factory=frozenset, repr=False)  # raw feature flags, not in JSON
    missing: Missing = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int | None
    available_bytes: int | None
    missing: Missing = field(default_factory=dict)


@dataclass(frozen=True)
class ThreadPool:
    api: str  # "blas" or "openmp"
    library: str  # "openblas", "mkl", "openmp", ...
    version: str | None
    num_threads: int
    path: str


@dataclass(frozen=True)
class CpuBudget:
    """How much CPU this process may really use, next to how many threads it will start."""

    affinity_cpus: int | None  # CPUs in this process's affinity mask
    cgroup_version: int | None  # 1, 2 or None when no cgroup CPU controller was found
    cgroup_quota_cpus: float | None  # quota / period; None = no quota
    usable_cpus: int  # min(affinity, ceil(quota)), at least 1
    torch_threads: int | None
    torch_interop_threads: int | None
    thread_pools: tuple[ThreadPool, ...]
    warnings: tuple[str, ...]
    missing: Missing = field(default_factory=dict)


@dataclass(frozen=True)
class SoftwareInfo:
    python: str
    os: str
    devicelab: str
    torch: str | None
    torch_cuda: str | None  # CUDA version torch was built with (torch.version.cuda)
    torch_hip: str | None
    cudnn: str | None  # cuDNN version as loaded by torch
    nvidia_driver: str | None
    driver_cuda: str | None  # the newest CUDA version the driver supports
    torch_cpu_capability: str | None  # the CPU kernels torch dispatches to: DEFAULT, AVX2, AVX512, ...
    mkldnn: bool | None
    mps_built: bool | None
    xpu_built: bool | None
    numpy: str | None
    missing: Missing = field(default_factory=dict)


@dataclass(frozen=True)
class Peak:
    """A theoretical peak computed from the device's own properties."""

    what: str  # "matmul_fp32", "matmul_bf16", "memory_bandwidth", ...
    value: float
    unit: str  # "TFLOP/s" or "GB/s"
    basis: str  # how it was computed, e.g. "132 SMs x 1980 MHz x 4096 FLOP/clock/SM"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    backend: str  # "cuda", "rocm", "mps" or "xpu"
    device: str  # the torch device string: "cuda:0", "mps", "xpu:0"
    name: str | None
    total_memory_bytes: int | None
    free_memory_bytes: int | None
    compute_capability: str | None  # "9.0" on NVIDIA; the gfx target on AMD ("gfx942")
    architecture: str | None  # "Hopper", "CDNA 3", ...
    sm_count: int | None  # streaming multiprocessors (NVIDIA) / compute units (AMD) / EUs (Intel)
    sm_clock_mhz: int | None
    sm_clock_max_mhz: int | None
    memory_clock_max_mhz: int | None
    memory_bus_width_bits: int | None
    power_limit_w: float | None
    pcie_generation: int | None
    pcie_generation_max: int | None
    pcie_width: int | None
    pcie_width_max: int | None
    in_torch_arch_list: bool | None  # does this torch ship kernels for this card?
    native_dtypes: tuple[str, ...]  # dtypes with hardware matmul support: tf32, bf16, fp16, fp8
    peaks: tuple[Peak, ...]
    missing: Missing = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """Why an accelerator is not used, and what to do about it."""

    problem: str
    fix: str


@dataclass(frozen=True)
class Doctor:
    accelerator: str | None  # the device devicelab would use ("cuda:0", "mps"), None = CPU only
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Figure:
    """One measured figure: the median over repeats and its spread (quartiles), in ``unit``."""

    device: str  # "cpu", "cuda:0", ...
    what: (
        str  # "matmul_fp32", "memory_bandwidth", "h2d_pinned", "launch_back_to_back", "sync_round_trip", ...
    )
    unit: str  # "TFLOP/s", "GB/s" or "us"
    median: float
    low: float  # the value at the faster/slower quartile, so that low <= median <= high
    high: float
    repeats: int
    noisy: bool  # spread (IQR) above 10% of the median
    size: str  # what was timed: "n=4096", "64 MiB", "1 element"
    peak: float | None  # the theoretical peak in the same unit, when computable
    peak_basis: str | None


@dataclass(frozen=True)
class HardwareReport:
    schema_version: int
    cpu: CpuInfo
    memory: MemoryInfo
    budget: CpuBudget
    software: SoftwareInfo
    gpus: tuple[GpuInfo, ...]
    doctor: Doctor
    measurements: tuple[Figure, ...] | None  # None unless measured (--measure)
    missing: Missing = field(default_factory=dict)


def to_dict(report: HardwareReport) -> dict:
    """The JSON form: every dataclass field except the raw CPU flags; tuples become lists."""

    def convert(value):
        if dataclasses.is_dataclass(value):
            return {
                f.name: convert(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.name != "flags"
            }
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(report)
