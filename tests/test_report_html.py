"""devicelab report: one self-contained HTML file, rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import assert_user_error

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install -y chromium)"
)


class _Text(HTMLParser):
    def __init__(self, skip: tuple[str, ...]) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipped, self.skip = skip, 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in self.skipped

    def handle_endtag(self, tag):
        self.skip -= tag in self.skipped

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def page_text(html: str, skip: tuple[str, ...] = ("style", "script")) -> str:
    """The text a reader sees (``skip``: elements left out, e.g. ``code``)."""
    parser = _Text(skip)
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def chromium(html_file: Path, screenshot: Path, width: int = 900, height: int = 1400) -> str:
    """Render ``html_file`` offline; write a screenshot; return the text of the DOM Chromium built."""
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    base += [
        f"--window-size={width},{height}",
        "--proxy-server=127.0.0.1:9",
        f"--user-data-dir={screenshot.parent / 'profile'}",
    ]
    url = html_file.resolve().as_uri()
    subprocess.run([*base, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*base, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    return page_text(dom.stdout)


def assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "a resource from the network"
    assert not re.search(r"@import|url\(", html), "CSS that loads something"
    assert "name='viewport'" in html and "@media print" in html and "@media (max-width" in html


def screenshot_is_not_blank(png: Path) -> None:
    from PIL import Image

    image = Image.open(png).convert("L")
    low, high = image.getextrema()
    assert png.stat().st_size > 5000 and high - low > 100, "an empty page"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from conftest import run_cli

    root = tmp_path_factory.mktemp("report")
    result = run_cli("train", "--epochs", "400", "--log-every", "50", *CPU1, "--name", "r", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "runs" / "r"


@needs_chromium
def test_run_report_in_chromium_holds_the_run_figures(cli, tmp_path, run_folder):
    out = tmp_path / "report.html"
    result = cli("report", str(run_folder), "-o", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    text = chromium(out, tmp_path / "run.png")
    screenshot_is_not_blank(tmp_path / "run.png")
    summary = json.loads((run_folder / "summary.json").read_text())
    assert "completed (400 of 400 epochs)" in text
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert f"{summary['final'][key]:.4f}" in text, key
    assert f"{summary['wall_s']:.2f} s for 400 epochs ({summary['us_per_epoch']:.1f} µs/epoch)" in text
    assert f"{summary['host_syncs']} (one per log point)" in text
    rows = (run_folder / "metrics.csv").read_text().splitlines()[1:]
    for row in rows:  # every log point's epoch and loss, as the table shows them (4 significant digits)
        epoch, loss = row.split(",")[:2]
        assert f" {epoch} {float(loss):.4g} " in f" {text} ", epoch
    assert "Interrupted" not in text and "Diverged" not in text
    assert html.count("<svg") >= 2  # the loss curve and the test metrics


@needs_chromium
def test_a_diverged_run_says_so_at_the_top(cli, tmp_path):
    diverging = ("--dataset", "diabetes", "--activation", "tanh", "--lr", "1", "--log-every", "10")
    trained = cli("train", *diverging, *CPU1, "--name", "d")
    assert trained.returncode == 2, trained.stderr
    summary = json.loads((tmp_path / "runs" / "d" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    result = cli("report", "runs/d")
    assert result.returncode == 0, result.stderr
    text = chromium(tmp_path / "runs" / "d" / "report.html", tmp_path / "d.png", width=390, height=800)
    banner = f"Diverged: the loss became NaN or infinite at epoch {summary['diverged_epoch']}"
    assert banner in text and text.index(banner) < text.index("Summary")


def test_an_interrupted_run_says_so_at_the_top(cli, tmp_path, run_folder):
    folder = tmp_path / "stopped"
    shutil.copytree(run_folder, folder)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "status": "interrupted", "epochs_done": 150}))
    result = cli("report", str(folder), "-o", "x.html")
    assert result.returncode == 0, result.stderr
    text = page_text((tmp_path / "x.html").read_text())
    assert text.index("Interrupted after epoch 150 of 400") < text.index("Summary")


@needs_chromium
def test_json_reports_of_info_and_profile(cli, tmp_path):
    info = cli("info", "--json")
    assert info.returncode == 0, info.stderr
    (tmp_path / "info.json").write_text(info.stdout)
    result = cli("report", "info.json")
    assert result.returncode == 0, result.stderr
    text = chromium(tmp_path / "info.html", tmp_path / "info.png")
    doc = json.loads(info.stdout)
    assert "Hardware report" in text and doc["software"]["torch"] in text
    assert f"{doc['cpu']['physical_cores'] or '?'} / {doc['cpu']['logical_threads'] or '?'}" in text


def test_bench_logging_json_report_has_every_cell_and_verdict(cli, tmp_path):
    bench = cli(
        "bench",
        "logging",
        "--epochs",
        "40",
        "--intervals",
        "1,never",
        "--strategies",
        "item,tensor",
        "--device",
        "cpu",
        "--repeats",
        "2",
        "--json",
    )
    assert bench.returncode == 0, bench.stderr
    (tmp_path / "bench.json").write_text(bench.stdout)
    assert cli("report", "bench.json", "-o", "b.html").returncode == 0
    html = (tmp_path / "b.html").read_text()
    assert_self_contained(html)
    text = page_text(html)
    doc = json.loads(bench.stdout)
    for v in doc["verdicts"]:
        assert v["text"] in text
    for c in doc["cells"]:
        assert f"cpu {c['strategy']} {c['interval']} {c['records']} {c['syncs']}" in text


def test_bad_input_is_one_line(cli, tmp_path):
    assert_user_error(cli("report", "missing"), "missing does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(cli("report", "empty"), "is not a run folder")
    (tmp_path / "bad.json").write_text("{not json")
    assert_user_error(cli("report", "bad.json"), "is not JSON")
    assert not (tmp_path / "bad.html").exists()


def test_sweep_folder_report_has_every_model(cli, tmp_path):
    swept = cli("sweep", "--lr", "0.01,0.1", "--seeds", "0-1", "--epochs", "100", "--name", "s")
    assert swept.returncode == 0, swept.stderr
    result = cli("report", "runs/s", "-o", "s.html")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert_self_contained(html)
    text = page_text(html)
    rows = (tmp_path / "runs" / "s" / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and "Sweep s" in text and "<svg" in html
    for row in rows[1:]:
        model, hidden, lr, seed = row.split(",")[:4]
        assert f" {model} {hidden} {float(lr):.4g} {seed} completed " in f" {text} ", row
    # the leaderboard: the command line's order and best model, the ranked metric right after the settings
    printed = [
        line.split() for line in swept.stdout.splitlines() if line.split() and line.split()[0].isdigit()
    ]
    board = text[text.index("Leaderboard") : text.index("Learning rate")]
    assert board.startswith("Leaderboard rank model hidden lr seed test accuracy ")
    for rank, model, hidden, lr, seed, _train, _loss, accuracy, *_ in printed:
        assert f" {rank} {model} {hidden} {float(lr):.4g} {seed} {float(accuracy):.4g} " in board, rank
    best = printed[0]
    assert f"best model model {best[1]} (hidden {best[2]}, lr {best[3]}, seed {best[4]})" in text
    lr_chart = re.findall(r"<svg.*?</svg>", html, re.S)[0]
    assert ">learning rate<" in lr_chart and ">hidden 10<" in lr_chart


def test_file_run_report_has_roles_validation_file_name_baseline_and_one_axis_per_metric(cli, tmp_path):
    from csv_files import write_csv

    rows = [
        [str(10 + i % 50), str(1 + i % 5), "abc"[i % 3], f"{3 * (10 + i % 50) + i % 5:.1f}"]
        for i in range(120)
    ]
    write_csv(tmp_path / "house.csv", rows, header=("size", "rooms", "city", "price"))
    trained = cli("train", "--data", "house.csv", "--target", "price", "--val-size", "0.15", "--epochs", "60", "--log-every", "10",
                  *CPU1, "--name", "h")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    folder = tmp_path / "runs" / "h"
    summary = json.loads((folder / "summary.json").read_text())
    # the linear baseline fitted beside the network, as summary.json records it
    summary["baseline"] = {"model": "ridge", "test_metric": 0.8765, "metric": "test_r2"}
    (folder / "summary.json").write_text(json.dumps(summary))
    assert cli("report", "runs/h", "-o", "h.html").returncode == 0
    html = (tmp_path / "h.html").read_text(encoding="utf-8")
    text = page_text(html)
    assert f"data house.csv: {summary['rows']['train']} train, {summary['rows']['val']} validation, " in text
    assert "house.csv, MLP hidden 10" in text and "iris" not in text  # the file, never the default set
    assert "linear baseline ridge: test r2 0.8765" in text
    early = summary["early_stopping"]
    assert f"kept the best validation loss {early['best_val_loss']:.4f} (epoch {early['best_epoch']})" in text
    roles = json.loads((folder / "preprocessing.json").read_text())["roles"]
    for role in roles:  # the role table, as train printed it
        assert f" {role['column']} {role['role']} " in f" {text} " and role["detail"] in text, role
    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    loss, *metric_charts = charts
    assert "validation loss (log points)" in loss and "test loss (log points)" in loss
    assert [re.search(r'aria-label="([^"]*)"', c).group(1) for c in metric_charts] == ["RMSE", "R²"]
    assert "test r2" not in metric_charts[0] and "test rmse" not in metric_charts[1]  # one kind per axis


def test_legend_keys_never_overlap_even_in_chinese():
    """The zh report's legend once overlapped itself (each key spaced for 7 px characters): keys are laid
    out by their width, wrapped into rows, and the plot starts below the last row."""
    from devicelab.report.svg import RIGHT, Series, W, line_chart, text_width

    names = ["训练损失(每轮)", "验证损失(记录点)", "测试损失(记录点)", "模型 12 的训练损失", "train loss"]
    svg = line_chart([Series(n, [1, 2], [1.0, 2.0]) for n in names], x_label="轮次")
    keys = [(float(x), float(y), name) for x, y, name in
            re.findall(r'<text class="legend" x="([\d.]+)" y="([\d.]+)">([^<]*)</text>', svg)]  # fmt: skip
    assert [k[2] for k in keys] == names
    assert len({y for _, y, _ in keys}) >= 2  # too wide for one row at these widths
    for (x, y, name), (x2, y2, _) in itertools.pairwise(keys):
        if y2 == y:
            assert x2 - 16 >= x + text_width(name), (name, x, x2)  # the next swatch starts after this text
    assert all(x + text_width(name) <= W - RIGHT for x, _, name in keys)
    grid_top = min(
        float(v) for v in re.findall(r'<line class="grid" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"', svg)
    )
    assert grid_top > max(y for _, y, _ in keys)
