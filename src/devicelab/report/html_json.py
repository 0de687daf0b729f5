"""The HTML reports of the JSON that ``info``, ``bench logging``, ``bench speed`` and ``profile`` print
(``--json``), recognised by their keys; any other JSON is shown as tables."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

from devicelab.i18n import _, translate
from devicelab.i18n.verdicts import explanation_title, outcome_text, regime_verdict, verdict_text
from devicelab.report.html_page import Code, Page, bullets, figure, kv_table, render_page, table, text
from devicelab.report.records import hardware_summary
from devicelab.report.svg import Series, line_chart


def detect_kind(doc: object) -> str:
    """'info', 'bench-logging', 'bench-speed', 'profile' or 'json' (anything else, shown as it is)."""
    if not isinstance(doc, Mapping):
        return "json"
    schema = str(doc.get("schema", ""))
    if "cpu" in doc and "software" in doc and "gpus" in doc:
        return "info"
    if {"grid", "cells", "verdicts"} <= doc.keys():
        return "bench-logging"
    if schema.startswith("devicelab.profile") or {"layers", "regime", "sync_audit"} <= doc.keys():
        return "profile"
    if "speed" in schema or ({"spec", "cells", "agreement"} <= doc.keys()):
        return "bench-speed"
    return "json"


def render_info(doc: Mapping) -> str:
    page = Page(title=_("Hardware report"), subtitle=_("devicelab info"))
    page.add(_("Summary"), kv_table(hardware_summary(doc)))
    for key, title in (
        ("cpu", _("CPU")),
        ("memory", _("Memory")),
        ("budget", _("CPU budget")),
        ("software", _("Software")),
    ):
        record = doc.get(key) or {}
        page.add(title, kv_table(_flat_pairs(record)))
    for gpu in doc.get("gpus") or []:
        page.add(f"GPU {gpu.get('device', '')}", kv_table(_flat_pairs(gpu)))
    findings = (doc.get("doctor") or {}).get("findings") or []
    lines = [
        _("problem: {problem}; fix: {fix}").format(
            problem=translate(f.get("problem", "")), fix=translate(f.get("fix", ""))
        )
        for f in findings
    ]
    page.add(_("Accelerator"), bullets(lines))
    measurements = doc.get("measurements") or []
    if measurements:
        keys = list(measurements[0])
        page.add(_("Measured"), table(keys, [[m.get(k) for k in keys] for m in measurements], numeric_from=2))
    return render_page(page)


def _flat_pairs(record: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = []
    for key, value in record.items():
        if key == "missing":
            continue
        name = Code(f"{prefix}{key}")
        if isinstance(value, Mapping):
            pairs += _flat_pairs(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            pairs += [
                (name, "; ".join(", ".join(f"{k} {text(v)}" for k, v in item.items()) for item in value))
            ]
        elif value is None and key in (record.get("missing") or {}):
            pairs.append((name, f"- ({translate(record['missing'][key])})"))
        elif isinstance(value, list) and value and isinstance(value[0], str):
            pairs.append((name, "; ".join(translate(v) for v in value)))
        else:
            pairs.append((name, translate(value) if isinstance(value, str) else value))
    return pairs


def render_bench_logging(doc: Mapping) -> str:
    grid = doc.get("grid", {})
    config = doc.get("config", {})
    page = Page(
        title=_("Does recording the loss more often cost time or memory?"),
        subtitle=_("devicelab bench logging: the lesson's homework, measured"),
        banner=(
            "warn",
            _(
                "Interrupted after {done} of {planned} runs; some cells have fewer repeats than planned."
            ).format(done=doc.get("runs_done"), planned=doc.get("runs_planned")),
        )
        if doc.get("interrupted")
        else None,
    )
    verdicts = []
    for v in doc.get("verdicts", []):
        css = v["outcome"].replace(" ", "-")
        verdicts.append(
            f"<div class='verdict {css}'><p><b>{escape(_('Explanation {n}').format(n=v['explanation']))}: "
            f"{escape(explanation_title(v['explanation'], v.get('title', '')))}</b> ({escape(v['device'])})</p>"
            f"<p><span class='tag'>{escape(outcome_text(v['outcome']))}</span> "
            f"{escape(verdict_text(v))}</p></div>"
        )
    page.add(_("Verdicts"), "".join(verdicts))
    setup = [
        (
            _("workload"),
            f"{config.get('dataset')}, MLP {config.get('hidden')}, {config.get('optimizer')} lr {config.get('lr')}",
        ),
        (_("epochs per run"), grid.get("epochs")),
        (_("record intervals k"), ", ".join(map(str, grid.get("intervals", [])))),
        (_("strategies"), ", ".join(grid.get("strategies", []))),
        (_("repeats"), grid.get("repeats")),
        (_("CPU threads"), grid.get("threads")),
        ("torch", doc.get("torch")),
        (_("wall time"), f"{doc.get('wall_s', 0):.1f} s"),
    ]
    for cost in doc.get("sync_costs", []):
        per = cost.get("per_sync_s")
        setup.append(
            (
                _("one sync on {device}").format(device=cost.get("device")),
                f"{per * 1e6:.2f} µs" if per else None,
            )
        )
    page.add(_("Setup"), kv_table(setup))
    cells = doc.get("cells", [])
    for device in dict.fromkeys(c["device"] for c in cells):
        mine = [c for c in cells if c["device"] == device]
        series = []
        for strategy in dict.fromkeys(c["strategy"] for c in mine):
            points = sorted((c["records"], c["us_per_epoch"]) for c in mine if c["strategy"] == strategy)
            series.append(Series(strategy, [p[0] for p in points], [p[1] for p in points], True))
        page.add(
            _("Time per epoch on {device}").format(device=device),
            figure(line_chart(series, x_label=_("records per run"), y_label="µs/epoch")),
        )
    headers = [
        _("device"),
        _("strategy"),
        "k",
        _("records"),
        _("syncs"),
        _("run s"),
        _("IQR s"),
        "µs/epoch",
        _("memory MB"),
    ]
    rows = [
        [
            c["device"],
            c["strategy"],
            c["interval"],
            c["records"],
            c["syncs"],
            round(c["time"]["median_s"], 3),
            round(c["time"]["iqr_s"], 3),
            round(c["us_per_epoch"], 1),
            round(sorted(c["memory_bytes"])[len(c["memory_bytes"]) // 2] / 1e6, 2)
            if c["memory_bytes"]
            else None,
        ]
        for c in cells
    ]
    page.add(_("Measurements"), table(headers, rows, numeric_from=2))
    return render_page(page)


def render_profile(doc: Mapping) -> str:
    if "profiled" in doc:  # a watched program (schema devicelab.profile/2)
        from devicelab.report.html_profile import render_watch

        return render_watch(doc)
    workload = doc.get("workload", {})
    regime = doc.get("regime") or {}
    page = Page(
        title=_("Where does the training time go?"),
        subtitle=_("devicelab profile: {dataset} on {device}").format(
            dataset=workload.get("dataset"), device=workload.get("device")
        ),
    )
    if regime.get("verdict"):
        page.add(
            _("Verdict"),
            f"<p><b>{escape(regime_verdict(regime))}</b></p>"
            + bullets([translate(t) for t in regime.get("suggestions", [])]),
        )
    page.add(_("Workload"), kv_table([(Code(k), translate(str(v))) for k, v in workload.items()]))
    layers = (doc.get("layers") or {}).get("layers") or []
    if layers:
        headers = [
            _("layer"),
            _("type"),
            _("output shape"),
            _("parameters"),
            "MACs",
            _("forward µs"),
            _("backward µs"),
        ]
        rows = [
            [
                layer.get("name"),
                layer.get("type"),
                "×".join(map(str, layer.get("output_shape") or [])),
                layer.get("params"),
                layer.get("macs"),
                None if layer.get("forward_s") is None else round(layer["forward_s"] * 1e6, 1),
                None if layer.get("backward_s") is None else round(layer["backward_s"] * 1e6, 1),
            ]
            for layer in layers
        ]
        page.add(_("Layers"), table(headers, rows, numeric_from=3))
    step = doc.get("step") or {}
    phases = step.get("phases") or []
    if phases:
        rows = [
            [
                p["name"],
                None if p.get("host_s") is None else round(p["host_s"] * 1e6, 1),
                None if p.get("device_s") is None else round(p["device_s"] * 1e6, 1),
                None if p.get("share") is None else f"{p['share']:.0%}",
            ]
            for p in phases
        ]
        page.add(_("Step phases"), table([_("phase"), _("host µs"), _("device µs"), _("share")], rows))
    sites = [
        [
            a.get("loop"),
            s.get("kind"),
            s.get("count"),
            f"{Path(s.get('file', '')).name}:{s.get('line')}",
            Code(s.get("code") or ""),
        ]
        for a in doc.get("sync_audit") or []
        for s in a.get("sites", [])
    ]
    if sites:
        page.add(
            _("Host syncs per step"),
            table([_("loop"), _("kind"), _("count"), _("where"), _("code")], sites, numeric_from=2),
        )
    points = regime.get("points") or []
    if points:
        batch = [p for p in points if p.get("label", "").startswith("batch")]
        chart = line_chart(
            [Series(_("step time"), [p["macs"] for p in batch], [p["median_s"] * 1e6 for p in batch], True)],
            x_label=_("multiply-accumulates per step"),
            y_label=_("µs per step"),
        )
        rows = [[p.get("label"), p.get("macs"), round(p["median_s"] * 1e6, 1)] for p in points]
        page.add(_("Size-scaling probe"), figure(chart) + table([_("probe"), "MACs", _("µs per step")], rows))
    return render_page(page)


def _us(value: float) -> float | int:
    return round(value) if value >= 100 else round(value, 1)


def render_bench_speed(doc: Mapping) -> str:
    """``bench speed``: one table and one chart of µs per epoch per device and size, the lesson's loop = 1."""
    page = Page(
        title=_("Training speed: the lesson's loop against devicelab and its peers"),
        subtitle=_("devicelab bench speed, torch {torch}").format(torch=doc.get("torch")),
        banner=(
            "warn",
            _(
                "Interrupted after {done} of {planned} runs; some cells have fewer repeats than planned."
            ).format(done=doc.get("runs_done"), planned=doc.get("runs_planned")),
        )
        if doc.get("interrupted")
        else None,
    )
    cells = doc.get("cells", [])
    headers = [_("device"), _("size"), _("row"), "µs/epoch", _("× the lesson"), _("final loss"), _("status")]
    rows = [
        [
            c.get("device"),
            (c.get("size") or {}).get("label") if isinstance(c.get("size"), Mapping) else c.get("size"),
            c.get("label") or c.get("row"),
            None if c.get("us_per_epoch") is None else _us(c["us_per_epoch"]),
            None if c.get("ratio_to_lesson") is None else f"{c['ratio_to_lesson']:.2f}×",
            c.get("final_loss"),
            translate(c.get("note") or c.get("status") or ""),
        ]
        for c in cells
    ]
    page.add(_("Measurements"), table(headers, rows, numeric_from=3))
    page.add(
        _("Agreement"),
        bullets([f"{a['device']} {a['size']}: {translate(a['text'])}" for a in doc.get("agreement", [])]),
    )
    page.add(
        _("Setup"),
        kv_table([(Code(k), v) for k, v in (doc.get("spec") or {}).items() if not isinstance(v, list)]),
    )
    return render_page(page)


def render_json(doc: object, title: str) -> str:
    """Any other JSON (``bench speed``, a sweep's summary): its scalars as a table, its lists of records as
    tables, one section per top-level key."""
    page = Page(title=title)
    if isinstance(doc, Mapping):
        scalars = [(k, v) for k, v in doc.items() if not isinstance(v, (Mapping, list))]
        page.add(_("Summary"), kv_table(scalars))
        for key, value in doc.items():
            page.add(key.replace("_", " "), _json_block(value))
    else:
        page.add(_("Contents"), _json_block(doc))
    return render_page(page)


def _json_block(value: object) -> str:
    if isinstance(value, Mapping):
        return kv_table(_flat_pairs(value))
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        return table(keys, [[v.get(k) for k in keys] for v in value])
    if isinstance(value, list):
        return bullets([text(v) for v in value])
    return ""
