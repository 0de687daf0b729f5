"""Every bad input of `devicelab train` / `predict`, through the real CLI in a subprocess: exit status 2,
one line naming what is wrong and how to fix it, no traceback, nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import assert_user_error, run_cli
from csv_files import iris_csv, iris_rows, write_csv

FAST = ("--epochs", "20", "--quiet", "--device", "cpu", "--threads", "1")


def test_missing_file(cli, tmp_path):
    assert_user_error(cli("train", "--data", "nope.csv", "--target", "y"), "nope.csv", "does not exist")


def test_empty_file(cli, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert_user_error(cli("train", "--data", "empty.csv", "--target", "y"), "empty.csv is empty")


def test_header_only(cli, tmp_path):
    (tmp_path / "head.csv").write_text("a,b,y\n")
    assert_user_error(cli("train", "--data", "head.csv", "--target", "y"), "no data rows")


def test_unknown_target_lists_columns_and_suggests(cli, tmp_path):
    iris_csv(tmp_path / "iris.csv")
    result = cli("train", "--data", "iris.csv", "--target", "specis")
    assert_user_error(result, "target column 'specis'", "did you mean 'species'", "sepal_length, sepal_width")


def test_data_without_target(cli, tmp_path):
    iris_csv(tmp_path / "iris.csv")
    assert_user_error(cli("train", "--data", "iris.csv"), "--data needs --target")


def test_text_feature_columns_become_categories_named_in_the_role_table(cli, tmp_path):
    """Once refused ("non-numeric feature column"), a text column is now a categorical feature."""
    rows = [[*row[:4], "red" if i % 2 else "blue", row[4]] for i, row in enumerate(iris_rows())]
    header = ("sepal_length", "sepal_width", "petal_length", "petal_width", "colour", "species")
    write_csv(tmp_path / "mixed.csv", rows, header=header)
    result = cli("train", "--data", "mixed.csv", "--target", "species", *FAST)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("colour ")]
    assert "categorical" in line and "2 levels, one-hot" in line


def test_empty_and_nan_cells_are_imputed_and_dropna_drops_them(cli, tmp_path):
    rows = iris_rows()
    rows[0][0], rows[5][2] = "", "nan"
    write_csv(tmp_path / "holes.csv", rows)
    result = cli("train", "--data", "holes.csv", "--target", "species", *FAST, "--name", "imputed")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs" / "imputed" / "summary.json").read_text())
    assert sum(summary["rows"][k] for k in ("train", "val", "test")) == 150
    assert "missing -> median" in result.stdout
    ok = cli("train", "--data", "holes.csv", "--target", "species", "--dropna", *FAST, "--name", "dropped")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((tmp_path / "runs" / "dropped" / "summary.json").read_text())
    assert sum(summary["rows"][k] for k in ("train", "val", "test")) == 148
    assert summary["rows"]["dropped"] == 2


def test_one_class_target(cli, tmp_path):
    rows = [[*row[:4], "setosa"] for row in iris_rows()]
    write_csv(tmp_path / "one.csv", rows)
    assert_user_error(cli("train", "--data", "one.csv", "--target", "species"), "single class", "setosa")


def test_too_few_rows(cli, tmp_path):
    rows = iris_rows()
    write_csv(tmp_path / "two.csv", [rows[0], rows[60]])  # two classes, two rows
    assert_user_error(
        cli("train", "--data", "two.csv", "--target", "species"), "2 rows are too few", "at least 3"
    )


def test_unknown_dataset_suggests(cli):
    assert_user_error(cli("train", "--dataset", "irsi"), "unknown dataset 'irsi'", "did you mean 'iris'")


@pytest.mark.parametrize(
    ("option", "value"), [("--lr", "0"), ("--lr", "-0.1"), ("--epochs", "0"), ("--epochs", "-5")]
)
def test_non_positive_lr_or_epochs(cli, option, value):
    assert_user_error(cli("train", option, value), f"{option} must be positive")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_only_build_says_why_and_the_fix(cli):
    result = cli("train", "--device", "cuda", "--epochs", "5")
    if torch.version.cuda is None:
        assert_user_error(result, "not available", "CPU-only build", "install a CUDA build")
    else:
        assert_user_error(result, "not available")


@pytest.mark.parametrize("device", ["foo", *([] if torch.cuda.is_available() else ["cuda"])])
def test_a_bad_device_leaves_no_run_folder(cli, tmp_path, device):
    result = cli("train", "--device", device, "--epochs", "5", "--runs-dir", "out")
    assert_user_error(result, repr(device))
    assert not (tmp_path / "out").exists()


def test_resume_missing_folder(cli):
    assert_user_error(
        cli("train", "--resume", "runs/nothing-here"), "run folder runs/nothing-here does not exist"
    )


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("train", *FAST, "--name", "short", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "short"


@pytest.fixture
def short_run(trained_once, tmp_path):
    """A fresh copy of a 20-epoch run in this test's folder (tests damage it)."""
    return Path(shutil.copytree(trained_once, tmp_path / "runs" / "short"))


def test_resume_from_another_dataset(cli, short_run):
    result = cli("train", "--resume", str(short_run), "--dataset", "wine", "--epochs", "40")
    assert_user_error(result, "was trained on iris, not wine")


def test_resume_when_the_csv_changed(cli, tmp_path):
    iris_csv(tmp_path / "iris.csv")
    assert (
        cli("train", "--data", "iris.csv", "--target", "species", *FAST, "--name", "csvrun").returncode == 0
    )
    rows = iris_rows()
    rows[0][0] = "9.9"
    write_csv(tmp_path / "iris.csv", rows)
    result = cli("train", "--resume", "runs/csvrun", "--epochs", "40")
    assert_user_error(result, "was trained on other data", "sha256")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_resume_with_a_corrupt_weight_file(cli, short_run, damage):
    weights = short_run / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        data[: len(data) // 2] if damage == "truncate" else b"\x00" * 7 + b"not a tensor file"
    )
    before = sorted(p.name for p in short_run.parent.iterdir())
    result = cli("train", "--resume", str(short_run), "--epochs", "40")
    assert_user_error(result, "weight file", "is corrupt")
    assert sorted(p.name for p in short_run.parent.iterdir()) == before  # nothing new, nothing lost


def test_resume_a_finished_run_needs_more_epochs(cli, short_run):
    assert_user_error(cli("train", "--resume", str(short_run)), "already has 20 epochs", "--epochs N")


def test_predict_with_missing_feature_columns(cli, short_run, tmp_path):
    write_csv(tmp_path / "few.csv", [row[:2] for row in iris_rows()], header=("sepal_length", "sepal_width"))
    result = cli("predict", str(short_run), "--data", "few.csv")
    assert_user_error(result, "lacks the feature column(s)", "petal length (cm)")


def test_predict_with_a_missing_run(cli, tmp_path):
    iris_csv(tmp_path / "iris.csv")
    assert_user_error(
        cli("predict", "runs/none", "--data", "iris.csv"), "run folder runs/none does not exist"
    )
