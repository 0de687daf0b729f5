"""Inputs and moments the first tests did not cover: out-of-range options, unwritable run folders,
Ctrl-C while the run folder is written, SIGTERM, damaged run folders, one-feature files for predict,
text encodings, and the progress line on a narrow terminal."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_user_error, run_cli
from csv_files import COLUMNS, SPECIES, iris_arrays, iris_csv
from devicelab import TrainConfig, train
from devicelab.data import encode_target, read_frame
from devicelab.data.columns import as_float64, to_numbers
from devicelab.errors import UserError
from devicelab.training.callbacks import Callbacks, LogPoint
from devicelab.training.interrupt import StopFlag

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")
COMPLETE = {
    "config.json hardware.json metrics.csv losses.npy summary.json loss.png model.safetensors",
    "state.safetensors preprocessing.json",
}
COMPLETE = set(" ".join(COMPLETE).split())


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (("--seed", "-1"), "--seed must be between 0 and 4294967295"),
        (("--lr", "inf"), "--lr must be positive and finite"),
        (("--momentum", "nan"), "--momentum and --weight-decay must be finite"),
        (("--target", "species"), "--target species needs --data"),
    ],
)
def test_out_of_range_options_are_user_errors(cli, options, fragment):
    assert_user_error(cli("train", "--epochs", "5", *options), fragment)


def test_an_unwritable_runs_dir_fails_before_training(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = cli("train", "--epochs", "5", *CPU1, "--runs-dir", "afile/runs")
    assert_user_error(result, "cannot write run folders under afile/runs", "is not a folder", "--runs-dir")
    assert result.stdout == ""  # nothing was trained


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "devicelab", "train", "--device", "cpu", "--threads", "1", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_while_the_run_folder_is_written_leaves_it_complete(tmp_path):
    """The signal comes just after the last log point, while the folder (loss.png: ~1 s) is written."""
    process = _start(tmp_path, "--epochs", "300", "--name", "late")
    for line in process.stderr:
        if "epoch 300/300" in line:
            break
    # the last log point is printed: the loop is over and the folder is being written (~1 s here)
    assert process.poll() is None, "the run ended before the signal: this test tested nothing"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr and process.returncode == 0, stderr
    folder = tmp_path / "runs" / "late"
    assert {p.name for p in folder.iterdir()} == COMPLETE
    assert json.loads((folder / "summary.json").read_text())["status"] == "completed"


def test_sigterm_stops_like_ctrl_c_and_saves_a_resumable_run(tmp_path):
    process = _start(tmp_path, "--epochs", "1000000", "--log-every", "50", "--name", "term")
    assert process.stderr.readline().startswith("training")  # the handlers are installed
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted after epoch" in stderr, stderr
    summary = json.loads((tmp_path / "runs" / "term" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["resumable"] is True


def test_a_stop_asked_for_at_the_last_epoch_leaves_a_completed_run():
    flag = StopFlag()

    class StopAtTheEnd(Callbacks):
        def on_log(self, point: LogPoint) -> None:
            if point.epoch == point.total_epochs:
                flag.request()

    result = train(
        TrainConfig(epochs=40, log_every=20, device="cpu", threads=1), callbacks=StopAtTheEnd(), stop=flag
    )
    assert result.status == "completed" and result.epochs_done == 40


@pytest.fixture(scope="module")
def one_feature_run(tmp_path_factory):
    """A run trained on a CSV with one feature column (petal length) and a text target."""
    folder = tmp_path_factory.mktemp("one_feature")
    x, y = iris_arrays()
    rows = "\n".join(f"{float(row[2])!r},{SPECIES[t]}" for row, t in zip(x, y, strict=True))
    (folder / "petals.csv").write_text(f"petal_length,species\n{rows}\n")
    result = run_cli(
        "train",
        "--data",
        "petals.csv",
        "--target",
        "species",
        "--epochs",
        "30",
        *CPU1,
        "--name",
        "p",
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    return folder


def test_predict_from_a_file_with_the_one_feature_column(one_feature_run, tmp_path):
    (tmp_path / "new.csv").write_text("petal_length\n1.4\n5.9\n")
    result = run_cli("predict", str(one_feature_run / "runs" / "p"), "--data", "new.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "petal_length,predicted_species,confidence" and len(lines) == 3
    assert all(line.split(",")[1] in SPECIES for line in lines[1:])


def test_predict_imputes_missing_cells_as_training_did(one_feature_run, tmp_path):
    """Once an error ("every feature is needed"): a gap is now filled with the training median, as in
    training, so every row gets a prediction (issue 9)."""
    (tmp_path / "holes.csv").write_text("petal_length\n1.4\n\n?\n")
    result = run_cli("predict", str(one_feature_run / "runs" / "p"), "--data", "holes.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].startswith("?,") and "2 predictions" in result.stderr


def test_predict_out_into_a_folder_is_a_user_error(one_feature_run, tmp_path):
    run = str(one_feature_run / "runs" / "p")
    result = run_cli("predict", run, "--data", str(one_feature_run / "petals.csv"), "--out", str(tmp_path))
    assert_user_error(result, f"cannot write --out {tmp_path}", "give --out a file path")


@pytest.mark.parametrize(
    ("file", "content", "command", "fragment"),
    [
        ("summary.json", "null", "train", "summary.json is corrupt (a JSON NoneType, not an object)"),
        ("preprocessing.json", '{"model_spec": {"hidden": ["x"]}}', "predict", "model shape saved beside"),
        (
            "metrics.csv",
            "epoch,train_loss\nabc,1\n",
            "train",
            "metrics.csv holds a value devicelab cannot use",
        ),
    ],
)
def test_damaged_run_folders_are_user_errors(one_feature_run, tmp_path, file, content, command, fragment):
    run = Path(shutil.copytree(one_feature_run / "runs" / "p", tmp_path / "p"))
    (run / file).write_text(content)
    if command == "train":
        result = run_cli("train", "--resume", str(run), "--epochs", "60", "--quiet", cwd=tmp_path)
    else:
        result = run_cli("predict", str(run), "--data", str(one_feature_run / "petals.csv"), cwd=tmp_path)
    assert_user_error(result, fragment, "train again")


def test_a_file_given_as_the_run_folder(cli, tmp_path):
    iris_csv(tmp_path / "iris.csv")
    assert_user_error(
        cli("predict", "iris.csv", "--data", "iris.csv"), "iris.csv is a file, not a run folder"
    )


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("utf-16", "\t"), ("utf-32", ","), ("cp1252", ";"), ("utf-8", ",")]
)
def test_text_encodings_that_spreadsheets_write(tmp_path, encoding, delimiter):
    """Excel's "Unicode Text" (UTF-16 with a byte-order mark, tabs) and plain "CSV" (Windows-1252)."""
    x, y = iris_arrays()
    header = delimiter.join([*COLUMNS, "espèce"])
    rows = [
        delimiter.join([*(repr(float(v)) for v in row), f"{SPECIES[t]}é"])
        for row, t in zip(x, y, strict=True)
    ]
    path = tmp_path / "iris.csv"
    path.write_bytes("\n".join([header, *rows]).encode(encoding))  # Python's utf-16/32 write a BOM
    frame = read_frame(path, target="espèce")
    assert frame.delimiter == delimiter and frame.columns == (*COLUMNS, "espèce")
    features = [as_float64(to_numbers(frame.table.column(c))[0]) for c in COLUMNS]
    np.testing.assert_array_equal(np.column_stack(features), x)
    assert encode_target(frame.table.column("espèce"), "espèce", None).classes == tuple(
        f"{s}é" for s in SPECIES
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (gzip.compress(b"a,b\n1,2\n")[:12], "gzip-compressed but cannot be decompressed"),
        (b"PK\x03\x04" + bytes(40), "Excel workbook"),
        ("a,b\n1,2\n".encode("utf-16-le"), "NUL bytes"),
    ],
    ids=["truncated-gzip", "xlsx", "utf-16-without-bom"],
)
def test_files_that_are_not_csv_text_are_named(tmp_path, content, fragment):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=fragment):
        read_frame(path)


def test_a_gzip_file_through_the_cli(cli, tmp_path):
    """A gzip-compressed CSV is read as it is (whatever its name says)."""
    (tmp_path / "iris.csv.gz").write_bytes(gzip.compress(iris_csv(tmp_path / "iris.csv").read_bytes()))
    result = cli("train", "--data", "iris.csv.gz", "--target", "species", "--epochs", "20", *CPU1)
    assert result.returncode == 0, result.stderr
    assert "gzip" in result.stdout  # the line that says how the file was read


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_on_a_narrow_terminal_fits_the_line_it_redraws():
    """On a real 80-column pseudo-terminal each redrawn line fits, and still shows the ETA."""
    import fcntl
    import struct
    import termios

    from devicelab.report.progress import ProgressBar

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with os.fdopen(follower, "w") as stream:
        bar = ProgressBar(stream)
        for epoch in (100, 200):
            metrics = {"test_loss": 0.9871, "test_accuracy": 0.6333}
            bar.on_log(LogPoint(epoch, 20000, 1.005, metrics, elapsed_s=1.0, eta_s=199.0))
    chunks = []  # a pseudo-terminal's read may return one write at a time: read until the closed end
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the follower is closed and all it wrote was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    written = b"".join(chunks).decode()
    os.close(leader)
    redraws = [part for part in written.split("\r") if part.strip()]
    assert len(redraws) == 2
    assert all(len(part) < 80 and "ETA 3:19" in part and "epoch" in part for part in redraws), redraws


def test_regression_learns_with_the_default_lr_whatever_the_targets_units():
    """diabetes' target is in the hundreds: standardised for training, the seed's SGD lr 0.01 fits it
    about as well as least squares does, and the RMSE is reported in the target's own units."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    least_squares_r2 = LinearRegression().fit(x_train, y_train).score(x_test, y_test)  # ~0.45
    result = train(TrainConfig(dataset="diabetes", epochs=1500, log_every=500, device="cpu", threads=1))
    assert result.final["test_r2"] >= least_squares_r2 - 0.1
    scaler = result.dataset.target_scaler
    with torch.inference_mode():
        out = result.model(torch.from_numpy(result.dataset.x_test))[:, 0].double().numpy()
    rmse = np.sqrt(np.mean((out * scaler.scale[0] + scaler.shift[0] - y_test) ** 2))
    assert rmse == pytest.approx(result.final["test_rmse"], rel=1e-4) and rmse > 30  # in the target's units


def test_resume_a_run_whose_csv_moved(cli, tmp_path):
    config = TrainConfig(data=str(iris_csv(tmp_path / "iris.csv")), target="species", epochs=20, device="cpu")
    train(config).save(tmp_path / "runs", "m")
    (tmp_path / "iris.csv").rename(tmp_path / "moved.csv")
    result = cli("train", "--resume", "runs/m", "--epochs", "40", "--quiet")
    assert_user_error(result, "iris.csv, which is no longer there", "pass --data with the file's new path")
    resumed = cli("train", "--resume", "runs/m", "--epochs", "40", "--quiet", "--data", "moved.csv")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "runs" / "m-resumed" / "summary.json").read_text())["epochs_done"] == 40


def test_more_epochs_than_memory_for_their_losses_is_a_user_error(cli):
    result = cli("train", "--epochs", str(10**13), *CPU1)  # 40 TB of float32 losses
    assert_user_error(result, f"--epochs {10**13} needs 40000.0 GB", "--resume")


def test_into_a_file_the_line_of_a_stop_is_written_even_inside_the_rate_limit(tmp_path):
    """Piped to a log, lines are rate-limited; a run that stops early still logs where it stopped."""
    from devicelab.report.progress import ProgressBar

    metrics = {"test_loss": 0.5, "test_accuracy": 0.9}
    with open(tmp_path / "log.txt", "w") as stream:
        bar = ProgressBar(stream, every_s=3600.0)
        for epoch in (100, 200, 300):
            bar.on_log(LogPoint(epoch, 20000, 1.0, metrics, elapsed_s=1.0, eta_s=60.0))
        bar.close()  # what the command does for an interrupted run
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert [line.split("epoch ")[1].split()[0] for line in lines] == ["100/20000", "300/20000"]
