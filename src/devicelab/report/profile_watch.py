"""The screen of a watched program (``devicelab profile SCRIPT.py``, ``devicelab.watch()``,
``profile_step``): header, phases, layers, syncs at the user's lines, the regime and ranked advice,
from a ``WatchReport`` (nothing is measured here)."""

from __future__ import annotations

from devicelab.i18n import _, translate
from devicelab.profile.sync_audit import short_path
from devicelab.report.profile import _num, _pct, _us, format_layers
from devicelab.report.tables import format_table

# -- a watched program (devicelab profile SCRIPT.py, devicelab.watch(), profile_step) ---------------------

STEP_SOURCES = {
    "optimizer": "each optimizer.step() ends a step",
    "backward": "each backward() ends a step (no optimizer seen)",
    "forward": "each call of the top-level module is a step (no backward() seen)",
}


def format_watch_header(report) -> str:
    p = report.profiled
    target = {"script": p.target, "module": f"-m {p.target}", "code": p.target}.get(
        p.kind, f"{p.target} ({p.kind})"
    )
    args = (" " + " ".join(p.args)) if p.args else ""
    optimizers = f" ({', '.join(p.optimizers)})" if p.optimizers else ""
    lines = [
        _("devicelab profile: {target} on {device} with {threads} thread(s), torch {torch}").format(
            target=target + args, device=p.device, threads=p.threads, torch=p.torch
        ),
        "  "
        + _("steps: {source}{optimizers}; {warmup} warm-up steps, then windows of {steps} steps").format(
            source=_(STEP_SOURCES.get(p.step_source or "", "none seen")),
            optimizers=optimizers,
            warmup=report.warmup,
            steps=report.steps,
        )
        + (
            _(", in rounds of {round} (phases, layers, phases, ...)").format(round=report.round_steps)
            if report.round_steps and report.round_steps < report.steps
            else ""
        ),
    ]
    if report.step_s is not None:
        lines.append(
            "  "
            + _("one step takes {us} µs uninstrumented (mean of the bare steps)").format(
                us=_us(report.step_s)
            )
        )
    return "\n".join(lines)


def format_watch_phases(report) -> str:
    b = report.breakdown
    on_gpu = any(p.device_s is not None for p in b.phases)
    headers = [_("phase"), _("host µs"), _("share"), *([_("GPU µs")] if on_gpu else [])]
    total = sum(p.host_s for p in b.phases)
    rows = [
        [
            p.name,
            _us(p.host_s),
            _pct(p.host_s / total if total else None),
            *([_us(p.device_s)] if on_gpu else []),
        ]
        for p in b.phases
    ]
    rows.append(
        [
            _("(sum)"),
            _us(total),
            _pct(1.0),
            *([_us(sum(p.device_s or 0.0 for p in b.phases))] if on_gpu else []),
        ]
    )
    title = _("Phases (mean per step over {n} steps; every moment of a step in one phase)").format(n=b.steps)
    lines = [title, format_table(rows, headers, indent="  ")]
    if report.step_s and report.watched_step_s:
        lines.append(
            "  "
            + _(
                "a watched step (phases added up) takes {ratio:.0%} of the uninstrumented step ({sum} of {step} µs, means)"
            ).format(
                ratio=report.watched_step_s / report.step_s,
                sum=_us(report.watched_step_s),
                step=_us(report.step_s),
            )
        )
    if report.own_cost_s is not None and report.switches_per_step:
        lines.append(
            "  "
            + _(
                "taken off the phases: the watcher's own {total} µs a step ({n} phase switches × {each} µs, "
                "measured on empty calls through its wrapper)"
            ).format(
                total=_us(report.own_cost_s * report.switches_per_step),
                n=_num(report.switches_per_step),
                each=_us(report.own_cost_s),
            )
        )
    return "\n".join(lines)


def format_watch_syncs(report) -> str:
    rows = []
    for s in report.syncs:
        code = s.code.split("  #")[0]
        rows.append(
            [f"{short_path(s.file)}:{s.line}", s.kind, _num(s.per_step), s.most_in_a_step, _us(s.wait_s),
             _pct(s.share), code[:50]]
        )  # fmt: skip
    would = any(s.would_sync for s in report.syncs)
    what = (
        _("calls that would sync on a GPU; on the CPU nothing waits")
        if would
        else _("host-device syncs, with the host's wait")
    )
    title = _("Syncs ({what})").format(what=what)
    if not rows:
        return title + "\n  " + _("none in the window")
    headers = [_("where"), _("kind"), _("per step"), _("most"), _("wait µs/step"), _("share"), _("code")]
    histogram = report.syncs_per_step
    spread = ", ".join(
        _("{n} on {k} step(s)").format(n=n, k=k) for n, k in sorted(histogram.items(), key=lambda x: -x[1])
    )
    return "\n".join(
        [
            title,
            format_table(rows, headers, indent="  "),
            "  " + _("syncs per step: {spread}").format(spread=spread),
        ]
    )


def format_watch_advice(report) -> str:
    lines = []
    if report.regime is not None:
        lines.append(
            _("Regime: {regime} — {evidence}").format(
                regime=translate(report.regime.regime), evidence=translate(report.regime.evidence)
            )
        )
    # the record keeps the English sentences (the JSON's); the screen says them in its language
    if report.advice:
        lines.append(_("Advice (ranked by the time it saves per step):"))
        for i, tip in enumerate(report.advice, 1):
            lines.append(f"  {i}. {translate(tip.finding)}")
            lines.append(f"     {translate(tip.evidence)}")
    return "\n".join(lines)


def format_watch(report) -> str:
    parts = [format_watch_header(report)]
    if report.breakdown is not None:
        parts.append(format_watch_phases(report))
    if report.layers is not None:
        parts.append(format_layers(report.layers))
    if report.breakdown is not None:
        parts.append(format_watch_syncs(report))
        parts.append(format_watch_advice(report))
    missing = [w for w in ("baseline", "phases", "layers") if w not in report.measured]
    if missing:
        parts.append(
            _("Not measured: {windows} (the program ended first: lower --warmup or --steps)").format(
                windows=", ".join(missing)
            )
        )
    if report.notes:
        parts.append("\n".join(_("Note: {note}").format(note=_(n)) for n in report.notes))
    return "\n\n".join(p for p in parts if p)
