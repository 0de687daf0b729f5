"""The building blocks of devicelab's HTML reports: a page (one self-contained file: inline CSS, charts as
SVG, no JavaScript; one column on a phone, a print style sheet), key-value tables, tables and lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from devicelab import __version__
from devicelab.i18n import _, language

Pairs = Sequence[tuple[str, object]]


@dataclass
class Page:
    title: str
    subtitle: str = ""
    banner: tuple[str, str] | None = None  # (level: "bad" | "warn", text)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, inner HTML)

    def add(self, heading: str, body: str) -> None:
        if body:
            self.sections.append((heading, body))


# ---------------------------------------------------------------- building blocks


class Code(str):
    """A name from code or a record (a config key, a source line): shown as code, never translated."""


def cell(value: object) -> str:
    return f"<code>{escape(value)}</code>" if isinstance(value, Code) else escape(text(value))


def kv_table(pairs: Pairs) -> str:
    rows = "".join(
        f"<tr><th scope='row'>{cell(k)}</th><td>{cell(v)}</td></tr>"
        for k, v in pairs
        if v is not None and v != ""
    )
    return f"<table class='kv'>{rows}</table>" if rows else ""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric_from: int = 1) -> str:
    """A table that scrolls sideways on a narrow screen; columns from ``numeric_from`` on are right-aligned."""
    head = "".join(f"<th>{cell(h)}</th>" for h in headers)  # a Code header (a file's column) as code
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'num' if i >= numeric_from else ''}'>{cell(value)}</td>"
            for i, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value)
    return str(value)


def bullets(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""


def figure(svg: str, caption: str = "") -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>" if caption else svg


CSS = """
:root{--fg:#1b1f24;--muted:#5b6570;--line:#d9dee3;--bg:#fff;--card:#f6f8fa;--bad:#b42318;--warn:#b54708;
--ok:#067647;--s0:#1f6feb;--s1:#d1242f;--s2:#1a7f37;--s3:#8250df;--s4:#bc4c00;--s5:#0a7b83}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:960px;margin:0 auto;padding:16px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line)}
.sub{color:var(--muted);margin:0 0 1em}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;margin:12px 0;color:#fff}
.banner.bad{background:var(--bad)}.banner.warn{background:var(--warn)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.92em}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--card);white-space:nowrap}
td.num{text-align:right;white-space:nowrap}
table.kv th{font-weight:500;color:var(--muted);white-space:nowrap;padding-right:16px}
table.kv td{overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
figure{margin:8px 0}figcaption{color:var(--muted);font-size:.9em}
svg.chart{width:100%;height:auto;max-width:720px;display:block}
svg .grid{stroke:var(--line);stroke-width:1}svg .tick,svg .legend{font-size:12px;fill:var(--muted)}
svg .axis{font-size:13px;fill:var(--fg)}svg .line{fill:none;stroke-width:2}
.s0{stroke:var(--s0);fill:var(--s0)}.s1{stroke:var(--s1);fill:var(--s1)}.s2{stroke:var(--s2);fill:var(--s2)}
.s3{stroke:var(--s3);fill:var(--s3)}.s4{stroke:var(--s4);fill:var(--s4)}.s5{stroke:var(--s5);fill:var(--s5)}
polyline.s0,polyline.s1,polyline.s2,polyline.s3,polyline.s4,polyline.s5{fill:none}
.verdict{border-left:4px solid var(--line);padding:4px 10px;margin:8px 0;background:var(--card)}
.verdict.supported{border-color:var(--ok)}.verdict.refuted{border-color:var(--bad)}
.verdict.within-noise,.verdict.not-measured{border-color:var(--warn)}
.tag{font-weight:700;text-transform:uppercase;font-size:.85em}
footer{color:var(--muted);font-size:.85em;margin:2em 0 1em}
@media (max-width:600px){body{font-size:14px}main{padding:10px}th,td{padding:3px 5px}}
@media print{main{max-width:none;padding:0}.banner{color:#000;border:2px solid #000}
section{break-inside:avoid-page}h2{break-after:avoid}.scroll{overflow:visible}}
"""


def render_page(page: Page) -> str:
    lang = "zh-CN" if language() == "zh" else "en"
    banner = (
        f"<div class='banner {page.banner[0]}' role='alert'>{escape(page.banner[1])}</div>"
        if page.banner
        else ""
    )
    sections = "".join(f"<section><h2>{escape(h)}</h2>{body}</section>" for h, body in page.sections)
    footer = _("Made by devicelab {version}.").format(version=__version__)
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(page.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape(page.title)}</h1>{banner}<p class='sub'>{escape(page.subtitle)}</p>"
        f"{sections}<footer>{escape(footer)}</footer></main></body></html>\n"
    )
