"""A PNG of where the step's time goes: per layer (forward and backward) and per phase."""

from __future__ import annotations

import io
import os
from pathlib import Path

from devicelab.fsutil import atomic_write_bytes


def profile_png(report) -> bytes:
    """The chart as PNG bytes (matplotlib with the Agg backend, imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report.layers.layers if report.layers is not None else ()
    phases = report.breakdown.phases
    fig, (ax_layers, ax_phases) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.45 * len(layers) + 2.0)))
    names = [layer.name for layer in layers]
    forward = [(layer.forward_s or 0.0) * layer.calls * 1e6 for layer in layers]
    backward = [(layer.backward_s or 0.0) * layer.calls * 1e6 for layer in layers]
    ax_layers.barh(names, forward, label="forward", color="#4c72b0")
    ax_layers.barh(names, backward, left=forward, label="backward", color="#dd8452")
    ax_layers.invert_yaxis()
    ax_layers.set_xlabel("µs per step")
    ax_layers.set_title("Time per layer (module hooks)")
    ax_layers.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)

    phase_names = [p.name for p in phases]
    ax_phases.barh(phase_names, [p.host_s * 1e6 for p in phases], color="#55a868", label="host")
    if any(p.device_s is not None for p in phases):
        ax_phases.barh(
            phase_names,
            [(p.device_s or 0.0) * 1e6 for p in phases],
            height=0.35,
            color="#c44e52",
            label="GPU",
        )
        ax_phases.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    ax_phases.invert_yaxis()
    ax_phases.set_xlabel("µs per step (median)")
    ax_phases.set_title("Time per phase of a training step")
    fig.suptitle(f"devicelab profile — {_title(report)}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _title(report) -> str:
    if hasattr(report, "profiled"):  # a watched program
        return f"{report.profiled.target}, {report.profiled.device}"
    w = report.workload
    return f"{w['dataset']}, batch {w['batch']}, {w['device']}"


def write_profile_png(report, path: str | os.PathLike) -> Path:
    return atomic_write_bytes(path, profile_png(report))
