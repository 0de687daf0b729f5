"""Every real file of tests/data/corpus (as its publisher ships it) trains with only its target given,
and ``predict`` on the training file itself gives a prediction for every row. The comparison with a
scikit-learn baseline is benchmarks/corpus.py (minutes, not a test)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from devicelab import TrainConfig, train
from devicelab.data import read_frame
from devicelab.training.predict import load_saved, predict_table

CORPUS = Path(__file__).parent / "data" / "corpus"
FILES = list(csv.DictReader(open(CORPUS / "corpus.csv", newline="")))


def test_the_corpus_is_documented():
    readme = (CORPUS / "README.md").read_text()
    on_disk = {p.name for p in CORPUS.iterdir()} - {"README.md", "corpus.csv"}
    assert on_disk == {row["file"] for row in FILES}
    assert all(row["file"] in readme for row in FILES)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each file trained briefly (a smoke run of the real pipeline; the metric's quality is the
    benchmark's business) and predicted on itself."""
    runs = tmp_path_factory.mktemp("corpus")
    results = {}
    for row in FILES:
        path = CORPUS / row["file"]
        config = TrainConfig(
            data=str(path), target=row["target"], epochs=30, log_every=10, device="cpu", threads=1, quiet=True
        )
        result = train(config)
        folder = result.save(runs, Path(row["file"]).stem)
        predictions = predict_table(load_saved(folder), read_frame(path, text=True))
        results[row["file"]] = (result, predictions)
    return results


def test_at_least_90_percent_train_with_only_the_target(outcomes):
    trained = [f for f, (r, _) in outcomes.items() if math.isfinite(r.final.get("train_loss", math.nan))]
    assert len(trained) >= 0.9 * len(FILES), sorted(set(outcomes) - set(trained))


@pytest.mark.parametrize("row", FILES, ids=[r["file"] for r in FILES])
def test_predict_on_the_training_file_itself(outcomes, row):
    result, predictions = outcomes[row["file"]]
    assert len(predictions.values) == result.dataset.source["rows_read"]
    assert predictions.score is not None  # the file's own target column is scored
