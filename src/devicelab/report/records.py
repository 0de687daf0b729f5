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


def early_stopping_line(early: Mapping, status: str = "completed") -> str:
    """What early stopping did, from ``RunResult.early_stopping`` or summary.json's ``early_stopping``."""
    values = {
        "loss": early.get("best_val_loss"),
        "epoch": early.get("best_epoch"),
        "stopped": early.get("stopped_epoch"),
        "patience": early.get("patience_log_points"),
    }
    if values["epoch"] is not None and status not in ("completed", "early_stopped"):
        # stopped by the user or a NaN: the model holds the last (good) epoch's weights, not the best
        return _(
            "best validation loss so far {loss:.4f} (epoch {epoch}); the weights are the last epoch's, so the "
            "run can go on; patience {patience} log points"
        ).format(**values)
    if values["epoch"] is None:
        return _("patience {patience} log points; no validation point recorded").format(**values)
    if values["stopped"]:
        return _(
            "stopped at epoch {stopped}, kept the best validation loss {loss:.4f} (epoch {epoch}); patience "
            "{patience} log points"
        ).format(**values)
    return _(
        "kept the best validation loss {loss:.4f} (epoch {epoch}); patience {patience} log points"
    ).format(**values)
