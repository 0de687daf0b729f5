"""Real data through the real CLI: role table, categories and gaps reapplied by predict (unseen levels,
missing cells, the training file itself), labels such as "None", and the data errors of issue 11."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, run_cli
from csv_files import COLUMNS, SPECIES, iris_arrays

FAST = (
    "--epochs",
    "300",
    "--optimizer",
    "adam",
    "--lr",
    "0.02",
    "--quiet",
    "--device",
    "cpu",
    "--threads",
    "1",
)


def shop_rows(n=240, seed=1):
    """Iris with a colour (text, some empty), a shop (many levels: embedded) and labels that read None/NA."""
    x, y = iris_arrays()
    rng = np.random.default_rng(seed)
    labels = ("None", "NA", "yes")
    rows = []
    for i in range(n):
        k = i % len(x)
        colour = "" if i % 13 == 0 else ("red", "green")[int(rng.integers(2))]
        length = "NA" if i % 11 == 0 else repr(float(x[k, 0]))
        rows.append([length, *(repr(float(v)) for v in x[k, 1:]), colour, f"shop{i % 40}", labels[y[k]]])
    return rows


def write(path, rows, header=(*COLUMNS, "colour", "shop", "label"), delimiter=","):
    path.write_text("\n".join(delimiter.join(r) for r in [list(header), *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    write(folder / "shop.csv", shop_rows())
    result = run_cli("train", "--data", "shop.csv", "--target", "label", *FAST, "--name", "shop", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


def test_the_role_table_is_printed_and_saved(shop_run):
    folder, result = shop_run
    out = result.stdout
    assert "240 rows read from shop (comma-separated, utf-8)" in out
    table = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
             ("sepal_length", "colour", "shop", "label")}  # fmt: skip
    assert "missing -> median" in table["sepal_length"]
    assert "one-hot" in table["colour"] and "missing -> its own level" in table["colour"]
    assert "embedding 42x13" in table["shop"]
    assert "3 classes ('NA', 'None', 'yes')" in table["label"]
    record = json.loads((folder / "runs" / "shop" / "preprocessing.json").read_text())
    assert [r["column"] for r in record["roles"]] == [*COLUMNS, "colour", "shop", "label"]
    steps = [s["step"] for s in record["preprocessing"]["steps"]]
    assert steps == ["date_parts", "fill_missing", "normalize", "categorify", "one_hot", "embed"]
    assert record["model_spec"]["embeddings"] == [[42, 13]]
    config = json.loads((folder / "runs" / "shop" / "config.json").read_text())
    assert config["data_roles"] == record["roles"]


def test_predict_on_the_training_file_gives_the_labels_as_written(shop_run):
    folder, _ = shop_run
    result = run_cli("predict", "runs/shop", "--data", "shop.csv", cwd=folder)
    assert result.returncode == 0, result.stderr
    out = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(out) == 240 and {r["predicted_label"] for r in out} <= {"None", "NA", "yes"}
    accuracy = np.mean([r["label"] == r["predicted_label"] for r in out])
    assert accuracy > 0.8 and f"accuracy {accuracy:.4f}" in result.stderr
    assert out[0]["sepal_length"] == "NA"  # rows written back as they were read
    assert "sepal_length: 22 of 240 cells missing or not a number" in result.stderr  # i % 11 == 0
    assert "colour: 19 of 240 cells missing, encoded as missing, as in training" in result.stderr  # i % 13
    assert "not seen in training" not in result.stderr


def test_predict_with_unseen_levels_and_missing_cells(shop_run):
    """New shops and colours go to the "unknown" slot, empty cells are imputed: every row is predicted,
    and the same as for the row with those cells changed to the training values' encoding of unknown."""
    folder, _ = shop_run
    rows = [row[:6] for row in shop_rows(30, seed=2)]
    for i, row in enumerate(rows):
        row[4] = "purple" if i % 2 else ""  # a colour never seen, or missing
        row[5] = f"newshop{i}"
        row[1] = "" if i % 3 == 0 else row[1]
    write(folder / "new.csv", rows, header=(*COLUMNS, "colour", "shop"), delimiter=";")
    result = run_cli("predict", "runs/shop", "--data", "new.csv", cwd=folder)
    assert result.returncode == 0, result.stderr
    out = list(csv.DictReader(io.StringIO(result.stdout), delimiter=";"))
    assert len(out) == 30 and all(r["predicted_label"] in ("None", "NA", "yes") for r in out)
    assert "30 predictions" in result.stderr and "accuracy" not in result.stderr
    # how many cells of each column were imputed or unseen, counted here from the rows written
    count = lambda j, test: sum(test(row[j]) for row in rows)  # noqa: E731
    record = json.loads((folder / "runs" / "shop" / "preprocessing.json").read_text())
    fill = next(s for s in record["preprocessing"]["steps"] if s["step"] == "fill_missing")
    median = lambda j: fill["medians"][COLUMNS[j]]  # noqa: E731  (the value the model saw in their place)
    said = result.stderr.splitlines()
    assert said[1:] == [
        f"sepal_length: {count(0, lambda c: c == 'NA')} of 30 cells missing or not a number, imputed with the "
        f"training median {median(0):g}",
        f"sepal_width: {count(1, lambda c: c == '')} of 30 cells missing or not a number, imputed with the "
        f"training median {median(1):g}",
        f"colour: {count(4, lambda c: c == '')} of 30 cells missing, encoded as missing, as in training",
        f"colour: {count(4, lambda c: c == 'purple')} of 30 cells are levels not seen in training, encoded as "
        "unknown",
        "shop: 30 of 30 cells are levels not seen in training, encoded as unknown",
    ], result.stderr
    assert count(0, lambda c: c == "NA") == 3 and count(1, lambda c: c == "") == 10  # the plant is as meant


def test_unseen_levels_use_the_unknown_slot():
    from devicelab.data import DataSpec, Preprocessor
    from devicelab.data.transforms import Categorify

    cats = Categorify()
    import pyarrow as pa

    text = pa.chunked_array([pa.array(["b", "a", None, "b"])])
    cats.setup("c", text, np.arange(4))
    codes = cats.codes("c", pa.chunked_array([pa.array(["a", "zz", None, "b"])]))
    np.testing.assert_array_equal(codes, [0, -1, -2, 1])
    np.testing.assert_array_equal(cats.embedding_codes(codes), [2, 0, 1, 3])
    np.testing.assert_array_equal(
        np.column_stack(cats.one_hot("c", codes)), [[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0]]
    )
    assert DataSpec and Preprocessor  # the public names


def test_diabetes_as_classification_is_one_clear_line(cli):
    """issue 11: this was an IndexError traceback ("Target 280 is out of bounds")."""
    result = cli("train", "--dataset", "diabetes", "--task", "classification", "--epochs", "5")
    assert_user_error(result, "214 distinct numbers", "regression target", "--task regression")


def test_na_values_option_makes_labels_missing(cli, tmp_path):
    write(tmp_path / "shop.csv", shop_rows())
    result = cli(
        "train", "--data", "shop.csv", "--target", "label", "--na-values", "NA", *FAST, "--name", "na"
    )
    assert result.returncode == 0, result.stderr
    assert "dropped 90 without a target" in result.stdout  # iris rows 50-99 of each 150
    record = json.loads((tmp_path / "runs" / "na" / "preprocessing.json").read_text())
    assert record["classes"] == ["None", "yes"] and record["na_values"] == ["NA"]


def test_an_unknown_override_column_is_one_line(cli, tmp_path):
    write(tmp_path / "shop.csv", shop_rows())
    result = cli("train", "--data", "shop.csv", "--target", "label", "--features", "sepal_length,colr")
    assert_user_error(result, "--features column 'colr'", "did you mean 'colour'")


def test_a_run_saved_before_preprocessing_steps_still_predicts(tmp_path):
    """preprocessing.json of earlier versions had only the scaler: predict reads it as numbers + scaler."""
    from csv_files import iris_csv
    from devicelab import TrainConfig, train
    from devicelab.data import read_frame
    from devicelab.training.predict import load_saved, predict_table

    path = iris_csv(tmp_path / "iris.csv")
    folder = train(TrainConfig(data=str(path), target="species", epochs=50, device="cpu", threads=1)).save(
        tmp_path / "runs", "old"
    )
    new = predict_table(load_saved(folder), read_frame(path, text=True))
    record = json.loads((folder / "preprocessing.json").read_text())
    del record["preprocessing"], record["roles"], record["na_values"]
    (folder / "preprocessing.json").write_text(json.dumps(record))
    old = predict_table(load_saved(folder), read_frame(path, text=True))
    assert old.values == new.values and set(old.values) <= set(SPECIES)


def test_tabular_mlp_is_embeddings_then_the_mlp():
    """The reference computation by hand: codes looked up, concatenated after the numbers, into the MLP."""
    from devicelab.models import MLP, TabularMLP, build_mlp

    torch.manual_seed(0)
    model = TabularMLP(4, (8,), 3, embeddings=[(5, 2), (7, 3)])
    x = torch.tensor([[0.1, 0.2, 3.0, 6.0], [0.5, -1.0, 0.0, 1.0]])
    by_hand = model.mlp(
        torch.cat([x[:, :2], model.embeds[0].weight[[3, 0]], model.embeds[1].weight[[6, 1]]], dim=1)
    )
    torch.testing.assert_close(model(x), by_hand)
    rebuilt = build_mlp(model.spec)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))
    assert type(build_mlp(MLP(4, (10,), 3).spec)) is MLP  # numbers only: the lesson's model
