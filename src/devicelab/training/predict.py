"""Applying a saved run to new rows: the run's preprocessing steps, its model, its original class labels.

Missing cells are imputed and unseen category levels go to the "unknown" slot, as in training, so a
file with the run's feature columns always gets predictions (the training file itself included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from devicelab.data import Frame, Preprocessor, Scaler, TargetScaling, encode_target
from devicelab.errors import UserError, listed
from devicelab.training.checkpoint import load_model
from devicelab.training.outputs import class_scores, prediction
from devicelab.training.resume import check_run_folder, damaged, read_json
from devicelab.training.run_folder import MODEL, PREPROCESSING
from devicelab.training.user_inputs import input_rows


@dataclass(frozen=True)
class SavedModel:
    run_dir: Path
    model: torch.nn.Module
    task: str
    feature_names: tuple[str, ...]
    target: str
    classes: tuple | None
    scaler: Scaler
    target_scaler: TargetScaling | None  # regression: maps the model's output back to the target's units
    preprocessor: Preprocessor
    na_values: tuple[str, ...] = ()
    classes_trained: tuple | None = None  # the classes the model saw in training (None: all of them)
    input_dtype: str | None = None  # the rows' dtype in training (None: float32, or a run saved before it)


@dataclass(frozen=True)
class CellCounts:
    """One feature column's cells that were not values the model saw: how predict filled them in."""

    column: str
    kind: str  # the column's kind in training: "numeric" | "datetime" | "text"
    missing: int  # empty, a missing marker, or not readable as the column's kind: imputed as in training
    unseen: int  # a category level the training rows did not have: encoded as "unknown"
    median: float | None = None  # a numeric column's training median, which its missing cells get
    missing_level: bool = False  # a category that had missing cells in training (they have their own level)


@dataclass(frozen=True)
class Predictions:
    frame: Frame  # the rows as read (every column as text)
    column: str  # the name of the prediction column
    values: list  # original labels (classification) or numbers (regression)
    confidence: np.ndarray | None  # softmax probability of the predicted class
    score: tuple[str, float] | None  # accuracy or RMSE when the rows carry the true target
    cells: tuple[CellCounts, ...] = ()  # per feature column: cells imputed or of unseen levels


def load_saved(run_dir: str | Path) -> SavedModel:
    folder = check_run_folder(run_dir)
    record = read_json(folder / PREPROCESSING, "preprocessing record")
    with damaged(folder / PREPROCESSING):
        model = load_model(folder / MODEL, record["model_spec"])
        model.eval()
        classes = tuple(record["classes"]) if record.get("classes") is not None else None
        scaler = Scaler.from_dict(record["scaler"])
        features = tuple(record["feature_names"])
        if record.get("preprocessing"):
            preprocessor = Preprocessor.from_dict(record["preprocessing"])
        else:  # a run saved before preprocessing steps: every feature a number, scaled
            preprocessor = Preprocessor.numeric(list(features), scaler)
        return SavedModel(
            folder,
            model,
            record["task"],
            features,
            record["target"],
            classes,
            scaler,
            TargetScaling.from_dict(record["target_scaler"]) if record.get("target_scaler") else None,
            preprocessor,
            tuple(record.get("na_values", ())),
            _classes_trained(record),
            record.get("input_dtype"),
        )


def _classes_trained(record: dict) -> tuple | None:
    trained = (record.get("source") or {}).get("classes_trained")
    return tuple(trained) if trained is not None else None


def predict_table(saved: SavedModel, frame: Frame) -> Predictions:
    """Predictions for every row of ``frame`` (read with ``text=True``), which must have the run's
    feature columns; other columns are kept, missing cells imputed, unseen levels "unknown"."""
    missing = [name for name in saved.feature_names if name not in frame.columns]
    if missing:
        from difflib import get_close_matches

        unused = [c for c in frame.columns if c not in saved.feature_names]  # candidates for a renamed one
        close = get_close_matches(missing[0], unused, n=1)
        suggestion = f"rename {close[0]!r} to {missing[0]!r}? " if close else ""
        raise UserError(
            f"{frame.path} lacks the feature column(s) {listed(missing)} that run {saved.run_dir} was "
            "trained on",
            hint=f"{suggestion}it has: {listed(frame.columns)}",
        )
    prep = saved.preprocessor
    columns = {name: prep.prepare(name, frame.table.column(name), frame.decimal) for name in prep.inputs}
    cells = tuple(count_cells(prep, name, columns[name]) for name in prep.inputs)
    (x,) = prep.encode(columns, [None])
    x = input_rows(x, saved.model, saved.input_dtype)  # a user's module: its dtype, or integer codes
    with torch.inference_mode():
        out = prediction(saved.model(torch.from_numpy(x)))
    column = f"predicted_{saved.target}"
    if saved.task == "classification":
        # a score per class (a single logit z: (0, z)); scores beyond the classes (a user's module may have
        # more outputs than the target has classes, which training allows) are never a label
        out = class_scores(out)[:, : len(saved.classes)]
        if saved.classes_trained is not None and len(saved.classes_trained) < len(saved.classes):
            # a class without training rows is never predicted (training warned about it)
            unseen = torch.tensor([c not in saved.classes_trained for c in saved.classes])
            out = out.masked_fill(unseen, float("-inf"))
        probabilities = torch.softmax(out, dim=1)  # one logit z: (1 - sigmoid(z), sigmoid(z))
        confidence, ids = probabilities.max(dim=1)
        ids = ids.numpy()  # a CPU tensor: no device to wait for
        values = [saved.classes[i] for i in ids.tolist()]
        return Predictions(frame, column, values, confidence.numpy(), _accuracy(saved, frame, ids), cells)
    values = out.squeeze(-1).double().numpy()  # a CPU tensor: no device to wait for
    if saved.target_scaler is not None:
        values = saved.target_scaler.inverse_transform(values)
    # a numpy array on the host: no device involved
    return Predictions(frame, column, values.tolist(), None, _rmse(saved, frame, values), cells)


def count_cells(prep: Preprocessor, name: str, prepared: pa.ChunkedArray) -> CellCounts:
    """How many of a prepared column's cells are missing (imputed) or category levels unseen in training."""
    kind = prep.kinds[name]
    if kind == "text":
        codes = prep.categories.codes(name, prepared)  # numpy on the host
        missing, unseen = int(np.count_nonzero(codes == -2)), int(np.count_nonzero(codes == -1))
        return CellCounts(name, kind, missing, unseen, missing_level=prep.categories.missing.get(name, False))
    missing = pc.sum(pc.is_null(prepared, nan_is_null=True).cast(pa.int64())).as_py() or 0
    return CellCounts(name, kind, missing, 0, prep.fill.medians.get(name) if kind == "numeric" else None)


def _accuracy(saved: SavedModel, frame: Frame, ids: np.ndarray) -> tuple[str, float] | None:
    """Accuracy over the rows whose target cell gives a label (empty or declared-missing cells skipped)."""
    if saved.target not in frame.columns:
        return None
    text = pc.utf8_trim_whitespace(frame.table.column(saved.target))
    missing = pc.or_(
        pc.equal(text, ""), pc.is_in(text, value_set=pa.array(list(saved.na_values), pa.string()))
    )
    known = ~missing.to_numpy(zero_copy_only=False).astype(bool)
    if not known.any():  # no row says its true label
        return None
    labels = [str(c) for c in saved.classes]
    truth = pc.index_in(text, value_set=pa.array(labels, pa.string()))
    truth = pc.fill_null(truth, -1).to_numpy(zero_copy_only=False)
    if saved.classes and all(isinstance(c, int | float) for c in saved.classes):  # "1.0" is class 1
        as_number = pc.cast(
            pc.if_else(pc.match_substring_regex(text, r"^[+-]?\d*\.?\d+$"), text, None), pa.float64()
        )
        numbers = pc.fill_null(as_number, math.nan).to_numpy(zero_copy_only=False)
        by_value = {float(c): i for i, c in enumerate(saved.classes)}
        # numbers: a numpy array read from the file (host memory, no device)
        truth = np.where(truth >= 0, truth, [by_value.get(v, -1) for v in numbers.tolist()])
    return "accuracy", float(np.mean(ids[known] == truth[known]))


def _rmse(saved: SavedModel, frame: Frame, predicted: np.ndarray) -> tuple[str, float] | None:
    if saved.target not in frame.columns:
        return None
    try:
        target = encode_target(
            frame.table.column(saved.target), saved.target, "regression", na_values=saved.na_values,
            decimal=frame.decimal,
        )  # fmt: skip
    except UserError:  # text in the target column: not scored
        return None
    known = target.present
    if not known.any():
        return None
    return "rmse", float(np.sqrt(np.mean((predicted[known] - target.values) ** 2)))


def predictions_csv(predictions: Predictions) -> str:
    """The input rows as read, with the prediction (and, for classes, its probability) appended, in the
    input's delimiter (a comma for Parquet and space-separated files); predicted numbers keep the 7
    significant digits a float32 model has."""
    import csv
    import io

    frame = predictions.frame
    delimiter = frame.delimiter if frame.delimiter not in (None, " ") else ","
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    extra = [predictions.column] + (["confidence"] if predictions.confidence is not None else [])
    writer.writerow([*frame.columns, *extra])
    added = [[f"{v:.7g}" if isinstance(v, float) else v for v in predictions.values]]
    if predictions.confidence is not None:
        added.append([f"{c:.4f}" for c in predictions.confidence.tolist()])  # numpy: no sync
    cells = [frame.table.column(name).to_pylist() for name in frame.columns]  # text, written back as read
    writer.writerows(zip(*cells, *added, strict=True))
    return out.getvalue()
