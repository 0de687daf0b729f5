"""CSV loading against the same data read by scikit-learn: delimiters, BOM, text labels, missing cells."""

from __future__ import annotations

import numpy as np
import pytest

from csv_files import COLUMNS, SPECIES, iris_arrays, iris_csv, iris_rows, write_csv
from devicelab import csvdata
from devicelab.data import check_split_size, load_dataset
from devicelab.errors import UserError
from devicelab.training.config import TrainConfig


def config_for(path, target="species", **kw) -> TrainConfig:
    return TrainConfig(data=str(path), target=target, **kw)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("bom", [False, True])
def test_csv_any_delimiter_and_bom_reads_the_same_data(tmp_path, delimiter, bom):
    path = iris_csv(tmp_path / "iris.csv", delimiter=delimiter, bom=bom)
    table = csvdata.read_table(path)
    assert table.delimiter == delimiter
    assert table.columns == (*COLUMNS, "species")  # no "\ufeffsepal_length"
    x, y = iris_arrays()
    np.testing.assert_array_equal(csvdata.numeric_features(table, COLUMNS), x)
    target = csvdata.encode_target(table, "species", None)
    assert target.task == "classification"
    assert target.classes == SPECIES
    np.testing.assert_array_equal(target.values, y)


def test_csv_dataset_matches_the_builtin_split_and_scaling(tmp_path):
    """The CSV path splits and scales exactly as the built-in path does for the same rows."""
    path = iris_csv(tmp_path / "iris.csv", text_labels=False)
    from_csv = load_dataset(config_for(path))
    builtin = load_dataset(TrainConfig())
    np.testing.assert_array_equal(from_csv.x_train, builtin.x_train)
    np.testing.assert_array_equal(from_csv.y_test, builtin.y_test)
    assert from_csv.classes == (0, 1, 2)
    assert from_csv.source["kind"] == "csv" and len(from_csv.source["sha256"]) == 64


def test_decimal_comma_in_semicolon_file(tmp_path):
    rows = [[v.replace(".", ",") for v in row] for row in iris_rows()]
    table = csvdata.read_table(write_csv(tmp_path / "eu.csv", rows, delimiter=";"))
    np.testing.assert_array_equal(csvdata.numeric_features(table, COLUMNS), iris_arrays()[0])


def test_quoted_cells_with_delimiters_inside(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b,label\n1,2,"x, y"\n3,4,"z"\n5,6,"x, y"\n')
    table = csvdata.read_table(path)
    assert table.column("label") == ["x, y", "z", "x, y"]
    assert csvdata.encode_target(table, "label", None).classes == ("x, y", "z")


def test_missing_cells_are_counted_with_their_lines(tmp_path):
    rows = iris_rows()
    rows[3][1] = ""
    rows[10][0] = "NaN"
    rows[20][4] = "NA"
    path = write_csv(tmp_path / "holes.csv", rows)
    with pytest.raises(UserError) as caught:
        load_dataset(config_for(path))
    message = str(caught.value)
    assert "3 row(s) with empty or NaN cells" in message
    assert "lines 5, 12, 22" in message  # header is line 1
    assert "--dropna" in message
    dropped = load_dataset(config_for(path, dropna=True))
    assert len(dropped.x_train) + len(dropped.x_test) == 147
    assert dropped.source["rows_dropped"] == 3


def test_target_inference():
    def table(values):
        return csvdata.Table(
            None,
            ("x", "t"),
            tuple((str(i), v) for i, v in enumerate(values)),
            tuple(range(2, 2 + len(values))),
            ",",
            "",
        )

    assert csvdata.encode_target(table(["1", "2", "1"]), "t", None).task == "classification"
    assert csvdata.encode_target(table(["1.5", "2", "1"]), "t", None).task == "regression"
    many = [str(i) for i in range(50)]
    assert csvdata.encode_target(table(many), "t", None).task == "regression"
    assert csvdata.encode_target(table(many), "t", "classification").classes == tuple(range(50))
    with pytest.raises(UserError, match="numeric target"):
        csvdata.encode_target(table(["a", "b"]), "t", "regression")


@pytest.mark.parametrize(
    ("rows", "test_size", "ok"),
    [(3, 0.2, True), (2, 0.2, False), (4, 0.5, True), (3, 0.5, False), (10, 0.9, False)],
)
def test_split_size_rule_agrees_with_sklearn(rows, test_size, ok):
    from sklearn.model_selection import train_test_split

    if ok:
        check_split_size(rows, test_size)
        train, test = train_test_split(np.arange(rows), test_size=test_size, random_state=0)
        assert len(train) >= 2 and len(test) >= 1
    else:
        with pytest.raises(UserError, match="too few"):
            check_split_size(rows, test_size)


def test_ragged_row_names_its_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(UserError, match="line 3 has 2 cells but the header has 3"):
        csvdata.read_table(path)


def test_not_utf8_is_read_as_windows_1252(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,é\n".encode("latin-1"))
    table = csvdata.read_table(path)
    assert table.encoding == "cp1252" and table.column("b") == ["é"]


def test_quoted_cells_may_hold_newlines_and_line_separators(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(
        'x,label\n1.5,"two\nlines"\n2.5,"page\x0cbreak"\n3.5,"sep\u2028arator"\n4.5,plain\n', encoding="utf-8"
    )
    table = csvdata.read_table(path)
    assert table.column("label") == ["two\nlines", "page\x0cbreak", "sep\u2028arator", "plain"]
    assert table.column("x") == ["1.5", "2.5", "3.5", "4.5"]


def test_a_bad_row_after_a_multiline_cell_names_its_file_line(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('x,label\n1.5,"two\nlines"\n2.5,a,extra\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"line 4 has 3 cells but the header has 2"):
        csvdata.read_table(path)
