"""Accelerators: NVIDIA (torch.cuda + NVML), AMD ROCm (torch.cuda on a HIP build), Apple MPS and Intel XPU.

torch says what it can use (properties, arch list); NVML (nvidia-ml-py) adds what torch does not know: free
memory without creating a CUDA context, clocks, power limit, PCIe link, driver. NVML missing or raising on a
call leaves that field None with the NVML error as its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicelab.hardware import gpu_published, gpu_tables
from devicelab.hardware.probes import Probes
from devicelab.hardware.report import GpuInfo, Peak


@dataclass(frozen=True)
class NvmlState:
    """NVML as this process found it: the module, or why it is unusable; plus what it says system-wide."""

    module: Any | None
    error: str | None
    driver: str | None = None
    driver_cuda: str | None = None
    device_names: tuple[str, ...] = ()  # every GPU NVML sees (also the ones torch cannot use)


@dataclass(frozen=True)
class GpuScan:
    gpus: tuple[GpuInfo, ...]
    nvml: NvmlState


class NvmlReader:
    """Calls into NVML, turning each failure into a reason in ``missing`` instead of an exception."""

    def __init__(self, module: Any, missing: dict[str, str]) -> None:
        self.m = module
        self.missing = missing

    def get(self, field: str, name: str, *args):
        function = getattr(self.m, name, None)
        if function is None:
            self.missing[field] = f"this nvidia-ml-py has no {name}"
            return None
        try:
            return function(*args)
        except self.m.NVMLError as error:
            self.missing[field] = f"NVML {name}: {error}"
            return None


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def open_nvml(probes: Probes, want: bool) -> NvmlState:
    if not want:
        return NvmlState(None, "not loaded: no NVIDIA GPU visible")
    try:
        module = probes.nvml()
    except Exception as error:  # ImportError, NVMLError_LibraryNotFound, driver errors: all mean "no NVML"
        return NvmlState(None, f"NVML unavailable: {error}")
    scratch: dict[str, str] = {}
    nvml = NvmlReader(module, scratch)
    count = nvml.get("count", "nvmlDeviceGetCount") or 0
    handles = [nvml.get("handle", "nvmlDeviceGetHandleByIndex", i) for i in range(count)]
    names = tuple(_text(nvml.get("name", "nvmlDeviceGetName", h)) or "?" for h in handles if h is not None)
    cuda = nvml.get("driver_cuda", "nvmlSystemGetCudaDriverVersion")
    return NvmlState(
        module=module,
        error=None,
        driver=_text(nvml.get("driver", "nvmlSystemGetDriverVersion")),
        driver_cuda=f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
        device_names=names,
    )


def _nvml_handle(nvml: NvmlReader, props, index: int, environ) -> Any | None:
    uuid = str(getattr(props, "uuid", "") or "")
    # torch prints the bare UUID; NVML wants "GPU-..." for a whole card and "MIG-..." for a MIG slice.
    names = [uuid] if uuid[:4] in ("GPU-", "MIG-") else [f"GPU-{uuid}", f"MIG-{uuid}"] if uuid else []
    for name in names:
        handle = nvml.get("nvml", "nvmlDeviceGetHandleByUUID", name)
        if handle is not None:
            nvml.missing.pop("nvml", None)
            return handle
    if "CUDA_VISIBLE_DEVICES" in environ:
        nvml.missing["nvml"] = "cannot match torch's device to NVML's under CUDA_VISIBLE_DEVICES"
        return None
    handle = nvml.get("nvml", "nvmlDeviceGetHandleByIndex", index)
    if handle is not None:
        nvml.missing.pop("nvml", None)
    return handle


def _matmul_peaks(
    name: str | None, major: int, minor: int, sms: int | None, sm_mhz: int | None
) -> list[Peak]:
    """NVIDIA's published dense figure where the product is known, else the per-SM formula at the max clock."""
    known = gpu_published.product(name, sms)
    geforce = gpu_published.is_geforce(name)
    rates = gpu_tables.matmul_flop_per_clock(major, minor, geforce)
    peaks = []
    for dtype in ("fp32", "tf32", "bf16", "fp16", "fp8"):
        if known is not None and dtype in known.tflops:
            basis = f"NVIDIA's published dense figure for this product ({known.source})"
            peaks.append(Peak(f"matmul_{dtype}", float(known.tflops[dtype]), "TFLOP/s", basis))
        elif sms and sm_mhz and dtype in rates:
            flop = rates[dtype]
            basis = f"{sms} SMs x {sm_mhz} MHz max SM clock x {flop} FLOP/clock/SM"
            if dtype != "fp32" or geforce:
                # NVIDIA's figures use a boost clock below NVML's maximum: for the tensor cores on every card
                # (H100 SXM: 1830 vs 1980 MHz), and for everything on GeForce cards (RTX 4090: 2520 MHz boost).
                basis += "; an upper bound: NVIDIA's figures use a lower clock"
            if geforce and flop != gpu_tables.sm_flop_per_clock(major, minor)[dtype]:
                basis += "; GeForce: half rate with fp32 accumulation"
            peaks.append(Peak(f"matmul_{dtype}", sms * sm_mhz * 1e6 * flop / 1e12, "TFLOP/s", basis))
    return peaks


def cuda_peaks(
    major: int,
    minor: int,
    sms: int | None,
    sm_mhz: int | None,
    mem_mhz: int | None,
    bus_bits: int | None,
    name: str | None = None,
) -> tuple[Peak, ...]:
    """Theoretical peaks of the card ``name`` (as torch and NVML report it) from its SM count and clocks."""
    peaks = _matmul_peaks(name, major, minor, sms, sm_mhz)
    if mem_mhz and bus_bits:
        value = 2 * mem_mhz * 1e6 * bus_bits / 8 / 1e9
        peaks.append(Peak("memory_bandwidth", value, "GB/s", f"2 x {mem_mhz} MHz x {bus_bits}-bit bus"))
    return tuple(peaks)


def _khz_to_mhz(value) -> int | None:
    return int(value) // 1000 if value else None


def cuda_gpu(index: int, probes: Probes, state: NvmlState) -> GpuInfo:
    torch = probes.torch
    props = torch.cuda.get_device_properties(index)
    missing: dict[str, str] = {}
    major, minor = int(props.major), int(props.minor)
    sms = int(props.multi_processor_count)
    nvml = NvmlReader(state.module, missing) if state.module is not None else None
    handle = _nvml_handle(nvml, props, index, probes.environ) if nvml else None
    if nvml is None:
        missing["nvml"] = state.error or "NVML unavailable"

    def read(field: str, name: str, *args):
        if handle is None:
            missing[field] = missing.get("nvml", "no NVML handle for this device")
            return None
        return nvml.get(field, name, handle, *args)

    m = state.module
    memory = read("free_memory_bytes", "nvmlDeviceGetMemoryInfo")
    free = int(memory.free) if memory is not None else None
    if free is None and hasattr(torch.cuda, "mem_get_info"):
        free = int(torch.cuda.mem_get_info(index)[0])  # creates a CUDA context: only without NVML
        missing.pop("free_memory_bytes", None)
    sm_clock = read("sm_clock_mhz", "nvmlDeviceGetClockInfo", getattr(m, "NVML_CLOCK_SM", 1))
    sm_max = read("sm_clock_max_mhz", "nvmlDeviceGetMaxClockInfo", getattr(m, "NVML_CLOCK_SM", 1))
    mem_max = read("memory_clock_max_mhz", "nvmlDeviceGetMaxClockInfo", getattr(m, "NVML_CLOCK_MEM", 2))
    bus = read("memory_bus_width_bits", "nvmlDeviceGetMemoryBusWidth")
    # torch's own properties (newer torch) fill what NVML could not say.
    sm_max = sm_max or _khz_to_mhz(getattr(props, "clock_rate", None))
    mem_max = mem_max or _khz_to_mhz(getattr(props, "memory_clock_rate", None))
    bus = bus or getattr(props, "memory_bus_width", None) or None
    for field, value in (("sm_clock_max_mhz", sm_max), ("memory_clock_max_mhz", mem_max)):
        if value:
            missing.pop(field, None)
    if bus:
        missing.pop("memory_bus_width_bits", None)
    power = read("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit")
    peaks = cuda_peaks(major, minor, sms, sm_max, mem_max, bus, props.name)
    if not peaks:
        missing["peaks"] = (
            "needs a known product, or the maximum SM and memory clocks (NVML) and this compute capability's table"
        )
    return GpuInfo(
        index=index,
        backend="cuda",
        device=f"cuda:{index}",
        name=props.name,
        total_memory_bytes=int(props.total_memory),
        free_memory_bytes=free,
        compute_capability=f"{major}.{minor}",
        architecture=gpu_tables.cuda_architecture(major, minor),
        sm_count=sms,
        sm_clock_mhz=sm_clock,
        sm_clock_max_mhz=sm_max,
        memory_clock_max_mhz=mem_max,
        memory_bus_width_bits=bus,
        power_limit_w=power / 1000 if power is not None else None,
        pcie_generation=read("pcie_generation", "nvmlDeviceGetCurrPcieLinkGeneration"),
        pcie_generation_max=read("pcie_generation_max", "nvmlDeviceGetMaxPcieLinkGeneration"),
        pcie_width=read("pcie_width", "nvmlDeviceGetCurrPcieLinkWidth"),
        pcie_width_max=read("pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth"),
        in_torch_arch_list=gpu_tables.cuda_arch_supported(major, minor, list(torch.cuda.get_arch_list())),
        native_dtypes=gpu_tables.cuda_native_dtypes(major, minor),
        peaks=peaks,
        missing=missing,
    )


_NOT_ON = {
    "sm_clock_mhz": "not reported by ROCm through torch",
    "power_limit_w": "not reported by ROCm through torch",
    "pcie_generation": "not reported by ROCm through torch",
    "peaks": "no per-CU throughput table for AMD GPUs yet",
}


def rocm_gpu(index: int, probes: Probes) -> GpuInfo:
    torch = probes.torch
    props = torch.cuda.get_device_properties(index)
    gfx = gpu_tables.gfx_base(getattr(props, "gcnArchName", "") or "")
    architecture = gpu_tables.amd_architecture(gfx) if gfx else None
    arch_list = [gpu_tables.gfx_base(a) for a in torch.cuda.get_arch_list()]
    free, _total = torch.cuda.mem_get_info(index)
    return GpuInfo(
        index=index,
        backend="rocm",
        device=f"cuda:{index}",
        name=props.name,
        total_memory_bytes=int(props.total_memory),
        free_memory_bytes=int(free),
        compute_capability=gfx or None,
        architecture=architecture,
        sm_count=int(props.multi_processor_count),
        sm_clock_mhz=None,
        sm_clock_max_mhz=_khz_to_mhz(getattr(props, "clock_rate", None)),
        memory_clock_max_mhz=_khz_to_mhz(getattr(props, "memory_clock_rate", None)),
        memory_bus_width_bits=getattr(props, "memory_bus_width", None),
        power_limit_w=None,
        pcie_generation=None,
        pcie_generation_max=None,
        pcie_width=None,
        pcie_width_max=None,
        in_torch_arch_list=(gfx in arch_list) if arch_list and gfx else None,
        native_dtypes=gpu_tables.amd_native_dtypes(architecture),
        peaks=(),
        missing=dict(_NOT_ON),
    )


def _empty_gpu(index: int, backend: str, device: str, name: str, **known) -> GpuInfo:
    fields = dict.fromkeys(GpuInfo.__dataclass_fields__)
    fields.update(
        index=index, backend=backend, device=device, name=name, native_dtypes=(), peaks=(), missing={}
    )
    fields.update(known)
    return GpuInfo(**fields)


def mps_gpu(probes: Probes) -> GpuInfo:
    torch = probes.torch
    mps = getattr(torch, "mps", None)
    recommended = getattr(mps, "recommended_max_memory", None)
    return _empty_gpu(
        0,
        "mps",
        "mps",
        "Apple GPU (Metal Performance Shaders)",
        total_memory_bytes=int(recommended()) if recommended else None,
        architecture="Apple silicon",
        native_dtypes=("bf16", "fp16"),
        missing={
            "total_memory_bytes": "the Metal working-set limit (unified memory)",
            "peaks": "not reported",
        },
    )


def xpu_gpu(index: int, probes: Probes) -> GpuInfo:
    props = probes.torch.xpu.get_device_properties(index)
    return _empty_gpu(
        index,
        "xpu",
        f"xpu:{index}",
        getattr(props, "name", "Intel XPU"),
        total_memory_bytes=getattr(props, "total_memory", None),
        sm_count=getattr(props, "gpu_eu_count", None),
        architecture="Intel Xe",
        native_dtypes=("bf16", "fp16"),
        missing={"peaks": "no per-EU throughput table for Intel GPUs yet"},
    )


def collect_gpus(probes: Probes) -> GpuScan:
    torch = probes.torch
    rocm = getattr(torch.version, "hip", None) is not None
    cuda_ok = bool(torch.cuda.is_available())
    state = open_nvml(probes, want=(cuda_ok and not rocm) or probes.nvidia_hint())
    gpus: list[GpuInfo] = []
    if cuda_ok:
        count = int(torch.cuda.device_count())
        gpus += [rocm_gpu(i, probes) if rocm else cuda_gpu(i, probes, state) for i in range(count)]
    if torch.backends.mps.is_available():
        gpus.append(mps_gpu(probes))
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        gpus += [xpu_gpu(i, probes) for i in range(int(xpu.device_count()))]
    return GpuScan(tuple(gpus), state)
