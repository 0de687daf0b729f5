"""--tensorboard: event files read back with TensorBoard's own reader hold exactly what metrics.csv holds."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import assert_user_error

pytest.importorskip(
    "tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[tensorboard]')"
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")


def read_events(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_train_writes_every_log_point_equal_to_metrics_csv(cli, tmp_path):
    result = cli("train", "--epochs", "300", "--log-every", "50", *CPU1, "--name", "r", "--tensorboard", "tb")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "runs" / "r" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [50, 100, 150, 200, 250, 300]
    events = read_events(tmp_path / "tb" / "r")
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "test/loss", "test/accuracy"} <= set(scalars)
    for tag, column in (
        ("train/loss", "train_loss"),
        ("test/loss", "test_loss"),
        ("test/accuracy", "test_accuracy"),
    ):
        written = {e.step: e.value for e in events.Scalars(tag)}
        expected = {int(r["epoch"]): float(r[column]) for r in rows}
        assert written.keys() == expected.keys(), tag
        for epoch, value in expected.items():  # float32 in the event file, as printed in the CSV
            assert written[epoch] == pytest.approx(value, rel=1e-6, abs=1e-7), (tag, epoch)
    texts = set(events.Tags()["tensors"])  # add_text is stored as a tensor summary
    assert {"config/text_summary", "hardware/text_summary", "device/text_summary"} <= texts
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"epochs": 300' in config


def test_default_dir_is_under_runs_dir(cli, tmp_path):
    result = cli("train", "--epochs", "20", "--log-every", "10", *CPU1, "--name", "x", "--tensorboard")
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "runs" / "tensorboard" / "x").glob("events.out.tfevents.*"))


def test_missing_tensorboard_is_one_line(cli, tmp_path):
    blocker = tmp_path / "blocked"
    (blocker / "tensorboard").mkdir(parents=True)
    (blocker / "tensorboard" / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    result = cli("train", "--epochs", "20", *CPU1, "--tensorboard", env={"PYTHONPATH": str(blocker)})
    assert_user_error(result, "tensorboard package", "pip install 'devicelab[tensorboard]'")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sweep_runs_carry_their_hparams(tmp_path):
    from devicelab.report.tensorboard import write_sweep

    models = [
        {"hparams": {"lr": 0.01, "hidden": "10"}, "metrics": {"test_loss": 0.5}},
        {"hparams": {"lr": 0.1, "hidden": "10"}, "metrics": {"test_loss": 0.25}},
    ]
    curves = [[{"epoch": 10, "train_loss": 1.0}, {"epoch": 20, "train_loss": 0.75}], []]
    folders = write_sweep(tmp_path, models, curves=curves)
    assert [f.name for f in folders] == ["model-000", "model-001"]
    first = read_events(folders[0])
    assert [(e.step, e.value) for e in first.Scalars("train/loss")] == [(10, 1.0), (20, 0.75)]
    assert first.Scalars("hparam/test/loss")[0].value == 0.5
    assert read_events(folders[1]).Scalars("hparam/test/loss")[0].value == 0.25
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = first.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["lr"].number_value == 0.01 and start.hparams["hidden"].string_value == "10"


def test_bench_logging_cells_become_scalars(cli, tmp_path):
    result = cli(
        "bench",
        "logging",
        "--epochs",
        "40",
        "--intervals",
        "1,never",
        "--strategies",
        "item",
        "--device",
        "cpu",
        "--repeats",
        "2",
        "--json",
        "--tensorboard",
        "tb",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (folder,) = (tmp_path / "tb").iterdir()
    events = read_events(folder)
    written = {e.step: e.value for e in events.Scalars("cpu/item/us_per_epoch")}
    expected = {c["records"]: c["us_per_epoch"] for c in doc["cells"]}
    assert written.keys() == expected.keys() == {0, 40}
    for step, value in expected.items():
        assert written[step] == pytest.approx(value, rel=1e-6)


def test_bench_speed_cells_become_scalars_and_a_report(cli, tmp_path):
    result = cli(
        "bench",
        "speed",
        "--rows",
        "lesson,eager",
        "--epochs",
        "50",
        "--repeats",
        "1",
        "--device",
        "cpu",
        "--json",
        "--tensorboard",
        "tb",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (folder,) = (tmp_path / "tb").iterdir()
    events = read_events(folder)
    for cell in doc["cells"]:
        (event,) = events.Scalars(f"cpu/{cell['size']['label']}/{cell['row']}/us_per_epoch")
        assert event.value == pytest.approx(cell["us_per_epoch"], rel=1e-6)
    (tmp_path / "speed.json").write_text(result.stdout)
    assert cli("report", "speed.json").returncode == 0
    html = (tmp_path / "speed.html").read_text()
    for cell in doc["cells"]:
        assert cell["label"].replace("'", "&#x27;") in html


def test_a_sweep_folder_becomes_one_run_per_model(cli, tmp_path):
    from devicelab.report.tensorboard import write_sweep_folder

    swept = cli(
        "sweep", "--lr", "0.01,0.1", "--seeds", "0-1", "--epochs", "60", "--name", "s", "--tensorboard"
    )
    assert swept.returncode == 0, swept.stderr
    rows = list(csv.DictReader((tmp_path / "runs" / "s" / "results.csv").open()))
    written = sorted(p for p in (tmp_path / "runs" / "s" / "tensorboard").iterdir() if p.is_dir())
    folders = write_sweep_folder(
        tmp_path / "runs" / "s", tmp_path / "again"
    )  # the library call the CLI makes
    assert len(written) == len(folders) == len(rows) == 4
    assert [p.name for p in written] == sorted(p.name for p in folders)
    for row, folder in zip(rows, folders, strict=True):
        events = read_events(folder)
        assert events.Scalars("hparam/test/loss")[0].value == pytest.approx(
            float(row["final_test_loss"]), rel=1e-6
        )
        assert events.Scalars("train/loss")[-1].step == 60
        assert events.Scalars("train/loss")[-1].value == pytest.approx(
            float(row["final_train_loss"]), rel=1e-5
        )


def test_a_tensorboard_dir_that_cannot_be_written_is_one_line_before_training(cli, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    result = cli("train", "--epochs", "20", *CPU1, "--tensorboard", "taken/tb")
    assert_user_error(result, "cannot write TensorBoard files in taken/tb")
    bench = cli("bench", "logging", "--epochs", "20", "--intervals", "1,never", "--tensorboard", "taken")
    assert_user_error(bench, "cannot write TensorBoard files in taken")
