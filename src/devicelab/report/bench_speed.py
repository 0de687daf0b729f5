"""``bench speed`` results as a terminal report, JSON, Markdown and a bar chart (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path

from devicelab.bench.speed import LOSS_RTOL, Cell, Result
from devicelab.bench.speed_rows import LESSON_DEFAULT_THREADS, Size
from devicelab.report.tables import format_key_values, format_markdown_table, format_table

HEADERS = (
    "row",
    "ran",
    "threads",
    "µs/epoch",
    "IQR µs",
    "x lesson",
    "set-up s",
    "cold s",
    "final loss",
    "Δ loss",
)
LOAD_HEADER = "load slowdown"


def _ratio(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}x"


def _seconds(value: float | None) -> str | None:
    return None if not value else f"{value:.2f}"


def cell_row(result: Result, c: Cell) -> list[object]:
    if not c.ok:
        row = [c.label, c.status, *[None] * (len(HEADERS) - 2)]
    else:
        difference = result.loss_difference(c)
        flag = "" if difference is None or result.agrees(c) else " !"
        row = [
            c.label,
            c.path,
            c.threads,
            f"{c.us_per_epoch:.1f}",
            f"{c.us_per_epoch_iqr:.1f}",
            _ratio(result.ratio(c)),
            _seconds(c.setup_s),
            _seconds(c.cold_setup_s),
            f"{c.final_loss:.6f}",
            None if c.row == "lesson" or difference is None else f"{difference:.1e}{flag}",
        ]
    if result.spec.under_load:
        row.append(_ratio(c.load_slowdown))
    return row


def headers(result: Result) -> tuple[str, ...]:
    return (*HEADERS, LOAD_HEADER) if result.spec.under_load else HEADERS


def groups(result: Result) -> list[tuple[str, Size, list[Cell]]]:
    return [(d, s, result.group(d, s)) for d in result.spec.devices for s in result.spec.sizes]


def describe_size(result: Result, size: Size) -> str:
    cfg = result.config
    hidden = ",".join(str(h * size.width) for h in cfg["hidden"])
    rows = f", training rows x{size.batch}" if size.batch != 1 else ""
    return f"{size.label}: hidden {hidden}{rows}"


def agreement(result: Result, cells: list[Cell]) -> str:
    """One line: do the final losses agree with the lesson's to LOSS_RTOL?"""
    compared = [c for c in cells if c.ok and c.row != "lesson" and result.loss_difference(c) is not None]
    if not compared:
        return "final loss: nothing to compare with the lesson's loop"
    worst = max(result.loss_difference(c) for c in compared)
    off = [c for c in compared if not result.agrees(c)]
    if not off:
        return (
            f"final loss: all {len(compared)} rows agree with the lesson's loop to {LOSS_RTOL:g} relative "
            f"(largest difference {worst:.1e})"
        )
    listing = ", ".join(
        f"{c.label} {result.loss_difference(c):.1e}" + ("" if c.same_init else " (own initial weights)")
        for c in off
    )
    return f"final loss: DISAGREES with the lesson's loop by more than {LOSS_RTOL:g} relative: {listing}"


def notes(cells: list[Cell]) -> list[str]:
    """Why rows did not run, what devicelab's rows ran and why, and which rows were noisy."""
    noisy = [c.label for c in cells if c.ok and c.times.noisy]
    lines = (
        [f"noisy (IQR above 10% of the median; more --repeats or a quieter machine): {', '.join(noisy)}"]
        if noisy
        else []
    )
    for c in cells:
        if not c.ok:
            lines.append(f"{c.label}: {c.status}" + (f" ({c.note})" if c.note else ""))
        elif c.kind == "devicelab" and c.path_reason:
            lines.append(f"{c.label} ran {c.path}: {c.path_reason}")
        elif c.kind == "peer" and c.path_reason:
            lines.append(f"{c.label}: {c.path_reason}" + ("" if c.same_init else "; own initial weights"))
    return lines


def setup_pairs(result: Result) -> list[tuple[str, object]]:
    spec, cfg = result.spec, result.config
    hidden = ",".join(str(h) for h in cfg["hidden"])
    pairs: list[tuple[str, object]] = [
        ("workload", f"{cfg['dataset']}, MLP hidden {hidden}, {cfg['optimizer']} lr {cfg['lr']}, full batch"),
        ("epochs per run", spec.epochs),
        (
            "repeats",
            f"{spec.repeats} per row after one {min(spec.epochs, 100)}-epoch warm-up; rows interleaved",
        ),
    ]
    if spec.sizes != (Size(),):
        pairs.append(("sizes", "; ".join(describe_size(result, s) for s in spec.sizes)))
    for device, (threads, why) in result.threads.items():
        pairs.append((f"threads on {device}", f"{threads} ({why})"))
    default = f"{result.default_threads}"
    chosen = {t for d, (t, _) in result.threads.items() if d == "cpu"}
    if chosen and result.default_threads not in chosen and LESSON_DEFAULT_THREADS not in spec.rows:
        default += f" (the lesson's loop with them not run: add --rows ...,{LESSON_DEFAULT_THREADS})"
    pairs.append(("torch default threads", default))
    for device, name in result.device_names.items():
        pairs.append((device, name))
    pairs.append(("torch", result.torch_version))
    if spec.under_load:
        pairs.append(("under load", "each row again beside a process spinning on one core"))
    pairs.append(("wall time", f"{result.wall_s:.1f} s"))
    if result.interrupted:
        pairs.append(("INTERRUPTED", f"after {result.runs_done} of {result.runs_planned} runs"))
    return pairs


def format_report(result: Result) -> str:
    parts = [
        "devicelab bench speed: the lesson's loop vs devicelab's trainer and its peers, same workload",
        format_key_values(setup_pairs(result)),
    ]
    for device, size, cells in groups(result):
        title = f"{device} ({result.device_names.get(device, '')})"
        if result.spec.sizes != (Size(),):
            title += f", size {describe_size(result, size)}"
        block = [title, format_table([cell_row(result, c) for c in cells], headers(result), indent="  ")]
        block += [f"  {agreement(result, cells)}"] + [f"  - {line}" for line in notes(cells)]
        parts.append("\n".join(block))
    parts.append(
        "µs/epoch: median of the training loop alone over the repeats; x lesson: the lesson's median over "
        "the row's (higher is faster); set-up: compile/capture/framework set-up per run, not in µs/epoch "
        "(cold: the first, in the warm-up); Δ loss: relative difference from the lesson's final loss."
    )
    return "\n\n".join(parts)


def cell_json(result: Result, c: Cell) -> dict:
    return {
        "row": c.row,
        "label": c.label,
        "kind": c.kind,
        "device": c.device,
        "size": {"width": c.size.width, "batch": c.size.batch, "label": c.size.label},
        "epochs": c.epochs,
        "threads": c.threads,
        "status": c.status,
        "note": c.note,
        "path": c.path,
        "path_reason": c.path_reason,
        "time": c.times.to_dict() if c.times else None,
        "times_s": list(c.times.times) if c.times else [],
        "us_per_epoch": c.us_per_epoch if c.ok else None,
        "us_per_epoch_iqr": c.us_per_epoch_iqr if c.ok else None,
        "noisy": c.times.noisy if c.times else None,
        "ratio_to_lesson": result.ratio(c),
        "setup_s": c.setup_s,
        "setups_s": list(c.setups),
        "cold_setup_s": c.cold_setup_s,
        "final_loss": c.final_loss,
        "loss_rel_diff": result.loss_difference(c),
        "loss_agrees": result.agrees(c),
        "same_init": c.same_init,
        "loaded_times_s": list(c.loaded.times) if c.loaded else None,
        "load_slowdown": c.load_slowdown,
    }


def to_json(result: Result) -> dict:
    spec = result.spec
    return {
        "spec": {
            "epochs": spec.epochs,
            "repeats": spec.repeats,
            "devices": list(spec.devices),
            "sizes": [{"width": s.width, "batch": s.batch, "label": s.label} for s in spec.sizes],
            "rows": list(spec.rows),
            "threads": spec.threads,
            "under_load": spec.under_load,
            "order_seed": spec.order_seed,
        },
        "config": result.config,
        "threads": {d: {"threads": t, "why": why} for d, (t, why) in result.threads.items()},
        "default_threads": result.default_threads,
        "device_names": result.device_names,
        "torch": result.torch_version,
        "started": result.started,
        "wall_s": result.wall_s,
        "interrupted": result.interrupted,
        "runs_done": result.runs_done,
        "runs_planned": result.runs_planned,
        "loss_rtol": LOSS_RTOL,
        "agreement": [
            {"device": d, "size": s.label, "text": agreement(result, cells)} for d, s, cells in groups(result)
        ],
        "cells": [cell_json(result, c) for c in result.cells],
        "order": [
            {"phase": phase, "repeat": r, "device": d, "size": s, "row": row}
            for phase, r, d, s, row in result.order
        ],
    }


def to_markdown(result: Result, plot: str | None = None) -> str:
    parts = ["# devicelab bench speed", "\n".join(f"- **{k}**: {v}" for k, v in setup_pairs(result))]
    for device, size, cells in groups(result):
        parts.append(
            f"## {device} ({result.device_names.get(device, '')}), size {describe_size(result, size)}"
        )
        parts.append(format_markdown_table([cell_row(result, c) for c in cells], headers(result)))
        parts.append("\n".join([f"- {agreement(result, cells)}", *(f"- {line}" for line in notes(cells))]))
    if plot:
        parts.append(f"![µs per epoch]({plot})")
    return "\n\n".join(parts) + "\n"


def write_plot(result: Result, path: str | os.PathLike) -> Path:
    """Horizontal bars of µs per epoch (log scale, IQR whiskers), one panel per device and size, each bar
    labelled with its ratio to the lesson's loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from devicelab.fsutil import atomic_write

    panels = groups(result)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 0.5 + 0.45 * 8 * len(panels)), squeeze=False)
    for ax, (device, size, cells) in zip(axes[:, 0], panels, strict=True):
        done = [c for c in cells if c.ok][::-1]  # the lesson on top
        y = range(len(done))
        low = [c.us_per_epoch - c.times.q1 / c.epochs * 1e6 for c in done]
        high = [c.times.q3 / c.epochs * 1e6 - c.us_per_epoch for c in done]
        colors = [
            "tab:gray" if c.kind == "lesson" else "tab:blue" if c.kind == "devicelab" else "tab:orange"
            for c in done
        ]
        ax.barh(list(y), [c.us_per_epoch for c in done], xerr=[low, high], color=colors, capsize=3)
        ax.set_yticks(list(y), [f"{c.label} [{c.path}]" if c.kind == "devicelab" else c.label for c in done])
        for i, c in zip(y, done, strict=True):
            ratio = result.ratio(c)
            ax.annotate(
                f"{c.us_per_epoch:.1f} µs" + (f" ({ratio:.2f}x)" if ratio else ""),
                (c.times.q3 / c.epochs * 1e6, i),  # past the whisker
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlabel("µs per epoch (median, IQR whiskers; log scale)")
        title = f"{device} ({result.device_names.get(device, '')})"
        ax.set_title(title + (f", size {size.label}" if result.spec.sizes != (Size(),) else ""), fontsize=9)
        ax.margins(x=0.25)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
