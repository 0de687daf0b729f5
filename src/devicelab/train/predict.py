"""Applying a saved run to new rows: the run's scaler, its model, and its original class labels."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from devicelab import csvdata
from devicelab.data import Scaler
from devicelab.errors import UserError
from devicelab.train.checkpoint import load_model
from devicelab.train.resume import read_json
from devicelab.train.run_folder import MODEL, PREPROCESSING


@dataclass(frozen=True)
class SavedModel:
    run_dir: Path
    model: torch.nn.Module
    task: str
    feature_names: tuple[str, ...]
    target: str
    classes: tuple | None
    scaler: Scaler


@dataclass(frozen=True)
class Predictions:
    table: csvdata.Table
    column: str  # the name of the prediction column
    values: list  # original labels (classification) or numbers (regression)
    confidence: np.ndarray | None  # softmax probability of the predicted class
    score: tuple[str, float] | None  # accuracy or RMSE when the rows carry the true target


def load_saved(run_dir: str | Path) -> SavedModel:
    folder = Path(run_dir)
    if not folder.is_dir():
        raise UserError(f"run folder {folder} does not exist", hint="give the path of a folder under runs/")
    record = read_json(folder / PREPROCESSING, "preprocessing record")
    model = load_model(folder / MODEL, record["model_spec"])
    model.eval()
    classes = tuple(record["classes"]) if record.get("classes") is not None else None
    return SavedModel(
        folder,
        model,
        record["task"],
        tuple(record["feature_names"]),
        record["target"],
        classes,
        Scaler.from_dict(record["scaler"]),
    )


def predict_table(saved: SavedModel, table: csvdata.Table) -> Predictions:
    """Predictions for every row of ``table``, which must have the run's feature columns."""
    missing = [name for name in saved.feature_names if name not in table.columns]
    if missing:
        from difflib import get_close_matches

        close = get_close_matches(missing[0], table.columns, n=1)
        suggestion = f"is {close[0]!r} {missing[0]!r}? " if close else ""
        raise UserError(
            f"{table.path} lacks the feature column(s) {', '.join(missing)} that run {saved.run_dir} was "
            "trained on",
            hint=f"{suggestion}it has: {', '.join(table.columns)}",
        )
    table = csvdata.check_missing(table, saved.feature_names, dropna=False)
    x = torch.from_numpy(saved.scaler.transform(csvdata.numeric_features(table, saved.feature_names)))
    with torch.inference_mode():
        out = saved.model(x)
    column = f"predicted_{saved.target}"
    if saved.task == "classification":
        probabilities = torch.softmax(out, dim=1)
        confidence, ids = probabilities.max(dim=1)
        values = [saved.classes[i] for i in ids.tolist()]  # sync: a CPU tensor, read once for the output
        return Predictions(table, column, values, confidence.numpy(), _accuracy(saved, table, values))
    values = out.squeeze(-1).tolist()  # sync: a CPU tensor, read once for the output
    return Predictions(table, column, values, None, _rmse(saved, table, values))


def _accuracy(saved: SavedModel, table: csvdata.Table, values: list) -> tuple[str, float] | None:
    if saved.target not in table.columns:
        return None
    truth = table.column(saved.target)
    hits = [
        str(p) == t or csvdata.to_number(t, table.delimiter) == p for p, t in zip(values, truth, strict=True)
    ]
    return "accuracy", float(np.mean(hits))


def _rmse(saved: SavedModel, table: csvdata.Table, values: list) -> tuple[str, float] | None:
    if saved.target not in table.columns:
        return None
    truth = [csvdata.to_number(t, table.delimiter) for t in table.column(saved.target)]
    if any(t is None for t in truth):
        return None
    return "rmse", float(np.sqrt(np.mean((np.asarray(values) - np.asarray(truth)) ** 2)))


def predictions_csv(predictions: Predictions) -> str:
    """The input rows with the prediction (and, for classes, its probability) appended."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    extra = [predictions.column] + (["confidence"] if predictions.confidence is not None else [])
    writer.writerow([*predictions.table.columns, *extra])
    for i, row in enumerate(predictions.table.rows):
        added = [predictions.values[i]]
        if predictions.confidence is not None:
            added.append(f"{predictions.confidence[i]:.4f}")
        writer.writerow([*row, *added])
    return out.getvalue()
