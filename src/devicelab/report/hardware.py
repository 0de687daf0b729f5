"""The hardware report as terminal text or Markdown (JSON is ``devicelab.hardware.report.to_dict``)."""

from __future__ import annotations

from collections.abc import Callable

from devicelab.hardware.report import CpuInfo, Figure, GpuInfo, HardwareReport
from devicelab.report.tables import format_key_values, format_markdown_table, format_table

Pairs = list[tuple[str, object]]

FIGURE_NAMES = {
    "matmul_fp32": "matmul fp32",
    "matmul_tf32": "matmul tf32",
    "matmul_bf16": "matmul bf16",
    "matmul_fp16": "matmul fp16",
    "memory_bandwidth": "memory bandwidth (read+write)",
    "h2d_pageable": "host->device, pageable",
    "h2d_pinned": "host->device, pinned",
    "d2h_pageable": "device->host, pageable",
    "d2h_pinned": "device->host, pinned",
    "launch_back_to_back": "kernel launch, back to back (each)",
    "launch_and_sync": "kernel launch + sync, idle queue",
    "sync_round_trip": "sync round trip (.item())",
}


def human_bytes(n: float | None) -> str | None:
    if n is None:
        return None
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return None


def _or_reason(record, field: str, fmt: Callable[[object], str] = str) -> str:
    value = getattr(record, field)
    if value is not None:
        return fmt(value)
    reason = record.missing.get(field)
    return f"- ({reason})" if reason else "-"


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _mhz(value: object) -> str:
    return f"{value:.0f} MHz"


def cpu_pairs(cpu: CpuInfo) -> Pairs:
    ident = ", ".join(
        part
        for part in (
            cpu.vendor,
            f"family {cpu.family}" if cpu.family is not None else "",
            f"model 0x{cpu.model:02X}" if cpu.model is not None else "",
            f"stepping {cpu.stepping}" if cpu.stepping is not None else "",
        )
        if part
    )
    caches = ", ".join(
        f"L{c.level}{ {'data': 'd', 'instruction': 'i'}.get(c.kind, '') } {human_bytes(c.size_bytes)}"
        for c in cpu.caches
    )
    pairs: Pairs = [
        ("model", _or_reason(cpu, "model_name")),
        ("vendor", ident or None),
        ("microarchitecture", _or_reason(cpu, "microarchitecture")),
        ("archspec target", cpu.archspec_target),
    ]
    if cpu.hypervisor:
        pairs.append(("virtual machine", "yes (hypervisor flag set; it may hide CPU features)"))
    if cpu.model_mismatch:
        pairs.append(("model vs features", cpu.model_mismatch))
    pairs += [("archspec why-not" if i == 0 else "", note) for i, note in enumerate(cpu.archspec_notes)]
    pairs += [
        ("cores / threads", f"{cpu.physical_cores} physical, {cpu.logical_threads} logical"),
        ("base clock", _or_reason(cpu, "base_mhz", _mhz)),
        ("max clock", _or_reason(cpu, "max_mhz", _mhz)),
        ("caches", caches or None),
        ("DL instructions", " ".join(cpu.isa) if cpu.isa else _or_reason(cpu, "isa")),
    ]
    return pairs


def memory_pairs(report: HardwareReport) -> Pairs:
    return [
        ("total", human_bytes(report.memory.total_bytes)),
        ("available", human_bytes(report.memory.available_bytes)),
    ]


def budget_pairs(report: HardwareReport) -> Pairs:
    b = report.budget
    quota = f"{b.cgroup_quota_cpus:g} CPUs (cgroup v{b.cgroup_version})" if b.cgroup_quota_cpus else "none"
    pairs: Pairs = [
        (
            "affinity",
            f"{b.affinity_cpus} CPUs" if b.affinity_cpus is not None else _or_reason(b, "affinity_cpus"),
        ),
        ("cgroup quota", quota if b.cgroup_version else _or_reason(b, "cgroup_version")),
        ("usable CPUs", b.usable_cpus),
        ("torch threads", f"{b.torch_threads} intra-op, {b.torch_interop_threads} inter-op"),
    ]
    pairs += [
        (f"{p.api} pool", f"{p.library} {p.version or ''} {p.num_threads} threads".replace("  ", " "))
        for p in b.thread_pools
    ]
    pairs += [("WARNING", w) for w in b.warnings]
    return pairs


def software_pairs(report: HardwareReport) -> Pairs:
    s = report.software
    return [
        ("python", s.python),
        ("os", s.os),
        ("devicelab", s.devicelab),
        ("torch", s.torch),
        ("CUDA (torch)", s.torch_cuda or "- (not a CUDA build)"),
        ("cuDNN (torch)", s.cudnn),
        ("ROCm (torch)", s.torch_hip),
        ("NVIDIA driver", f"{s.nvidia_driver} (CUDA {s.driver_cuda})" if s.nvidia_driver else None),
        ("torch CPU kernels", s.torch_cpu_capability),
        ("oneDNN", _yes_no(s.mkldnn)),
        ("numpy", s.numpy),
    ]


def gpu_pairs(gpu: GpuInfo) -> Pairs:
    cc = gpu.compute_capability
    pcie = None
    if gpu.pcie_generation is not None:
        pcie = f"gen {gpu.pcie_generation} x{gpu.pcie_width} (max gen {gpu.pcie_generation_max} x{gpu.pcie_width_max})"
    pairs: Pairs = [
        ("name", gpu.name),
        (
            "memory total / free",
            f"{human_bytes(gpu.total_memory_bytes)} / {_or_reason(gpu, 'free_memory_bytes', human_bytes)}",
        ),
        ("architecture", f"{gpu.architecture or '?'} (compute capability {cc})" if cc else gpu.architecture),
        ("SMs" if gpu.backend == "cuda" else "compute units", gpu.sm_count),
        (
            "SM clock / max",
            f"{_or_reason(gpu, 'sm_clock_mhz', _mhz)} / {_or_reason(gpu, 'sm_clock_max_mhz', _mhz)}",
        ),
        (
            "memory clock max, bus",
            f"{_or_reason(gpu, 'memory_clock_max_mhz', _mhz)}, "
            + (f"{gpu.memory_bus_width_bits}-bit" if gpu.memory_bus_width_bits else "bus width unknown"),
        ),
        ("power limit", _or_reason(gpu, "power_limit_w", lambda w: f"{w:.0f} W")),
        ("PCIe", pcie or _or_reason(gpu, "pcie_generation")),
        ("in torch arch list", _yes_no(gpu.in_torch_arch_list)),
        ("native matmul dtypes", " ".join(gpu.native_dtypes) or "-"),
    ]
    pairs += [(f"peak {p.what.replace('_', ' ')}", f"{p.value:.4g} {p.unit} ({p.basis})") for p in gpu.peaks]
    return pairs


def figure_rows(figures: tuple[Figure, ...]) -> list[list[object]]:
    rows = []
    for f in figures:
        pct = f"{100 * f.median / f.peak:.0f}%" if f.peak else None
        spread = f"{f.low:.4g}-{f.high:.4g}" + (" noisy" if f.noisy else "")
        rows.append(
            [
                f.device,
                FIGURE_NAMES.get(f.what, f.what),
                f"{f.median:.4g}",
                spread,
                f.unit,
                f.size,
                f"{f.peak:.4g}" if f.peak else None,
                pct,
            ]
        )
    return rows


FIGURE_HEADERS = ["device", "measured", "median", "quartiles", "unit", "size", "peak", "of peak"]


def _sections(report: HardwareReport) -> list[tuple[str, Pairs]]:
    sections = [
        ("CPU", cpu_pairs(report.cpu)),
        ("Memory", memory_pairs(report)),
        ("CPU budget", budget_pairs(report)),
        ("Software", software_pairs(report)),
    ]
    sections += [(f"GPU {gpu.device}", gpu_pairs(gpu)) for gpu in report.gpus]
    return sections


def doctor_lines(report: HardwareReport) -> list[str]:
    doctor = report.doctor
    lines = []
    if not report.gpus:
        reason = doctor.findings[0].problem if doctor.findings else "torch finds no accelerator"
        lines.append(f"no GPU: {reason}")
    elif doctor.accelerator:
        lines.append(f"devicelab will use {doctor.accelerator}")
    for i, finding in enumerate(doctor.findings):
        if i or report.gpus:
            lines.append(f"problem: {finding.problem}")
        lines.append(f"fix: {finding.fix}")
    return lines


def format_terminal(report: HardwareReport) -> str:
    blocks = [f"{title}\n{format_key_values(pairs)}" for title, pairs in _sections(report)]
    blocks.append("Accelerator\n" + "\n".join(f"  {line}" for line in doctor_lines(report)))
    if report.measurements:
        table = format_table(figure_rows(report.measurements), FIGURE_HEADERS, indent="  ")
        blocks.append(f"Measured (median and quartiles over repeats)\n{table}")
    return "\n\n".join(blocks) + "\n"


def format_markdown(report: HardwareReport) -> str:
    blocks = [f"## devicelab info (schema {report.schema_version})"]
    for title, pairs in _sections(report):
        rows = [[key, value] for key, value in pairs]
        blocks.append(f"### {title}\n\n{format_markdown_table(rows, ['', 'value'])}")
    blocks.append("### Accelerator\n\n" + "\n".join(f"- {line}" for line in doctor_lines(report)))
    if report.measurements:
        table = format_markdown_table(figure_rows(report.measurements), FIGURE_HEADERS)
        blocks.append(f"### Measured (median and quartiles over repeats)\n\n{table}")
    return "\n\n".join(blocks) + "\n"
