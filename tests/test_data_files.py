"""Real-file layouts and column roles: compressed and Parquet files, space-separated R exports with row
names, single-quoted headers; IDs, constants, free text, dates; --features/--ignore/--categorical; and the
encoded matrix against scikit-learn's SimpleImputer, MissingIndicator, OneHotEncoder and MinMaxScaler."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from csv_files import COLUMNS, SPECIES, iris_arrays, iris_csv
from devicelab.data import DataSpec, encode_target, load_dataset, read_frame
from devicelab.errors import UserError


def spec(path, target="species", **kw) -> DataSpec:
    return DataSpec(data=str(path), target=target, **kw)


def roles_of(data) -> dict[str, tuple[str, str]]:
    return {r.name: (r.role, r.detail) for r in data.roles}


@pytest.mark.parametrize("kind", ["gz", "zst", "parquet"])
def test_compressed_and_parquet_files_give_the_plain_csvs_data(tmp_path, kind):
    plain = iris_csv(tmp_path / "iris.csv")
    if kind == "gz":
        path = tmp_path / "iris.csv.gz"
        path.write_bytes(gzip.compress(plain.read_bytes()))
    elif kind == "zst":
        path = tmp_path / "iris.csv.zst"
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(plain.read_bytes())
    else:
        path = tmp_path / "iris.parquet"
        x, y = iris_arrays()
        table = pa.table({**{c: x[:, i] for i, c in enumerate(COLUMNS)}, "species": [SPECIES[t] for t in y]})
        pq.write_table(table, path)
    expected = load_dataset(spec(plain))
    got = load_dataset(spec(path))
    np.testing.assert_array_equal(got.x_train, expected.x_train)
    np.testing.assert_array_equal(got.y_test, expected.y_test)
    assert got.classes == SPECIES
    assert got.source["kind"] == ("parquet" if kind == "parquet" else "csv")


def test_r_write_table_export_spaces_quotes_and_row_names(tmp_path):
    """R's ``write.table(df)``: space-separated, quoted text, a header with no name for the row names."""
    x, y = iris_arrays()
    lines = ['"Sepal.Length" "Sepal.Width" "Petal.Length" "Petal.Width" "Species"']
    lines += [
        f'"{i + 1}" {" ".join(repr(float(v)) for v in row)} "{SPECIES[t]}"'
        for i, (row, t) in enumerate(zip(x, y, strict=True))
    ]
    path = tmp_path / "iris.txt"
    path.write_text("\n".join(lines) + "\n")
    data = load_dataset(spec(path, target="Species", val_size=0.0))
    assert roles_of(data)["unnamed_1"] == ("dropped", "row numbers (1, 2, 3, ... in the first column)")
    assert data.feature_names == ("Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width")
    assert data.source["delimiter"] == " " and data.classes == SPECIES
    same_as_csv = load_dataset(spec(iris_csv(tmp_path / "iris.csv"), target="species", val_size=0.0))
    np.testing.assert_array_equal(data.x_train, same_as_csv.x_train)


def test_single_quoted_header_and_cells(tmp_path):
    path = tmp_path / "q.csv"
    rows = "".join(f"{i},{i % 3},'{'ab'[i % 2]}'\n" for i in range(30))
    path.write_text("'x','y','label'\n" + rows)
    frame = read_frame(path, target="label")
    assert frame.columns == ("x", "y", "label")
    assert set(frame.table.column("label").to_pylist()) == {"a", "b"}


def test_class_labels_none_and_na_are_labels_unless_declared_missing(tmp_path):
    """issue 11: "None"/"NA" in a target are classes; only empty cells and --na-values are missing."""
    x, y = iris_arrays()
    labels = ["None", "NA", "yes"]
    body = [f"{','.join(repr(float(v)) for v in row)},{labels[t]}" for row, t in zip(x, y, strict=True)]
    body[0] = body[0].rsplit(",", 1)[0] + ","  # one empty target cell
    path = tmp_path / "labels.csv"
    path.write_text(",".join([*COLUMNS, "label"]) + "\n" + "\n".join(body) + "\n")
    data = load_dataset(spec(path, target="label"))
    assert data.classes == ("NA", "None", "yes")
    assert data.source["rows_target_missing"] == 1
    assert sum(len(a) for a in (data.y_train, data.y_val, data.y_test)) == 149
    declared = load_dataset(spec(path, target="label", na_values=("NA",)))
    assert declared.classes == ("None", "yes") and declared.source["rows_target_missing"] == 51


def test_r_missing_marker_in_a_numeric_target_is_missing(tmp_path):
    """issue 18: R's NA in a column of numbers is a missing value, in a target as in a feature: the rows
    are dropped and counted, and the role table says so."""
    path = tmp_path / "ozone.csv"
    values = [f"{v:.1f}" for v in np.linspace(1, 100, 60)]
    values[3] = values[9] = "NA"
    path.write_text("x,ozone\n" + "".join(f"{i * 7 % 13},{v}\n" for i, v in enumerate(values)))
    data = load_dataset(spec(path, target="ozone"))
    assert data.task == "regression" and data.source["rows_target_missing"] == 2
    assert sum(len(a) for a in (data.y_train, data.y_val, data.y_test)) == 58
    assert "2 'NA' cell(s) taken as missing" in roles_of(data)["ozone"][1]
    declared = load_dataset(spec(path, target="ozone", na_values=("NA",)))
    assert declared.source["rows_target_missing"] == 2


def test_builtin_regression_target_asked_for_as_classes_is_refused():
    """issue 11: diabetes --task classification died with IndexError; now one path encodes every target."""
    with pytest.raises(UserError, match=r"214 distinct numbers.*regression target"):
        load_dataset(DataSpec(dataset="diabetes", task="classification"))
    wine = load_dataset(DataSpec(dataset="wine", task="classification"))
    assert wine.classes == ("class_0", "class_1", "class_2")  # scikit-learn's names for its classes


def test_few_whole_numbers_as_classes_keep_their_values_as_labels():
    target = encode_target(np.array([3, 7, 3, 9]), "t", "classification")
    assert target.classes == (3, 7, 9)
    np.testing.assert_array_equal(target.values, [0, 1, 0, 2])


def mixed_file(tmp_path, n=200, seed=0):
    """A file with every kind of column a real export has."""
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue"])
    rows = ["row,id,when,colour,city,size,constant,comment,weight,label"]
    for i in range(n):
        size = "" if i % 17 == 3 else f"{rng.normal(10, 2):.3f}"
        colour = "" if i % 23 == 5 else colours[rng.integers(3)]
        city = f"c{rng.integers(40)}"
        when = f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}"
        comment = f"note number {i} about this"
        label = "yes" if (colour == "red") ^ (rng.random() < 0.2) else "no"
        rows.append(
            f"{i + 1},{1000 + i},{when},{colour},{city},{size},7,{comment},{rng.integers(1, 4)},{label}"
        )
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_roles_of_a_mixed_file(tmp_path):
    data = load_dataset(spec(mixed_file(tmp_path), target="label"))
    roles = roles_of(data)
    assert roles["row"] == ("dropped", "row numbers (1, 2, 3, ... in the first column)")
    assert roles["id"] == ("dropped", "ID (unique per row)")
    assert roles["constant"] == ("dropped", "constant (7)")
    assert roles["comment"][0] == "dropped" and "free text" in roles["comment"][1]
    assert roles["when"][0] == "numeric" and "month, day, weekday" in roles["when"][1]
    assert roles["colour"][0] == "categorical" and "one-hot" in roles["colour"][1]
    assert roles["city"][0] == "categorical" and "embedding" in roles["city"][1]
    assert roles["size"][0] == "numeric" and "median" in roles["size"][1]
    assert roles["weight"] == ("numeric", "numbers")
    assert roles["label"][0] == "target"
    cities = len(data.preprocessor.categories.levels["city"])  # the cities in the training rows
    assert cities >= 38 and data.embeddings == ((cities + 2, round(1.6 * (cities + 2) ** 0.56)),)  # fastai


def test_overrides_features_ignore_categorical(tmp_path):
    path = mixed_file(tmp_path)
    only = load_dataset(spec(path, target="label", features=("size", "weight", "id")))
    assert only.feature_names == ("id", "size", "weight")  # an ID asked for by name is kept
    assert roles_of(only)["colour"] == ("dropped", "not in --features")
    ignored = load_dataset(spec(path, target="label", ignore=("city", "when")))
    assert "city" not in ignored.feature_names and roles_of(ignored)["city"] == ("dropped", "--ignore")
    coded = load_dataset(spec(path, target="label", categorical=("weight",)))
    assert roles_of(coded)["weight"][0] == "categorical"
    assert {"weight=1", "weight=2", "weight=3"} <= set(coded.encoded_names)
    with pytest.raises(UserError, match=r"--ignore column 'sise' is not in .*did you mean 'size'"):
        load_dataset(spec(path, target="label", ignore=("sise",)))


def test_encoding_matches_scikit_learn(tmp_path):
    """Numbers: median imputation + indicator + MinMax; categories: one-hot with a missing level; each
    fitted on the training rows (validation rows included) and applied to the test rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

    path = mixed_file(tmp_path)
    data = load_dataset(spec(path, target="label", features=("size", "weight", "colour"), val_size=0.0))
    import pyarrow.csv as pacsv

    raw = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    size = raw.column("size").to_numpy(zero_copy_only=False).astype(float)
    weight = raw.column("weight").to_numpy(zero_copy_only=False).astype(float)
    colour = np.array(raw.column("colour").to_pylist(), dtype=object)
    colour[colour == None] = "(missing)"  # noqa: E711 - an object array
    table = np.empty((len(size), 3), dtype=object)
    table[:, 0], table[:, 1], table[:, 2] = size, weight, colour
    label = np.array(raw.column("label").to_pylist())
    train, test = train_test_split(np.arange(len(size)), test_size=0.2, random_state=42, stratify=label)
    numbers = make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler())
    reference = ColumnTransformer(
        [
            ("numbers", numbers, [0, 1]),
            ("indicator", MissingIndicator(features="all"), [0]),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [2]),
        ]
    ).fit(table[train])
    expected = reference.transform(table[test]).astype(np.float64)
    assert data.encoded_names == (
        "size", "weight", "size_na", "colour=blue", "colour=green", "colour=red", "colour=(missing)"
    )  # fmt: skip
    # sklearn sorts "(missing)" first among the levels: compare column by column
    order = [0, 1, 2, 4, 5, 6, 3]
    np.testing.assert_allclose(data.x_test, expected[:, order].astype(np.float32), rtol=1e-6, atol=1e-7)


def test_dates_become_parts(tmp_path):
    path = tmp_path / "log.csv"
    stamps = [f"2021-03-{1 + i % 28:02d} {i % 24:02d}:30:00" for i in range(100)]
    path.write_text("stamp;value;y\n" + "".join(f"{s};{i % 7},5;{i % 3}\n" for i, s in enumerate(stamps)))
    data = load_dataset(spec(path, target="y", val_size=0.0))
    assert data.encoded_names == ("stamp_day", "stamp_weekday", "stamp_hour", "value")
    assert data.source["decimal"] == ","


def test_predict_reads_parquet_too(tmp_path):
    from devicelab import TrainConfig, train
    from devicelab.training.predict import load_saved, predict_table

    x, y = iris_arrays()
    table = pa.table({**{c: x[:, i] for i, c in enumerate(COLUMNS)}, "species": [SPECIES[t] for t in y]})
    pq.write_table(table, tmp_path / "iris.parquet")
    config = TrainConfig(
        data=str(tmp_path / "iris.parquet"), target="species", epochs=20, device="cpu", threads=1
    )
    folder = train(config).save(tmp_path / "runs", "pq")
    predictions = predict_table(load_saved(folder), read_frame(tmp_path / "iris.parquet", text=True))
    assert len(predictions.values) == 150 and set(predictions.values) <= set(SPECIES)
    assert predictions.score is not None


def test_predict_time_dates_that_do_not_parse_are_missing_not_an_error(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "when,v,y\n" + "".join(f"2021-0{1 + i % 9}-1{i % 10},{i % 5},{i % 2}\n" for i in range(60))
    )
    data = load_dataset(spec(path, target="y", val_size=0.0))
    prep = data.preprocessor
    new = pa.chunked_array([pa.array(["2021-05-13", "soon", ""])])
    columns = {
        "when": prep.prepare("when", new),
        "v": prep.prepare("v", pa.chunked_array([pa.array(["1", "x", "3"])])),
    }
    (x,) = prep.encode(columns, [None])
    assert x.shape == (3, data.n_features) and np.isfinite(x).all()
    dates = [i for i, name in enumerate(data.encoded_names) if name.startswith("when_")]
    assert dates and np.array_equal(x[1, dates], x[2, dates])  # an unreadable and an empty date: both imputed


def test_declared_na_values_are_missing_in_features_too(tmp_path):
    path = tmp_path / "survey.csv"
    rows = [
        f"{-999 if i % 10 == 0 else i % 37},{'missing' if i % 9 == 0 else 'ab'[i % 2]},{i % 2}"
        for i in range(80)
    ]
    path.write_text("age,answer,y\n" + "\n".join(rows) + "\n")
    plain = roles_of(load_dataset(spec(path, target="y")))
    assert plain["age"] == ("numeric", "numbers") and "3 levels" in plain["answer"][1]
    data = load_dataset(spec(path, target="y", na_values=("-999", "missing")))
    roles = roles_of(data)
    assert "missing -> median" in roles["age"][1] and "2 levels" in roles["answer"][1]
    assert data.preprocessor.na_values == ["-999", "missing"]  # saved, so predict reads them the same way
    prepared = data.preprocessor.prepare("age", pa.chunked_array([pa.array(["-999", "5"])]))
    assert prepared.to_pylist() == [None, 5.0]


def test_a_file_that_cannot_be_read_whole_stores_no_partial_sha256(tmp_path):
    """A read that fails part-way must not become the file's sha256 (resume compares it later)."""
    from devicelab.data.read import _Hasher

    with pytest.raises(UserError, match="could not read all of"):
        _Hasher(tmp_path / "gone.csv").hexdigest()
