"""`devicelab bench speed`: real runs with few epochs. What is checked is what a user relies on (every
row present, the same final loss, the JSON keys, clear errors), never how fast anything was."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import assert_user_error
from devicelab.bench.speed import LOSS_RTOL, Spec, busy_core, measure_speed
from devicelab.bench.speed_rows import ROW_NAMES, ROWS, RowSpec, Size
from devicelab.cli import main
from devicelab.report.bench_speed import format_report, to_json, write_plot
from devicelab.training.interrupt import StopFlag

EPOCHS = 200
PEERS = ("lightning", "skorch", "jax")


def no_peers(name: str):
    """An import that finds none of the peer frameworks (nothing is uninstalled)."""
    if name.split(".")[0] in PEERS:
        raise ImportError(f"No module named {name!r}")
    return importlib.import_module(name)


def speed(seed, rows=("lesson", "eager", "fast"), import_module=no_peers, **spec):
    config, dataset = seed
    config = dataclasses.replace(config, epochs=EPOCHS)
    spec = Spec(**{"epochs": EPOCHS, "repeats": 2, "devices": ("cpu",), "rows": rows, "threads": 1, **spec})
    return measure_speed(config, spec, dataset=dataset, import_module=import_module)


@pytest.fixture(scope="module")
def result(seed):
    return speed(seed, rows=ROW_NAMES)


def test_lesson_eager_and_fast_train_the_same_numbers(result):
    cells = {c.row: c for c in result.cells}
    for name in ("lesson", "eager", "fast"):
        cell = cells[name]
        assert cell.ok and len(cell.times.times) == 2 and cell.epochs == EPOCHS, cell
        assert result.agrees(cell) and result.loss_difference(cell) <= LOSS_RTOL
    assert cells["eager"].path == "eager"  # fast="off"
    assert cells["fast"].path  # what ran, as train() says (the fast path, or eager and why)
    assert result.ratio(cells["lesson"]) == 1.0
    report = format_report(result)
    assert f"agree with the lesson's loop to {LOSS_RTOL:g}" in report
    for label in ("the lesson's loop", "devicelab eager", "devicelab fast"):
        assert label in report


def test_a_peer_that_is_not_installed_says_so(result):
    cells = {c.row: c for c in result.cells}
    for row, package in (
        ("lightning", "lightning"),
        ("skorch", "skorch"),
        ("jax-jit", "jax"),
        ("jax-scan", "jax"),
    ):
        assert cells[row].status == "not installed" and cells[row].note == f"pip install {package}"
        assert cells[row].times is None and result.ratio(cells[row]) is None
    report = format_report(result)
    assert "skorch NeuralNet: not installed (pip install skorch)" in report


def test_json_holds_every_row_with_its_figures(result):
    data = json.loads(json.dumps(to_json(result)))
    assert data["spec"]["epochs"] == EPOCHS and data["spec"]["devices"] == ["cpu"]
    assert data["loss_rtol"] == LOSS_RTOL and data["threads"]["cpu"]["threads"] == 1
    rows = {c["row"]: c for c in data["cells"]}
    assert set(rows) >= {"lesson", "eager", "fast", "lightning", "skorch", "jax-jit", "jax-scan"}
    keys = {
        "row", "label", "kind", "device", "size", "epochs", "threads", "status", "note", "path",
        "path_reason", "time", "times_s", "us_per_epoch", "us_per_epoch_iqr", "noisy", "ratio_to_lesson", "setup_s",
        "setups_s", "cold_setup_s", "final_loss", "loss_rel_diff", "loss_agrees", "same_init",
        "loaded_times_s", "load_slowdown",
    }  # fmt: skip
    assert all(set(c) == keys for c in data["cells"])
    assert rows["lesson"]["ratio_to_lesson"] == 1.0 and rows["eager"]["loss_agrees"] is True
    assert rows["jax-jit"]["status"] == "not installed" and rows["jax-jit"]["us_per_epoch"] is None
    assert len(data["order"]) == data["runs_done"] == data["runs_planned"]  # 1 warm-up + 2 repeats per row
    assert not data["interrupted"]


def test_the_plot_is_a_png(result, tmp_path):
    path = write_plot(result, tmp_path / "speed.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("peer", ["jax", "lightning", "skorch"])
def test_an_installed_peer_trains_from_the_same_weights_to_the_same_loss(seed, peer):
    pytest.importorskip(peer)
    rows = {"jax": ("lesson", "jax-jit", "jax-scan")}.get(peer, ("lesson", peer))
    result = speed(seed, rows=rows, import_module=importlib.import_module, repeats=1)
    for cell in result.cells:
        assert cell.ok, (cell.row, cell.status, cell.note)
        assert result.agrees(cell), (cell.row, cell.final_loss)


def test_sizes_scale_width_and_rows_and_each_size_agrees(seed):
    result = speed(seed, rows=("lesson", "eager"), sizes=(Size(), Size(2, 3)), repeats=1)
    assert [(c.size, c.row) for c in result.cells] == [
        (Size(), "lesson"), (Size(), "eager"), (Size(2, 3), "lesson"), (Size(2, 3), "eager"),
    ]  # fmt: skip
    assert all(result.agrees(c) for c in result.cells)
    # different model and data: a different final loss than at size 1
    assert result.cells[0].final_loss != result.cells[2].final_loss
    assert "x1: hidden 10" in format_report(result) and "w2xb3: hidden 20, training rows x3" in format_report(
        result
    )


def test_under_load_runs_every_row_again_beside_a_busy_process(seed):
    result = speed(seed, rows=("lesson",), under_load=True, repeats=1)
    (cell,) = result.cells
    assert cell.loaded is not None and len(cell.loaded.times) == 1 and cell.load_slowdown > 0
    assert [phase for phase, *_ in result.order] == ["warm-up", "idle", "under load"]
    assert "load slowdown" in format_report(result)


def test_the_busy_process_is_gone_afterwards():
    with busy_core() as pid:
        os.kill(pid, 0)  # there
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_stop_keeps_the_rows_done(seed):
    config, dataset = seed
    stop = StopFlag()
    spec = Spec(epochs=EPOCHS, repeats=3, devices=("cpu",), rows=("lesson", "eager"), threads=1)

    def progress(done, total, what):
        if done == 3:  # the two warm-ups and one timed run
            stop.request()

    result = measure_speed(
        dataclasses.replace(config, epochs=EPOCHS), spec, dataset=dataset, progress=progress, stop=stop
    )
    assert result.interrupted and result.runs_done == 3
    assert sum(c.ok for c in result.cells) == 1  # the row with a timed run
    assert "INTERRUPTED" in format_report(result)


def test_a_peer_that_fails_is_reported_not_raised(seed, monkeypatch):
    def broken(setting):
        raise RuntimeError("boom\nsecond line")

    rows = (*ROWS, RowSpec("broken", "a broken peer", "peer", broken))
    monkeypatch.setattr("devicelab.bench.speed.ROWS", rows)
    result = speed(seed, rows=("lesson", "broken"), repeats=1)
    cell = {c.row: c for c in result.cells}["broken"]
    assert cell.status == "failed" and cell.note == "RuntimeError: boom"
    assert "a broken peer: failed (RuntimeError: boom)" in format_report(result)


def test_the_cli_row_names_are_the_librarys():
    from devicelab.commands.bench_speed import ROW_NAMES as CLI_ROW_NAMES

    assert CLI_ROW_NAMES == ROW_NAMES


@pytest.mark.slow
def test_quick_cli_end_to_end(cli, tmp_path):
    result = cli(
        *("bench", "speed", "--quick", "--epochs", "100", "--repeats", "2", "--device", "cpu"),
        *("--rows", "lesson,eager,fast", "--plot", "out/speed.png", "--markdown", "out/speed.md"),
    )  # (no peer row: whether one is installed differs between machines, and so would the count below)
    assert result.returncode == 0, result.stderr
    assert "the lesson's loop" in result.stdout and "devicelab fast" in result.stdout
    assert "final loss:" in result.stdout
    # 3 rows x (a warm-up and 2 repeats); progress goes to stderr
    assert "[1/9]" in result.stderr and "[9/9]" in result.stderr
    assert (tmp_path / "out/speed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](speed.png)" in (tmp_path / "out/speed.md").read_text()


def test_quick_cli_json(cli):
    result = cli(
        "bench", "speed", "--quick", "--epochs", "100", "--repeats", "1", "--rows", "lesson,fast", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["spec"]["devices"][0] == "cpu"  # auto: the CPU first
    assert {c["row"] for c in data["cells"] if c["device"] == "cpu"} == {"lesson", "fast"}
    assert all(c["loss_agrees"] for c in data["cells"] if c["status"] == "ok")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--size", "0"], ["--size", "'0'"]),
        (["--size", "2y3"], ["--size", "'2y3'"]),
        (["--rows", "lesson,tourch"], ["--rows", "tourch"]),
        (["--repeats", "0"], ["--repeats"]),
        (["--epochs", "0"], ["--epochs"]),
        (["--batch-size", "16"], ["--batch-size"]),
        (["--device", "tpu"], ["tpu"]),
        (["--threads", "0"], ["--threads"]),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, fragments, capsys):
    assert main(["bench", "speed", "--quick", *args]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("devicelab: error: "), captured.err
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower()


def test_a_plot_path_that_is_a_folder_is_refused_before_the_run(cli, tmp_path):
    (tmp_path / "plots").mkdir()
    assert_user_error(cli("bench", "speed", "--quick", "--plot", "plots"), "--plot", "is a folder")


@pytest.mark.gpu
def test_cuda_rows_train_the_same_numbers(seed):
    result = speed(seed, rows=("lesson", "eager", "fast"), devices=("cuda:0",))
    for cell in result.cells:
        assert cell.ok and result.agrees(cell), (cell.row, cell.final_loss, cell.note)


def test_ctrl_c_keeps_the_rows_done(tmp_path):
    """A real SIGINT during the timed repeats: the report holds the rows with a timed run."""
    args = (
        "bench",
        "speed",
        "--device",
        "cpu",
        "--epochs",
        "300",
        "--repeats",
        "50",
        "--rows",
        "lesson,eager",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "devicelab", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in process.stderr:  # progress: wait until the timed repeats are under way
        seen.append(line)
        if "idle 2" in line:
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stderr
    assert "INTERRUPTED" in stdout and "the lesson's loop" in stdout and "devicelab eager" in stdout


def test_the_jax_rows_say_when_jax_has_no_device_for_a_gpu(seed):
    pytest.importorskip("jax")
    import torch

    from devicelab.bench.peers.jax_loop import unsupported
    from devicelab.bench.speed_rows import Setting

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the CUDA build of jax may be, too")
    config, dataset = seed
    setting = Setting(config, dataset, torch.device("cuda:0"), 1, EPOCHS, StopFlag())
    assert "a CUDA build of jax is needed" in unsupported(setting)
