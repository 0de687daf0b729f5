"""`devicelab bench logging` end to end, as a user runs it (subprocess), in quick mode."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys

import pytest

from conftest import assert_user_error
from devicelab.devices import devices_to_compare

OUTCOMES = ("[SUPPORTED]", "[REFUTED]", "[WITHIN NOISE]")


def test_quick_is_the_grid_of_four_strategies_four_intervals_1000_epochs_and_3_repeats():
    from devicelab.cli import build_parser
    from devicelab.commands.bench import _grid

    grid = _grid(build_parser().parse_args(["bench", "logging", "--quick"]))
    assert (grid.epochs, grid.repeats, grid.threads) == (1000, 3, 1)
    assert grid.intervals == (1, 10, 100, None) and len(grid.strategies) == 4


@pytest.mark.slow
def test_quick_prints_the_table_and_three_verdicts_and_writes_files(cli, tmp_path):
    """The whole quick grid (4 strategies x 4 intervals), on fewer epochs and repeats than --quick's
    (whose grid the test above reads): 48 runs of 200 epochs instead of 64 of 1000."""
    epochs = 200
    result = cli(
        *("bench", "logging", "--quick", "--epochs", str(epochs), "--repeats", "2"),
        *("--csv", "out/cells.csv", "--markdown", "out/report.md", "--plots", "out/plots"),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"epochs per run:     {epochs}" in out
    for strategy in ("item", "tensor", "detach", "buffer"):
        assert f"cpu     {strategy}" in out
    for n in (1, 2, 3):
        assert f"Explanation {n}:" in out
    verdict_lines = [line for line in out.splitlines() if line.strip().startswith(OUTCOMES)]
    assert len(verdict_lines) == 3, out
    assert " 1/48]" in result.stderr and "[48/48]" in result.stderr  # progress goes to stderr

    rows = list(csv.DictReader((tmp_path / "out/cells.csv").open()))
    assert len(rows) == 16  # 4 strategies x 4 intervals x 1 device
    by = {(r["strategy"], r["interval"]): r for r in rows}
    assert by["item", "1"]["syncs"] == str(epochs) and by["item", "never"]["syncs"] == "0"
    assert by["buffer", "10"]["records"] == str(epochs) and by["buffer", "10"]["syncs"] == str(epochs // 10)
    # the mistake keeps a graph per record (kilobytes each); .item() keeps a float
    assert int(by["tensor", "1"]["memory_median_bytes"]) > epochs * 1000
    assert int(by["item", "1"]["memory_median_bytes"]) < int(by["tensor", "1"]["memory_median_bytes"]) / 10

    report = (tmp_path / "out/report.md").read_text()
    assert report.startswith("# Why does recording")
    assert report.count("### Explanation") == 3
    assert "](plots/time_per_epoch.png)" in report and "](plots/memory.png)" in report
    for name in ("time_per_epoch.png", "memory.png"):
        assert (tmp_path / "out/plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_json_parses_and_holds_the_grid_order_and_verdicts(cli):
    result = cli(
        *("bench", "logging", "--quick", "--epochs", "200", "--repeats", "2", "--intervals", "1,never"),
        *("--device", "auto", "--json"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["grid"]["epochs"] == 200 and data["grid"]["repeats"] == 2 and data["grid"]["threads"] == 1
    assert data["grid"]["order_seed"] == 42 and data["grid"]["devices"][0] == "cpu"  # auto: CPU first
    assert data["grid"]["devices"] == list(devices_to_compare(["auto"]))  # the library's policy: all here
    assert len(data["cells"]) == 8
    assert len(data["order"]) == 8 * 3  # a warm-up and two repeats of every cell
    assert all(len(c["times_s"]) == 2 for c in data["cells"])
    assert [v["explanation"] for v in data["verdicts"]] == [1, 2, 3]
    assert all(v["outcome"] in ("supported", "refuted", "within noise") for v in data["verdicts"])
    assert data["sync_costs"][0]["device"] == "cpu"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--intervals", "1,ten"], ["--intervals", "'ten'"]),
        (["--strategies", "item,tensr"], ["--strategies", "tensr"]),
        (["--epochs", "100", "--intervals", "1,1000"], ["1000", "longer than the 100 epochs"]),
        (["--epochs", "0"], ["--epochs", "positive"]),
        (["--device", "cuda:7"], ["cuda:7"]),
        (["--repeats", "0"], ["--repeats"]),
        (["--repeats", "1"], ["--repeats must be at least 2", "spread"]),
        (["--intervals="], ["--intervals", "''"]),
        (["--device", ","], ["--device", "no device"]),
        (["--csv", "afile/x.csv"], ["--csv", "'afile'"]),
        (["--dataset", "nope"], ["dataset", "nope"]),
    ],
)
def test_bad_input_is_one_clear_line(cli, tmp_path, args, fragments):
    (tmp_path / "afile").write_text("")
    assert_user_error(cli("bench", "logging", *args), *fragments)


def test_bench_without_a_benchmark_shows_its_help(cli):
    result = cli("bench")
    assert result.returncode == 0
    assert "logging" in result.stdout


ARGS_UNTIL_CTRL_C = (
    *("bench", "logging", "--epochs", "300", "--repeats", "50", "--intervals", "1,never"),
    *("--strategies", "item,tensor", "--csv", "cells.csv"),
)


def test_ctrl_c_stops_after_the_run_in_progress_and_reports_what_was_done(tmp_path):
    """A real SIGINT during the timed repeats: the table, the verdicts and the files hold what was done."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devicelab", *ARGS_UNTIL_CTRL_C],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in process.stderr:  # progress: wait until the first timed repeat is under way
        seen.append(line)
        if "repeat 2" in line:
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stderr
    assert "stopping after the run in progress" in stderr  # said at once, not after the run
    assert "INTERRUPTED" in stdout and stdout.count("Explanation") == 3
    rows = list(csv.DictReader((tmp_path / "cells.csv").open()))
    assert len(rows) == 4 and all(1 <= int(r["repeats"]) < 50 for r in rows)
