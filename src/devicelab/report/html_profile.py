"""The HTML report of a watched program's profile (``devicelab profile SCRIPT.py --json FILE``, schema
``devicelab.profile/2``): the verdict and advice, phases, the sync table at the user's lines, layers."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

from devicelab.i18n import _
from devicelab.report.html_page import Code, Page, bullets, kv_table, render_page, table


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e6, 1)


def render_watch(doc: Mapping) -> str:
    profiled = doc.get("profiled") or {}
    page = Page(
        title=_("Where does the training time go?"),
        subtitle=_("devicelab profile: {dataset} on {device}").format(
            dataset=profiled.get("target"), device=profiled.get("device")
        ),
    )
    regime = doc.get("regime") or {}
    advice = doc.get("advice") or []
    if regime or advice:
        head = f"<p><b>{escape(regime.get('regime', ''))}</b>: {escape(regime.get('evidence', ''))}</p>"
        page.add(_("Verdict"), head + bullets([f"{a['finding']} ({a['evidence']})" for a in advice]))
    page.add(_("Workload"), kv_table([(Code(k), str(v)) for k, v in profiled.items() if k != "details"]))
    phases = (doc.get("step") or {}).get("phases") or []
    if phases:
        rows = [
            [p["name"], _us(p.get("host_s")), _us(p.get("device_s")), f"{p.get('share', 0):.0%}"]
            for p in phases
        ]
        page.add(_("Step phases"), table([_("phase"), _("host µs"), _("device µs"), _("share")], rows))
    syncs = doc.get("syncs") or []
    if syncs:
        rows = [
            [f"{Path(s['file']).name}:{s['line']}", s["kind"], round(s["per_step"], 3), _us(s["wait_s"]),
             Code(s.get("code") or "")]
            for s in syncs
        ]  # fmt: skip
        headers = [_("where"), _("kind"), _("per step"), _("wait µs/step"), _("code")]
        page.add(_("Host syncs per step"), table(headers, rows, numeric_from=2))
    layers = (doc.get("layers") or {}).get("layers") or []
    if layers:
        rows = [
            [x["name"], x["type"], "×".join(map(str, x.get("output_shape") or [])), x["params"], x.get("macs"),
             x["calls"], _us(x.get("forward_s")), _us(x.get("backward_s"))]
            for x in layers
        ]  # fmt: skip
        headers = [_("layer"), _("type"), _("output shape"), _("parameters"), "MACs", _("calls"), _("forward µs"),
                   _("backward µs")]  # fmt: skip
        page.add(_("Layers"), table(headers, rows, numeric_from=3))
    return render_page(page)
