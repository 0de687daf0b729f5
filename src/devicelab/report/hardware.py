"""The hardware report as terminal text or Markdown (JSON is ``devicelab.hardware.report.to_dict``)."""

from __future__ import annotations

from collections.abc import Callable

from devicelab.hardware.report import CpuInfo, Figure, GpuInfo, HardwareReport
from devicelab.i18n import N_, _, translate
from devicelab.report.tables import format_key_values, format_markdown_table, format_table

Pairs = list[tuple[str, object]]

FIGURE_NAMES = {
    "matmul_fp32": N_("matmul fp32"),
    "matmul_tf32": N_("matmul tf32"),
    "matmul_bf16": N_("matmul bf16"),
    "matmul_fp16": N_("matmul fp16"),
    "memory_bandwidth": N_("memory bandwidth (read+write)"),
    "h2d_pageable": N_("host->device, pageable"),
    "h2d_pinned": N_("host->device, pinned"),
    "d2h_pageable": N_("device->host, pageable"),
    "d2h_pinned": N_("device->host, pinned"),
    "launch_back_to_back": N_("kernel launch, back to back (each)"),
    "launch_and_sync": N_("kernel launch + sync, idle queue"),
    "sync_round_trip": N_("sync round trip (.item())"),
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
    return f"- ({translate(reason)})" if reason else "-"


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else (_("yes") if value else _("no"))


def _mhz(value: object) -> str:
    return f"{value:.0f} MHz"


def cpu_pairs(cpu: CpuInfo) -> Pairs:
    ident = ", ".join(
        part
        for part in (
            cpu.vendor,
            _("family {family}").format(family=cpu.family) if cpu.family is not None else "",
            _("model 0x{model:02X}").format(model=cpu.model) if cpu.model is not None else "",
            _("stepping {stepping}").format(stepping=cpu.stepping) if cpu.stepping is not None else "",
        )
        if part
    )
    caches = ", ".join(
        f"L{c.level}{ {'data': 'd', 'instruction': 'i'}.get(c.kind, '') } {human_bytes(c.size_bytes)}"
        for c in cpu.caches
    )
    pairs: Pairs = [
        (_("model"), _or_reason(cpu, "model_name")),
        (_("vendor"), ident or None),
        (_("microarchitecture"), _or_reason(cpu, "microarchitecture")),
        (_("archspec target"), cpu.archspec_target),
    ]
    if cpu.hypervisor:
        pairs.append((_("virtual machine"), _("yes (hypervisor flag set; it may hide CPU features)")))
    if cpu.model_mismatch:
        pairs.append((_("model vs features"), translate(cpu.model_mismatch)))
    pairs += [
        (_("archspec why-not") if i == 0 else "", translate(note))
        for i, note in enumerate(cpu.archspec_notes)
    ]
    pairs += [
        (
            _("cores / threads"),
            _("{physical} physical, {logical} logical").format(
                physical=cpu.physical_cores, logical=cpu.logical_threads
            ),
        ),
        (_("base clock"), _or_reason(cpu, "base_mhz", _mhz)),
        (_("max clock"), _or_reason(cpu, "max_mhz", _mhz)),
        (_("caches"), caches or None),
        (_("DL instructions"), " ".join(cpu.isa) if cpu.isa else _or_reason(cpu, "isa")),
    ]
    return pairs


def memory_pairs(report: HardwareReport) -> Pairs:
    return [
        (_("total"), human_bytes(report.memory.total_bytes)),
        (_("available"), human_bytes(report.memory.available_bytes)),
    ]


def budget_pairs(report: HardwareReport) -> Pairs:
    b = report.budget
    quota = (
        _("{cpus:g} CPUs (cgroup v{version})").format(cpus=b.cgroup_quota_cpus, version=b.cgroup_version)
        if b.cgroup_quota_cpus
        else _("none")
    )
    pairs: Pairs = [
        (
            _("affinity"),
            _("{n} CPUs").format(n=b.affinity_cpus)
            if b.affinity_cpus is not None
            else _or_reason(b, "affinity_cpus"),
        ),
        (_("cgroup quota"), quota if b.cgroup_version else _or_reason(b, "cgroup_version")),
        (_("usable CPUs"), b.usable_cpus),
        (
            _("torch threads"),
            _("{intra} intra-op, {inter} inter-op").format(
                intra=b.torch_threads, inter=b.torch_interop_threads
            ),
        ),
    ]
    pairs += [
        (
            _("{api} pool").format(api=p.api),
            _("{library} {version} {n} threads")
            .format(library=p.library, version=p.version or "", n=p.num_threads)
            .replace("  ", " "),
        )
        for p in b.thread_pools
    ]
    pairs += [(_("WARNING"), translate(w)) for w in b.warnings]
    return pairs


def software_pairs(report: HardwareReport) -> Pairs:
    s = report.software
    return [
        ("python", s.python),
        ("os", s.os),
        ("devicelab", s.devicelab),
        ("torch", s.torch),
        ("CUDA (torch)", s.torch_cuda or _("- (not a CUDA build)")),
        ("cuDNN (torch)", s.cudnn),
        ("ROCm (torch)", s.torch_hip),
        (_("NVIDIA driver"), f"{s.nvidia_driver} (CUDA {s.driver_cuda})" if s.nvidia_driver else None),
        (_("torch CPU kernels"), s.torch_cpu_capability),
        ("oneDNN", _yes_no(s.mkldnn)),
        ("numpy", s.numpy),
    ]


def gpu_pairs(gpu: GpuInfo) -> Pairs:
    cc = gpu.compute_capability
    pcie = None
    if gpu.pcie_generation is not None:
        pcie = f"gen {gpu.pcie_generation} x{gpu.pcie_width} (max gen {gpu.pcie_generation_max} x{gpu.pcie_width_max})"
    pairs: Pairs = [
        (_("name"), gpu.name),
        (
            _("memory total / free"),
            f"{human_bytes(gpu.total_memory_bytes)} / {_or_reason(gpu, 'free_memory_bytes', human_bytes)}",
        ),
        (
            _("architecture"),
            _("{arch} (compute capability {cc})").format(arch=gpu.architecture or "?", cc=cc)
            if cc
            else gpu.architecture,
        ),
        ("SMs" if gpu.backend == "cuda" else _("compute units"), gpu.sm_count),
        (
            _("SM clock / max"),
            f"{_or_reason(gpu, 'sm_clock_mhz', _mhz)} / {_or_reason(gpu, 'sm_clock_max_mhz', _mhz)}",
        ),
        (
            _("memory clock max, bus"),
            f"{_or_reason(gpu, 'memory_clock_max_mhz', _mhz)}, "
            + (f"{gpu.memory_bus_width_bits}-bit" if gpu.memory_bus_width_bits else _("bus width unknown")),
        ),
        (_("power limit"), _or_reason(gpu, "power_limit_w", lambda w: f"{w:.0f} W")),
        ("PCIe", pcie or _or_reason(gpu, "pcie_generation")),
        (_("in torch arch list"), _yes_no(gpu.in_torch_arch_list)),
        (_("native matmul dtypes"), " ".join(gpu.native_dtypes) or "-"),
    ]
    pairs += [
        (_("peak {what}").format(what=p.what.replace("_", " ")), f"{p.value:.4g} {p.unit} ({p.basis})")
        for p in gpu.peaks
    ]
    return pairs


def figure_rows(figures: tuple[Figure, ...]) -> list[list[object]]:
    rows = []
    for f in figures:
        pct = f"{100 * f.median / f.peak:.0f}%" if f.peak else None
        spread = f"{f.low:.4g}-{f.high:.4g}" + (" " + _("noisy") if f.noisy else "")
        rows.append(
            [
                f.device,
                _(FIGURE_NAMES[f.what]) if f.what in FIGURE_NAMES else f.what,
                f"{f.median:.4g}",
                spread,
                f.unit,
                f.size,
                f"{f.peak:.4g}" if f.peak else None,
                pct,
            ]
        )
    return rows


FIGURE_HEADERS = [
    N_("device"),
    N_("measured"),
    N_("median"),
    N_("quartiles"),
    N_("unit"),
    N_("size"),
    N_("peak"),
    N_("of peak"),
]


def _sections(report: HardwareReport) -> list[tuple[str, Pairs]]:
    sections = [
        ("CPU", cpu_pairs(report.cpu)),
        (_("Memory"), memory_pairs(report)),
        (_("CPU budget"), budget_pairs(report)),
        (_("Software"), software_pairs(report)),
    ]
    sections += [(f"GPU {gpu.device}", gpu_pairs(gpu)) for gpu in report.gpus]
    return sections


def doctor_lines(report: HardwareReport) -> list[str]:
    doctor = report.doctor
    lines = []
    if not report.gpus:
        reason = translate(doctor.findings[0].problem) if doctor.findings else _("torch finds no accelerator")
        lines.append(_("no GPU: {reason}").format(reason=reason))
    elif doctor.accelerator:
        lines.append(_("devicelab will use {device}").format(device=doctor.accelerator))
    for i, finding in enumerate(doctor.findings):
        if i or report.gpus:
            lines.append(_("problem: {problem}").format(problem=translate(finding.problem)))
        lines.append(_("fix: {fix}").format(fix=translate(finding.fix)))
    return lines


def format_terminal(report: HardwareReport) -> str:
    blocks = [f"{title}\n{format_key_values(pairs)}" for title, pairs in _sections(report)]
    blocks.append(_("Accelerator") + "\n" + "\n".join(f"  {line}" for line in doctor_lines(report)))
    if report.measurements:
        headers = [_(h) for h in FIGURE_HEADERS]
        table = format_table(figure_rows(report.measurements), headers, indent="  ")
        blocks.append(_("Measured (median and quartiles over repeats)") + f"\n{table}")
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
