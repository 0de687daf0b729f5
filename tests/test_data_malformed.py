"""Malformed and unusual files found by scripts/data_robustness.py that were read wrongly or failed late:
a delimiter ending every data line (not the header), Excel's ``sep=`` line, JSON given as CSV, and a regression
target too far from the others for float32 training. Each against a reference (pandas' reading, the plain file)
or as one line with exit status 2, through ``devicelab.cli.main`` in this process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from csv_files import COLUMNS, iris_csv, iris_rows
from devicelab.cli import main
from devicelab.data import DataSpec, load_dataset, read_frame
from devicelab.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_delimiter_ending_every_data_line_is_an_empty_last_column_not_row_names(tmp_path):
    """Header ``a,b,c,species`` and rows ``5.1,3.5,1.4,0.2,setosa,``: taking the extra cell for R's row names
    (as for ``write.table``) shifted every name one column right and left the target empty."""
    path = tmp_path / "trailing.csv"
    rows = iris_rows()
    path.write_text(",".join((*COLUMNS, "species")) + "\n" + "".join(",".join(r) + ",\n" for r in rows))
    frame = read_frame(path)
    reference = pd.read_csv(path, index_col=False)  # pandas: the header names the first cells
    assert frame.columns[:5] == (*COLUMNS, "species")
    for name in (*COLUMNS, "species"):
        assert frame.table.column(name).to_pylist() == reference[name].tolist()
    data = load_dataset(DataSpec(data=str(path), target="species"))
    roles = {r.name: r.role for r in data.roles}
    assert roles == {**dict.fromkeys(COLUMNS, "numeric"), "unnamed_6": "dropped", "species": "target"}
    assert data.x_train.shape[1] == 4 and data.classes == ("setosa", "versicolor", "virginica")
    r_export = tmp_path / "r.csv"  # R's numbered row names and an empty last column stay R's reading
    r_export.write_text('a,b,c\n"1",0.5,0.7,\n"2",0.1,0.3,\n"3",0.2,0.9,\n')
    assert read_frame(r_export).columns == ("unnamed_1", "a", "b", "c")
    assert read_frame(r_export).table.column("a").to_pylist() == [0.5, 0.1, 0.2]


def test_excels_sep_line_names_the_delimiter_and_is_skipped(tmp_path):
    plain = iris_csv(tmp_path / "plain.csv", delimiter=";")
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"sep=;\r\n" + plain.read_bytes())
    frame, reference = read_frame(excel), read_frame(plain)
    assert frame.delimiter == ";" and frame.columns == reference.columns
    assert frame.table.equals(reference.table)


def test_json_given_as_csv_is_named_json_in_one_line(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_text(json.dumps([dict(zip((*COLUMNS, "species"), r, strict=True)) for r in iris_rows()[:5]]))
    assert (
        main(["train", "--data", str(path), "--target", "species", "--runs-dir", str(tmp_path / "runs")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is JSON, not CSV" in err[0] and "pandas.read_json" in err[0]
    assert not (tmp_path / "runs").exists()


def regression_file(path, value: str):
    x = np.random.default_rng(0).normal(size=(40, 2)).round(3)
    y = [repr(round(float(a * 3 + b), 3)) for a, b in x]
    y[6] = value
    path.write_text("a,b,price\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(x, y, strict=True)))
    return path


@pytest.mark.parametrize("value", ["1e15", "-1e39"])
def test_a_target_too_far_from_the_others_is_refused_naming_its_row(tmp_path, capsys, value):
    """1e15 among values of about ±5 trained to a test R² of -6 with a warning; from 1e20 (1e39: beyond
    float32) the loss overflowed at epoch 1 and the error blamed the learning rate."""
    path = regression_file(tmp_path / "prices.csv", value)
    argv = ["train", "--data", str(path), "--target", "price", "--runs-dir", str(tmp_path / "runs")]
    assert main([*argv, "--epochs", "5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too far from the others" in err[0]
    assert f"data row(s) 7 ({float(value):g})" in err[0] and str(path) in err[0]
    assert not (tmp_path / "runs").exists()
    assert main([*argv, "--lang", "zh"]) == 2
    assert "离其他值太远" in capsys.readouterr().err


def test_an_outlier_a_float32_model_can_hold_still_trains_with_its_warning(tmp_path):
    data = load_dataset(DataSpec(data=str(regression_file(tmp_path / "p.csv", "1e6")), target="price"))
    assert any("extreme value" in w and "7 (1e+06)" in w for w in data.warnings)


def test_a_file_with_2000_columns_names_a_few_of_them_when_the_target_is_missing(tmp_path, capsys):
    path = tmp_path / "wide.csv"
    header = [f"f{i}" for i in range(2000)] + ["label"]
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(["1"] * 2000 + [c]) for c in "abab") + "\n")
    assert main(["train", "--data", str(path), "--target", "lable", "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'label'?" in err[0] and "f11, … (+1989)" in err[0]
    assert len(err[0]) < 400  # was 13,000 characters: every column named


def test_predict_refuses_to_write_over_its_own_data_file(tmp_path, capsys):
    data = iris_csv(tmp_path / "rows.csv")
    before = data.read_bytes()
    assert main(["predict", str(tmp_path / "any-run"), "--data", str(data), "--out", str(data)]) == 2
    assert "is a file this command reads" in capsys.readouterr().err and data.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "content"),
    [("summary.json", b"[]"), ("metrics.csv", b"epoch,train_loss\nx,0.5\n"), ("losses.npy", None)],
)
def test_report_on_a_damaged_run_folder_says_which_file_in_one_line(tmp_path, capsys, name, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    if content is None:  # an .npy of Python objects, which numpy refuses to unpickle
        np.save(run / name, np.array([{"loss": 1}], dtype=object), allow_pickle=True)
    else:
        (run / name).write_bytes(content)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "Traceback" not in err[0]
    assert not (run / "report.html").exists()


def test_a_delimiter_ending_only_the_header_names_no_column(tmp_path):
    plain = iris_csv(tmp_path / "plain.csv")
    lines = plain.read_text().splitlines(keepends=True)
    ended = tmp_path / "ended.csv"
    ended.write_text(lines[0].rstrip("\n") + ",\n" + "".join(lines[1:]))
    frame = read_frame(ended)
    assert frame.columns == read_frame(plain).columns and frame.table.equals(read_frame(plain).table)


def numbers_with_a_typo(path, labels):
    x = np.random.default_rng(1).normal(size=(40, 2)).round(3)
    path.write_text("a,b,y\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(x, labels, strict=True)))
    return path


def test_a_numeric_target_with_a_stray_text_cell_is_refused_naming_the_cell_and_row(tmp_path):
    """One "12a" among 40 prices made the target 40 classes of one row each, with no test row."""
    labels = [f"{v:.3f}" for v in np.linspace(1, 9, 40)]
    labels[4] = "12a"
    path = numbers_with_a_typo(tmp_path / "prices.csv", labels)
    with pytest.raises(UserError, match=r"holds numbers except 1 cell\(s\) such as '12a' in data row 5"):
        load_dataset(DataSpec(data=str(path), target="y"))
    data = load_dataset(DataSpec(data=str(path), target="y", na_values=("12a",)))  # the fix it names
    assert data.task == "regression" and data.source["rows_target_missing"] == 1
    classes = [str(i % 3) for i in range(40)]
    classes[7] = "unknown"  # classes 0, 1, 2 and a text class stay classes
    data = load_dataset(DataSpec(data=str(numbers_with_a_typo(tmp_path / "c.csv", classes)), target="y"))
    assert data.classes == (0, 1, 2, "unknown")


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "{run}", "-o", "{run}/summary.json"],
        ["report", "{run}", "-o", "{data}"],  # a report written over the user's CSV
        ["predict", "{run}", "--data", "{data}", "--out", "{run}/preprocessing.json"],
    ],
)
def test_an_output_path_never_replaces_a_runs_files_or_the_users_data(tmp_path, capsys, argv):
    """report -o RUN/summary.json wrote HTML over the run's summary; predict --out RUN/preprocessing.json
    replaced the run's preprocessing with predictions (the run could no longer predict)."""
    run, data = tmp_path / "run", iris_csv(tmp_path / "rows.csv")
    run.mkdir()
    for name in ("summary.json", "preprocessing.json"):
        (run / name).write_text('{"status": "completed"}')
    (run / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    before = {p: p.read_bytes() for p in (*run.iterdir(), data)}
    assert main([a.format(run=run, data=data) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "writing there would" in err and {p: p.read_bytes() for p in before} == before


def test_one_data_row_is_too_few_rows_and_a_constant_number_is_no_class(tmp_path):
    one = iris_csv(tmp_path / "one.csv")
    one.write_text("".join(one.read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(UserError, match=r"1 rows are too few for --test-size 0\.2"):  # was "a single class"
        load_dataset(DataSpec(data=str(one), target="species"))
    constant = numbers_with_a_typo(tmp_path / "c.csv", ["5"] * 40)
    with pytest.raises(UserError, match=r"'y' has the same value \(5\) in every row"):
        load_dataset(DataSpec(data=str(constant), target="y"))


def test_a_text_target_with_about_one_row_per_value_is_refused_unless_asked_for(tmp_path):
    """Numbers with more stray text than the 5% above (or names) became one class per row, no test row."""
    labels = [f"{v:.3f}" for v in np.linspace(1, 9, 40)]
    labels[1:6] = ["x"] * 5
    path = numbers_with_a_typo(tmp_path / "p.csv", labels)
    with pytest.raises(UserError, match="36 different values in 40 rows"):
        load_dataset(DataSpec(data=str(path), target="y"))
    assert len(load_dataset(DataSpec(data=str(path), target="y", task="classification")).classes) == 36
