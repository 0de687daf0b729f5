"""Train on a CSV with text labels, predict on new files: labels come back as the original text, and
they equal what the saved weights give on rows scaled the way scikit-learn scales them."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from conftest import run_cli
from csv_files import COLUMNS, SPECIES, iris_arrays, iris_csv, iris_rows, write_csv
from devicelab.models import MLP

CPU1 = ("--device", "cpu", "--threads", "1", "--quiet")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    iris_csv(folder / "flowers.csv")
    options = "--data flowers.csv --target species --optimizer adam --lr 0.02 --epochs 400 --name flowers"
    result = run_cli("train", *options.split(), *CPU1, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def read_rows(text: str, delimiter: str = ",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def reference_labels(run_dir, stratified: bool = True) -> list[str]:
    """Scale with sklearn's MinMaxScaler fitted on the same training split (a file's classes are split
    stratified; a built-in set keeps the lesson's plain split), apply the saved weights."""
    x, y = iris_arrays()
    x_train, _, _, _ = train_test_split(
        x, y, test_size=0.2, random_state=42, stratify=y if stratified else None
    )
    scaled = MinMaxScaler().fit(x_train).transform(x)
    model = MLP(4, (10,), 3)
    model.load_state_dict(load_file(run_dir / "model.safetensors"))
    with torch.inference_mode():
        ids = model(torch.tensor(scaled, dtype=torch.float32)).argmax(1).tolist()
    return [SPECIES[i] for i in ids]


def test_round_trip_gives_the_original_text_labels(trained):
    result = run_cli("predict", "runs/flowers", "--data", "flowers.csv", "--out", "preds.csv", cwd=trained)
    assert result.returncode == 0, result.stderr
    rows = read_rows((trained / "preds.csv").read_text())
    assert list(rows[0]) == [*COLUMNS, "species", "predicted_species", "confidence"]
    predicted = [row["predicted_species"] for row in rows]
    assert set(predicted) <= set(SPECIES)
    assert predicted == reference_labels(trained / "runs" / "flowers")
    accuracy = np.mean([row["species"] == row["predicted_species"] for row in rows])
    assert accuracy >= 0.9
    assert f"accuracy {accuracy:.4f}" in result.stderr
    assert all(1 / 3 <= float(row["confidence"]) <= 1 for row in rows)


def test_new_file_in_another_layout_gives_the_same_predictions(trained):
    """Columns reordered, an extra column, no target, semicolons and a BOM: the same labels."""
    rows = [[row[3], "note", row[1], row[0], row[2]] for row in iris_rows()]
    header = ("petal_width", "comment", "sepal_width", "sepal_length", "petal_length")
    write_csv(trained / "new.csv", rows, header=header, delimiter=";", bom=True)
    result = run_cli("predict", "runs/flowers", "--data", "new.csv", cwd=trained)  # to stdout
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("petal_width;comment;")  # written as it was read
    out = read_rows(result.stdout, delimiter=";")
    assert list(out[0])[:5] == list(header) and len(out) == 150
    assert [row["predicted_species"] for row in out] == reference_labels(trained / "runs" / "flowers")
    assert "150 predictions" in result.stderr and "accuracy" not in result.stderr


def test_regression_predictions_are_numbers(tmp_path):
    x, _ = iris_arrays()
    rows = [[repr(float(v)) for v in row] for row in x]
    header = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    write_csv(tmp_path / "reg.csv", rows, header=header)
    options = "--data reg.csv --target petal_width --epochs 300 --optimizer adam --lr 0.02 --name reg"
    trained = run_cli("train", *options.split(), *CPU1, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "test r2" in trained.stdout.lower()
    result = run_cli("predict", "runs/reg", "--data", "reg.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = read_rows(result.stdout)
    assert all(len(row["predicted_petal_width"].lstrip("-").replace(".", "")) <= 8 for row in out)
    predicted = np.array([float(row["predicted_petal_width"]) for row in out])
    truth = x[:, 3]
    assert np.sqrt(np.mean((predicted - truth) ** 2)) < 0.5  # petal width spans 0.1..2.5
    assert "rmse" in result.stderr


def test_a_builtin_run_predicts_class_names(tmp_path):
    """Iris trained as the built-in set predicts setosa/versicolor/virginica (scikit-learn's target_names
    for its ids 0/1/2), not the ids; the same labels as the saved weights give."""
    from devicelab.data.builtin import IRIS_FEATURES

    options = "--epochs 300 --optimizer adam --lr 0.02 --name seed".split()
    trained = run_cli("train", *options, *CPU1, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    write_csv(tmp_path / "new.csv", iris_rows(), header=(*IRIS_FEATURES, "target"))
    result = run_cli("predict", "runs/seed", "--data", "new.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = [row["predicted_target"] for row in read_rows(result.stdout)]
    assert predicted == reference_labels(tmp_path / "runs" / "seed", stratified=False)
    assert set(predicted) == set(SPECIES)
    assert "accuracy" in result.stderr  # the file's labels are the names too
