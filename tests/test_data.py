"""CSV loading against the same data read by scikit-learn: delimiters, BOM, text labels, missing cells."""

from __future__ import annotations

import numpy as np
import pytest

from csv_files import COLUMNS, SPECIES, iris_arrays, iris_csv, iris_rows, write_csv
from devicelab.data import check_split_size, encode_target, load_dataset, read_frame
from devicelab.data.columns import as_float64, to_numbers
from devicelab.errors import UserError
from devicelab.training.config import TrainConfig


def config_for(path, target="species", **kw) -> TrainConfig:
    return TrainConfig(data=str(path), target=target, **kw)


def numbers(frame, columns=COLUMNS) -> np.ndarray:
    """The named columns of a frame as a float64 matrix (how the loader reads numbers)."""
    return np.column_stack([as_float64(to_numbers(frame.table.column(c), frame.decimal)[0]) for c in columns])


def text(frame, name) -> list:
    return frame.table.column(name).to_pylist()


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("bom", [False, True])
def test_csv_any_delimiter_and_bom_reads_the_same_data(tmp_path, delimiter, bom):
    path = iris_csv(tmp_path / "iris.csv", delimiter=delimiter, bom=bom)
    frame = read_frame(path, target="species")
    assert frame.delimiter == delimiter
    assert frame.columns == (*COLUMNS, "species")  # no "\ufeffsepal_length"
    x, y = iris_arrays()
    np.testing.assert_array_equal(numbers(frame), x)
    target = encode_target(frame.table.column("species"), "species", None)
    assert target.task == "classification"
    assert target.classes == SPECIES
    np.testing.assert_array_equal(target.values, y)


def stratified_reference(x, y, test_size=0.2, seed=42):
    """scikit-learn's stratified split and MinMax scaling fitted on its training rows."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    scaler = MinMaxScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def test_csv_dataset_splits_classes_as_stratified_train_test_split(tmp_path):
    """Without a validation split, a file's classes are split as ``train_test_split(stratify=y)`` splits
    them and scaled as the lesson scales (the built-in set keeps the lesson's plain split)."""
    path = iris_csv(tmp_path / "iris.csv", text_labels=False)
    from_csv = load_dataset(config_for(path, val_size=0.0))
    builtin = load_dataset(TrainConfig())
    x_train, x_test, _, y_test = stratified_reference(*iris_arrays())
    np.testing.assert_allclose(from_csv.x_train, x_train, atol=1e-6)
    np.testing.assert_allclose(from_csv.x_test, x_test, atol=1e-6)
    np.testing.assert_array_equal(from_csv.y_test, y_test)
    assert np.bincount(from_csv.y_test).tolist() == [10, 10, 10]
    assert from_csv.classes == (0, 1, 2)
    assert from_csv.source["kind"] == "csv" and len(from_csv.source["sha256"]) == 64
    assert len(builtin.x_val) == 0 and builtin.x_val.shape[1] == 4 and builtin.y_val.dtype == np.int64


def test_validation_rows_come_from_the_training_rows(tmp_path):
    """The test rows stay those without validation; the validation rows are a share of the training rows
    (stratified too), fitted with them (one scaler for both), for files by default."""
    path = iris_csv(tmp_path / "iris.csv", text_labels=False)
    data = load_dataset(config_for(path))
    whole = load_dataset(config_for(path, val_size=0.0))
    np.testing.assert_array_equal(data.x_test, whole.x_test)
    assert len(data.x_val) == 18 and len(data.x_train) == 102  # ceil(0.15 * 120) of the 120
    assert np.bincount(data.y_val).tolist() == [6, 6, 6]
    pooled = np.concatenate([data.x_train, data.x_val])
    assert sorted(map(tuple, pooled.tolist())) == sorted(map(tuple, whole.x_train.tolist()))
    assert len(load_dataset(config_for(path, val_size=0.3)).x_val) == 36


def test_decimal_comma_in_semicolon_file(tmp_path):
    rows = [[v.replace(".", ",") for v in row] for row in iris_rows()]
    frame = read_frame(write_csv(tmp_path / "eu.csv", rows, delimiter=";"))
    assert frame.decimal == ","
    np.testing.assert_array_equal(numbers(frame), iris_arrays()[0])


def test_quoted_cells_with_delimiters_inside(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b,label\n1,2,"x, y"\n3,4,"z"\n5,6,"x, y"\n')
    frame = read_frame(path, target="label")
    assert text(frame, "label") == ["x, y", "z", "x, y"]
    assert encode_target(frame.table.column("label"), "label", None).classes == ("x, y", "z")


def test_missing_cells_are_imputed_or_dropped_with_dropna(tmp_path):
    from sklearn.model_selection import train_test_split

    rows = iris_rows()
    train, _ = train_test_split(np.arange(150), test_size=0.2, random_state=42, stratify=iris_arrays()[1])
    rows[train[0]][1] = ""  # holes in training rows: each gets an indicator column
    rows[train[1]][0] = "NaN"
    rows[train[2]][2] = "NA"
    path = write_csv(tmp_path / "holes.csv", rows)
    data = load_dataset(config_for(path, val_size=0.0))
    assert len(data.x_train) + len(data.x_test) == 150
    names = data.encoded_names
    assert names[4:] == ("sepal_length_na", "sepal_width_na", "petal_length_na")
    dropped = load_dataset(config_for(path, dropna=True))
    assert len(dropped.x_train) + len(dropped.x_val) + len(dropped.x_test) == 147
    assert dropped.source["rows_dropped"] == 3 and dropped.source["rows_dropna"] == 3
    assert dropped.n_features == 4  # nothing missing is left: no indicator columns


def test_target_inference():
    def column(values):
        import pyarrow as pa

        return pa.chunked_array([pa.array(values, pa.string())])

    assert encode_target(column(["1", "2", "1"]), "t", None).task == "classification"
    assert encode_target(column(["1.5", "2", "1"]), "t", None).task == "regression"
    many = [str(i) for i in range(50)]
    assert encode_target(column(many), "t", None).task == "regression"
    assert encode_target(column(many), "t", "classification").classes == tuple(range(50))
    with pytest.raises(UserError, match="numeric target"):
        encode_target(column(["a", "b"]), "t", "regression")


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
        read_frame(path)


def test_not_utf8_is_read_as_windows_1252(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,é\n".encode("latin-1"))
    frame = read_frame(path)
    assert frame.encoding == "cp1252" and text(frame, "b") == ["é"]


def test_not_utf8_after_the_first_block_is_read_as_windows_1252(tmp_path):
    """The sniffed sample is UTF-8, a later cell is not: pyarrow's refusal sends it to Windows-1252."""
    path = tmp_path / "late.csv"
    body = "".join(f"{i},plain\n" for i in range(20000))
    path.write_bytes(("a,b\n" + body).encode() + "1,café\n".encode("cp1252"))
    frame = read_frame(path)
    assert frame.encoding == "cp1252" and text(frame, "b")[-1] == "café"


def test_quoted_cells_may_hold_newlines_and_line_separators(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text(
        'x,label\n1.5,"two\nlines"\n2.5,"page\x0cbreak"\n3.5,"sep\u2028arator"\n4.5,plain\n', encoding="utf-8"
    )
    frame = read_frame(path, text=True)
    assert text(frame, "label") == ["two\nlines", "page\x0cbreak", "sep\u2028arator", "plain"]
    assert text(frame, "x") == ["1.5", "2.5", "3.5", "4.5"]


def test_a_bad_row_after_a_multiline_cell_names_its_file_line(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('x,label\n1.5,"two\nlines"\n2.5,a,extra\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"line 4 has 3 cells but the header has 2"):
        read_frame(path)


@pytest.mark.parametrize(("rows", "test_size", "seed"), [(150, 0.2, 42), (7, 0.5, 0), (1001, 0.15, 3)])
def test_split_draws_the_rows_train_test_split_draws(rows, test_size, seed):
    from sklearn.model_selection import train_test_split

    from devicelab.data.dataset import split

    expected = train_test_split(np.arange(rows) * 3, test_size=test_size, random_state=seed)
    for mine, theirs in zip(split(np.arange(rows) * 3, test_size, seed), expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_data_layer_imports_nothing_from_training_nor_torch():
    """issue 11: data.py imported training.config (a cycle); bad files must also fail before torch loads."""
    import subprocess
    import sys

    code = "import sys, devicelab.data; print(sorted(m for m in sys.modules if m.startswith(('devicelab.training', 'torch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_later_block_that_does_not_fit_the_first_blocks_types_is_read_again(tmp_path):
    """Types come from pyarrow's first block when streaming; whole numbers there and a decimal (or text)
    far below are read again over every row, not refused."""
    path = tmp_path / "late.csv"
    body = "".join(f"{i % 7},{i % 3}\n" for i in range(200_000))
    path.write_text("a,y\n" + body + "2.5,1\nx,0\n")
    frame = read_frame(path, target="y")
    values = frame.table.column("a")
    assert values.type == "string" and values[-2].as_py() == "2.5" and len(values) == 200_002
    data = load_dataset(config_for(path, target="y"))
    assert [r.role for r in data.roles] == ["numeric", "target"] and "'x' taken as missing" in data.roles[
        0
    ].detail


def test_iris_read_without_importing_sklearn_is_sklearns_iris():
    """The seed workload reads the file scikit-learn ships without importing scikit-learn (about a second
    of start-up); the data must be load_iris()'s, bit for bit."""
    import sklearn.datasets

    from devicelab.data.builtin import _iris_as_sklearn_ships_it

    data, target, features = _iris_as_sklearn_ships_it()
    bunch = sklearn.datasets.load_iris()
    np.testing.assert_array_equal(data, bunch.data)
    assert data.dtype == bunch.data.dtype and target.dtype == bunch.target.dtype
    np.testing.assert_array_equal(target, bunch.target)
    assert list(features) == list(bunch.feature_names)


def test_the_seed_workload_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import sys, devicelab.data as d; d.load_dataset(d.DataSpec()); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
