"""``bench logging`` results as a terminal report, JSON, CSV and a Markdown report a student can hand in."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from devicelab.bench.logging_experiment import CellResult, LoggingExperiment
from devicelab.bench.verdict import TITLES, Verdict
from devicelab.i18n import N_, _
from devicelab.i18n.verdicts import explanation_title, outcome_text, verdict_text
from devicelab.report.tables import format_key_values, format_markdown_table, format_table

HEADERS = (
    N_("device"),
    N_("strategy"),
    N_("k"),
    N_("records"),
    N_("syncs"),
    N_("run s"),
    N_("IQR s"),
    N_("µs/epoch"),
    N_("memory MB"),
    N_("mem IQR MB"),
    N_("ETA err s"),
    N_("mean-ETA err s"),
)


def _k(interval: int | None) -> str:
    return "never" if interval is None else str(interval)


def cell_row(c: CellResult) -> list[object]:
    return [
        c.device,
        c.strategy,
        _k(c.interval),
        c.records,
        c.syncs,
        round(c.times.median, 3),
        round(c.times.iqr, 3),
        round(c.us_per_epoch, 1),
        round(c.memory_median / 1e6, 2),
        round(c.memory_iqr / 1e6, 2),
        round(c.eta_smoothed_s, 3),
        round(c.eta_mean_s, 3),
    ]


def setup_pairs(exp: LoggingExperiment) -> list[tuple[str, object]]:
    g, cfg = exp.grid, exp.config
    hidden = ",".join(str(h) for h in cfg["hidden"])
    pairs = [
        (
            _("workload"),
            _("{dataset}, MLP hidden {hidden}, {optimizer} lr {lr}, full batch").format(
                dataset=cfg["dataset"], hidden=hidden, optimizer=cfg["optimizer"], lr=cfg["lr"]
            ),
        ),
        (_("epochs per run"), g.epochs),
        (_("record intervals k"), ", ".join(_k(k) for k in g.intervals)),
        (_("strategies"), ", ".join(g.strategies)),
        (
            _("repeats"),
            _("{repeats} per cell, after one warm-up run; cells interleaved at random").format(
                repeats=g.repeats
            ),
        ),
        (_("order seed"), g.order_seed),
        (_("CPU threads"), g.threads),
        ("torch", exp.torch_version),
    ]
    for cost in exp.sync_costs:
        name = exp.device_names.get(cost.device, "")
        iqr = cost.round_trip.iqr * 1e6
        pairs.append(
            (
                _("one sync on {device}").format(device=cost.device),
                f"{cost.per_sync_s * 1e6:.2f} µs, IQR {iqr:.2f} ({name})",
            )
        )
    pairs.append((_("wall time"), f"{exp.wall_s:.1f} s"))
    if exp.interrupted:
        pairs.append(
            (
                _("INTERRUPTED"),
                _(
                    "after {done} of {planned} runs: {cells} cells have timed runs, some with fewer repeats "
                    "than planned"
                ).format(done=exp.runs_done, planned=exp.runs_planned, cells=len(exp.cells)),
            )
        )
    return pairs


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    lines = []
    for n in sorted({v.explanation for v in verdicts}):
        lines.append(_("Explanation {n}: {title}").format(n=n, title=explanation_title(n, TITLES[n])))
        for v in (v for v in verdicts if v.explanation == n):
            shown = {
                "explanation": n,
                "device": v.device,
                "outcome": v.outcome,
                "text": v.text,
                "figures": v.figures,
            }
            lines.append(f"  [{outcome_text(v.outcome).upper()}] {verdict_text(shown)}")
    return "\n".join(lines)


def format_report(exp: LoggingExperiment, verdicts: Sequence[Verdict]) -> str:
    """The terminal report: setup, one row per cell, then the verdicts."""
    return "\n\n".join(
        [
            _("devicelab bench logging: does recording the loss more often cost time or memory?"),
            format_key_values(setup_pairs(exp)),
            format_table([cell_row(c) for c in exp.cells], [_(h) for h in HEADERS]),
            format_verdicts(verdicts),
        ]
    )


def to_json(exp: LoggingExperiment, verdicts: Sequence[Verdict]) -> dict:
    g = exp.grid
    return {
        "grid": {
            "epochs": g.epochs,
            "intervals": [_k(k) for k in g.intervals],
            "strategies": list(g.strategies),
            "devices": list(g.devices),
            "repeats": g.repeats,
            "order_seed": g.order_seed,
            "threads": g.threads,
        },
        "config": exp.config,
        "torch": exp.torch_version,
        "device_names": exp.device_names,
        "started": exp.started,
        "wall_s": exp.wall_s,
        "interrupted": exp.interrupted,
        "runs_done": exp.runs_done,
        "runs_planned": exp.runs_planned,
        "sync_costs": [c.to_dict() for c in exp.sync_costs],
        "cells": [
            {
                "device": c.device,
                "strategy": c.strategy,
                "interval": _k(c.interval),
                "epochs": c.epochs,
                "records": c.records,
                "syncs": c.syncs,
                "device_syncs": c.device_syncs,
                "time": c.times.to_dict(),
                "times_s": list(c.times.times),
                "us_per_epoch": c.us_per_epoch,
                "us_per_epoch_iqr": c.us_per_epoch_iqr,
                "memory_bytes": list(c.memory_bytes),
                "host_growth_bytes": list(c.host_bytes),
                "device_peak_bytes": None if c.device_bytes is None else list(c.device_bytes),
                "eta_smoothed_error_s": [e.smoothed_s for e in c.eta],
                "eta_mean_error_s": [e.mean_s for e in c.eta],
            }
            for c in exp.cells
        ],
        "order": [{"repeat": r, "device": d, "strategy": s, "interval": _k(k)} for r, d, s, k in exp.order],
        "verdicts": [
            {
                "explanation": v.explanation,
                "title": TITLES[v.explanation],
                "device": v.device,
                "outcome": v.outcome,
                "text": v.text,
                "figures": v.figures,
            }
            for v in verdicts
        ],
    }


CSV_HEADERS = (
    "device",
    "strategy",
    "interval",
    "epochs",
    "records",
    "syncs",
    "device_syncs",
    "repeats",
    "median_s",
    "iqr_s",
    "us_per_epoch",
    "us_per_epoch_iqr",
    "memory_median_bytes",
    "memory_iqr_bytes",
    "eta_smoothed_error_s",
    "eta_mean_error_s",
)


def to_csv(exp: LoggingExperiment) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for c in exp.cells:
        writer.writerow(
            [
                c.device,
                c.strategy,
                _k(c.interval),
                c.epochs,
                c.records,
                c.syncs,
                "" if c.device_syncs is None else c.device_syncs,
                len(c.times.times),
                f"{c.times.median:.6f}",
                f"{c.times.iqr:.6f}",
                f"{c.us_per_epoch:.3f}",
                f"{c.us_per_epoch_iqr:.3f}",
                int(c.memory_median),
                int(c.memory_iqr),
                f"{c.eta_smoothed_s:.6f}",
                f"{c.eta_mean_s:.6f}",
            ]
        )
    return out.getvalue()


def to_markdown(exp: LoggingExperiment, verdicts: Sequence[Verdict], plots: Sequence[str] = ()) -> str:
    """A self-contained report: the question, the setup, the table, the verdicts and the plots."""
    setup = "\n".join(f"- **{k}**: {v}" for k, v in setup_pairs(exp))
    parts = [
        "# Why does recording the loss less often not save time in proportion?",
        "The lesson's homework (day 34): changing how often the loss is recorded (every 100 vs every 2000 "
        "epochs) did not change the training time in proportion. Three explanations were offered; this "
        "report tests each one with measurements made by `devicelab bench logging` on this machine.",
        "## Setup",
        setup,
        "Strategies: `item` = `losses.append(loss.item())` (the lesson); `tensor` = `losses.append(loss)` "
        "(keeps each step's graph); `detach` = `losses.append(loss.detach())`, read at the end; `buffer` = "
        "every loss written into a preallocated device buffer, read at each record point.",
        "## Measurements",
        "Medians over the repeats; IQR = interquartile range. *memory* = growth of the process's resident "
        "memory (plus the device allocator's peak on a GPU) from the start to the end of a run. *ETA err* = "
        "median error of a tqdm-style smoothed remaining-time estimate (and of a cumulative mean) against "
        "the real remaining time.",
        format_markdown_table([cell_row(c) for c in exp.cells], HEADERS),
        "## Verdicts",
    ]
    for n in sorted({v.explanation for v in verdicts}):
        parts.append(f"### Explanation {n}: {TITLES[n]}")
        parts += [f"**{v.outcome}** ({v.device}). {v.text}" for v in verdicts if v.explanation == n]
    if plots:
        parts.append("## Plots")
        parts += [f"![{p}]({p})" for p in plots]
    parts.append(
        "Timings on a shared machine are noisy; the spread is part of the answer. Reproduce with the "
        f"same order seed ({exp.grid.order_seed}) and `devicelab bench logging` options."
    )
    return "\n\n".join(parts) + "\n"
