"""Applying a saved run to new rows: the run's scaler, its model, and its original class labels."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from devicelab import csvdata
from devicelab.data import Scaler
from devicelab.errors import UserError
from devicelab.training.checkpoint import load_model
from devicelab.training.resume import check_run_folder, damaged, read_json
from devicelab.training.run_folder import MODEL, PREPROCESSING


@dataclass(frozen=True)
class SavedModel:
    run_dir: Path
    model: torch.nn.Module
    task: str
    feature_names: tuple[str, ...]
    target: str
    classes: tuple | None
    scaler: Scaler
    target_scaler: Scaler | None  # regression: maps the model's output back to the target's units


@dataclass(frozen=True)
class Predictions:
    table: csvdata.Table
    column: str  # the name of the prediction column
    values: list  # original labels (classification) or numbers (regression)
    confidence: np.ndarray | None  # softmax probability of the predicted class
    score: tuple[str, float] | None  # accuracy or RMSE when the rows carry the true target


def load_saved(run_dir: str | Path) -> SavedModel:
    folder = check_run_folder(run_dir)
    record = read_json(folder / PREPROCESSING, "preprocessing record")
    with damaged(folder / PREPROCESSING):
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
            Scaler.from_dict(record["target_scaler"]) if record.get("target_scaler") else None,
        )


def predict_table(saved: SavedModel, table: csvdata.Table) -> Predictions:
    """Predictions for every row of ``table``, which must have the run's feature columns."""
    missing = [name for name in saved.feature_names if name not in table.columns]
    if missing:
        from difflib import get_close_matches

        unused = [c for c in table.columns if c not in saved.feature_names]  # candidates for a renamed one
        close = get_close_matches(missing[0], unused, n=1)
        suggestion = f"rename {close[0]!r} to {missing[0]!r}? " if close else ""
        raise UserError(
            f"{table.path} lacks the feature column(s) {', '.join(missing)} that run {saved.run_dir} was "
            "trained on",
            hint=f"{suggestion}it has: {', '.join(table.columns)}",
        )
    fix = "fill them in or remove those rows: every feature is needed to predict"
    table = csvdata.check_missing(table, saved.feature_names, dropna=False, fix=fix)
    x = torch.from_numpy(saved.scaler.transform(csvdata.numeric_features(table, saved.feature_names)))
    with torch.inference_mode():
        out = saved.model(x)
    column = f"predicted_{saved.target}"
    if saved.task == "classification":
        probabilities = torch.softmax(out, dim=1)
        confidence, ids = probabilities.max(dim=1)
        values = [saved.classes[i] for i in ids.tolist()]  # sync: a CPU tensor, read once for the output
        return Predictions(table, column, values, confidence.numpy(), _accuracy(saved, table, values))
    values = out.squeeze(-1).double().numpy()  # a CPU tensor: no device to wait for
    if saved.target_scaler is not None:
        values = values * saved.target_scaler.scale[0] + saved.target_scaler.shift[0]
    values = values.tolist()  # numpy: no sync
    return Predictions(table, column, values, None, _rmse(saved, table, values))


def _accuracy(saved: SavedModel, table: csvdata.Table, values: list) -> tuple[str, float] | None:
    if saved.target not in table.columns:
        return None
    known = [
        (p, t)
        for p, t in zip(values, table.column(saved.target), strict=True)
        if t.lower() not in csvdata.MISSING
    ]
    if not known:  # no row says its true label
        return None
    hits = [str(p) == t or csvdata.to_number(t, table.delimiter) == p for p, t in known]
    return "accuracy", float(np.mean(hits))


def _rmse(saved: SavedModel, table: csvdata.Table, values: list) -> tuple[str, float] | None:
    if saved.target not in table.columns:
        return None
    pairs = [
        (p, csvdata.to_number(t, table.delimiter))
        for p, t in zip(values, table.column(saved.target), strict=True)
    ]
    known = [(p, t) for p, t in pairs if t is not None and math.isfinite(t)]  # rows whose true value is given
    if not known:
        return None
    predicted, truth = np.asarray(known).T
    return "rmse", float(np.sqrt(np.mean((predicted - truth) ** 2)))


def predictions_csv(predictions: Predictions) -> str:
    """The input rows with the prediction (and, for classes, its probability) appended, in the input's
    delimiter; predicted numbers keep the 7 significant digits a float32 model has."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=predictions.table.delimiter, lineterminator="\n")
    extra = [predictions.column] + (["confidence"] if predictions.confidence is not None else [])
    writer.writerow([*predictions.table.columns, *extra])
    for i, row in enumerate(predictions.table.rows):
        value = predictions.values[i]
        added = [f"{value:.7g}" if isinstance(value, float) else value]
        if predictions.confidence is not None:
            added.append(f"{predictions.confidence[i]:.4f}")
        writer.writerow([*row, *added])
    return out.getvalue()
