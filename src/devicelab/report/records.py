"""Small readers of the JSON records devicelab writes (hardware.json, ``info --json``), shared by the
TensorBoard writer and the HTML report: a short hardware summary as (label, value) pairs."""

from __future__ import annotations

from collections.abc import Mapping

from devicelab.i18n import _


def _gib(n: object) -> str | None:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, (int, float)) else None


def hardware_summary(hw: Mapping) -> list[tuple[str, str]]:
    """The few lines that say what a run ran on, from ``info --json`` or a run's hardware.json (either the
    full record or the minimal one written when the hardware probes are not there)."""
    if "cpu" not in hw:  # the minimal record
        pairs = [
            (_("platform"), hw.get("platform")),
            (_("CPU"), hw.get("processor") or hw.get("machine")),
            (_("CPU threads"), hw.get("cpu_count")),
            ("torch", hw.get("torch")),
            (_("GPUs"), ", ".join(hw.get("gpus") or []) or _("none")),
        ]
        return [(k, str(v)) for k, v in pairs if v not in (None, "")]
    cpu, memory, software = hw.get("cpu", {}), hw.get("memory", {}), hw.get("software", {})
    budget = hw.get("budget", {})
    cores = f"{cpu.get('physical_cores') or '?'} / {cpu.get('logical_threads') or '?'}"
    pairs = [
        (_("CPU"), " · ".join(str(x) for x in (cpu.get("model_name"), cpu.get("microarchitecture")) if x)),
        (_("cores / threads"), cores),
        (_("usable CPUs"), budget.get("usable_cpus")),
        (_("DL instructions"), " ".join(cpu.get("isa") or []) or None),
        (_("memory"), _gib(memory.get("total_bytes"))),
        ("torch", software.get("torch")),
        ("CUDA", software.get("torch_cuda")),
        ("OS", software.get("os")),
    ]
    for gpu in hw.get("gpus") or []:
        name = gpu.get("name") or gpu.get("device")
        extra = [gpu.get("architecture"), _gib(gpu.get("total_memory_bytes"))]
        pairs.append(
            (f"GPU {gpu.get('device', '')}".strip(), " · ".join(str(x) for x in (name, *extra) if x))
        )
    if not hw.get("gpus"):
        pairs.append((_("GPUs"), _("none")))
    return [(k, str(v)) for k, v in pairs if v not in (None, "")]
