"""``devicelab profile`` as terminal text and JSON (from a ``ProfileReport``; nothing is measured here)."""

from __future__ import annotations

import json
import math

from devicelab.i18n import _, translate
from devicelab.i18n.verdicts import regime_verdict
from devicelab.profile.sync_audit import short_path
from devicelab.report.tables import format_table


def _us(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds * 1e6:,.1f}"


def _pct(fraction: float | None) -> str | None:
    return None if fraction is None or math.isnan(fraction) else f"{fraction * 100:.0f}%"


def _num(value: float | None) -> str | None:
    return None if value is None or math.isnan(value) else f"{value:.3g}"


def _shape(shape) -> str | None:
    return None if shape is None else "[" + ", ".join(str(n) for n in shape) + "]"


def _count(n: float | None) -> str | None:
    if n is None:
        return None
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def format_header(report) -> str:
    w = report.workload
    widths = "-".join(str(n) for n in w["hidden"])
    return (
        f"devicelab profile: {w['dataset']} ({w['task']}), hidden {widths}, batch {w['batch']}, "
        f"{w['optimizer']}, on {w['device']} with {w['threads']} thread(s), torch {w['torch']}\n"
        f"  the eager step for this config: {w['step']}"
        + _train_path(w.get("train_path"))
        + (f"\n  device and threads: {w['device_reason']}" if w.get("device_reason") else "")
    )


def _train_path(path: dict | None) -> str:
    if not path or path["path"] == "eager":
        return ""
    return (
        f"\n  devicelab train runs: {path['reason']}, {path['s_per_epoch'] * 1e6:.1f} µs/epoch; the tables "
        "below profile the eager form of the same step (module hooks see only that one)"
    )


def format_layers(profile) -> str:
    headers = ["layer", "type", "output", "params", "MACs", "forward µs", "share", "backward µs", "share"]
    rows = []
    for layer in profile.layers:
        calls = "" if layer.calls == 1 else f" ×{_count(layer.calls)}"
        rows.append(
            [
                layer.name + calls,
                layer.type,
                _shape(layer.output_shape),
                _count(layer.params),
                _count(layer.macs),
                _us(layer.forward_s),
                _pct(profile.forward_share(layer)),
                _us(layer.backward_s),
                _pct(profile.backward_share(layer)),
            ]
        )
    total = profile.total
    if len(profile.layers) > 1 or profile.layers[0] is not total:
        between_f = _gap(total.forward_s, [(x.forward_s, x.calls) for x in profile.layers])
        between_b = _gap(total.backward_s, [(x.backward_s, x.calls) for x in profile.layers])
        rows.append(["(between layers)", "", "", "", "", _us(between_f), _share(between_f, total.forward_s),
                     _us(between_b), _share(between_b, total.backward_s)])  # fmt: skip
        rows.append(
            [
                "(total)",
                total.type,
                _shape(total.output_shape),
                _count(total.params),
                _count(total.macs),
                _us(total.forward_s),
                _pct(1.0) if total.forward_s else None,
                _us(total.backward_s),
                _pct(1.0) if total.backward_s else None,
            ]
        )
    clock = "CUDA events" if profile.clock == "cuda_events" else "perf_counter"
    title = f"Layers (module hooks; {clock}; median per call over {profile.steps} steps; MACs per call)"
    table = title + "\n" + format_table(rows, headers, indent="  ")
    cost = getattr(profile, "hook_cost", None)
    if cost is not None:  # hooks' own cost, measured on probe modules through the same hooks
        table += (
            f"\n  taken off each call: the hooks' own {_us(cost.forward_s)} µs forward "
            f"({_us(cost.forward_no_grad_s)} on inputs without gradient), {_us(cost.backward_s)} µs backward, "
            f"measured on probe modules through the same hooks"
        )
    return table


def _gap(total: float | None, parts: list[tuple[float | None, float]]) -> float | None:
    if total is None or any(t is None for t, _ in parts):
        return None
    return max(0.0, total - sum(t * calls for t, calls in parts))  # the total holds its layers (collect)


def _share(part: float | None, total: float | None) -> str | None:
    return _pct(part / total) if part is not None and total else None


def format_activations(profile) -> str:
    headers = ["layer", "mean", "std", "zeros", "dead units", "non-finite"]
    rows = []
    for layer in profile.layers:  # the model's own output is its last layer's: no total row to repeat it
        s = layer.stats
        if s is None:
            rows.append([layer.name, None, None, None, None, None])
            continue
        rows.append(
            [layer.name, _num(s.mean), _num(s.std), _pct(s.zero_fraction), _pct(s.dead_fraction),
             _pct(s.nonfinite_fraction)]
        )  # fmt: skip
    title = "Activations (one forward; dead units: zero for every row of the batch)"
    return title + "\n" + format_table(rows, headers, indent="  ")


def format_breakdown(breakdown) -> str:
    on_gpu = any(p.device_s is not None for p in breakdown.phases)
    headers = ["phase", "host µs", "share", *(["GPU µs"] if on_gpu else [])]
    rows = [
        [p.name, _us(p.host_s), _pct(breakdown.share(p)), *([_us(p.device_s)] if on_gpu else [])]
        for p in breakdown.phases
    ]
    lines = [
        f"Step breakdown (mean of {breakdown.steps} watched steps; the real step takes "
        f"{_us(breakdown.step_s)} µs, IQR {_us(breakdown.step_iqr_s)})",
        format_table(rows, headers, indent="  "),
    ]
    if breakdown.launches is not None:
        lines.append(f"  {_count(breakdown.launches.operators)} operators per step (torch.profiler)")
    if breakdown.launches is not None and breakdown.launches.kernels is not None:
        lines.append(
            f"  GPU: {_count(breakdown.launches.kernels)} kernels and copies per step, busy "
            f"{_us(breakdown.launches.gpu_busy_s)} µs of the {_us(breakdown.step_s)} µs step "
            f"({_pct(breakdown.gpu_busy_fraction)})"
        )
    return "\n".join(lines)


def format_audits(audits) -> str:
    if not audits:
        return ""
    device = audits[0].device
    what = (
        "calls that would sync on a GPU; on the CPU nothing waits"
        if audits[0].detectors == ("calls",)
        else "wrapped calls and CUDA's sync debug mode"
    )
    headers = ["loop", "syncs", "where", "kind", "code"]
    rows = []
    for audit in audits:
        if not audit.sites:
            rows.append([audit.loop, 0, "-", "-", "-"])
        for site in audit.sites:
            code = site.code.split("  #")[0]
            rows.append(
                [audit.loop, site.count, f"{short_path(site.file)}:{site.line}", site.kind, code[:60]]
            )
    summary = "; ".join(f"{a.loop}: {a.total()} in {a.steps} steps" for a in audits)
    title = f"Sync audit on {device}, {audits[0].steps} steps per loop ({what})"
    return title + "\n" + format_table(rows, headers, indent="  ") + f"\n  {summary}"


def format_regime(probe) -> str:
    r = probe.regime
    headers = [_("size"), _("batch"), _("hidden"), "MACs", _("best µs/step"), _("median"), "IQR"]
    rows = [
        [p.label, p.batch, ",".join(str(h) for h in p.hidden), _count(p.macs), _us(p.seconds),
         _us(p.median_s), _us(p.iqr_s)]
        for p in probe.points
    ]  # fmt: skip
    lines = [
        regime_verdict(
            {
                "verdict": r.verdict,
                "fixed_share": r.fixed_share,
                "fixed_s": r.fixed_s,
                "work_growth": r.work_growth,
                "time_growth": r.time_growth,
            }
        ),
        format_table(rows, headers, indent="  "),
    ]
    if probe.skipped:
        skipped = ", ".join(probe.skipped)
        lines.append("  " + _("not run (over the memory budget of one step): {sizes}").format(sizes=skipped))
    if probe.suggestions:
        lines.append("  " + _("What helps here:"))
        lines += [f"    - {translate(tip)}" for tip in probe.suggestions]
    return "\n".join(lines)


def format_report(report) -> str:
    parts = [
        format_header(report),
        format_layers(report.layers),
        format_activations(report.layers),
        format_breakdown(report.breakdown),
        format_audits(report.audits),
    ]
    if report.regime is not None:
        parts.append(format_regime(report.regime))
    return "\n\n".join(p for p in parts if p)


def _clean(value):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(report) -> str:
    return json.dumps(
        _clean({"schema": "devicelab.profile/1", **report.to_dict()}), indent=2, ensure_ascii=False
    )
