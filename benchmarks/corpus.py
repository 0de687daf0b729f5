"""devicelab on real files, with only --target, against a scikit-learn baseline on the same split.

For each file of ``tests/data/corpus`` (real public data sets as their packages ship them; see the
README there): devicelab trains with its defaults (only the file and the target given; ``--epochs`` may be
lowered for a quick run) and reports its test accuracy or R²; the baseline is what the issue's reviewer
did by hand: scikit-learn's ``ColumnTransformer`` (median ``SimpleImputer`` + ``StandardScaler`` for
numbers, ``OneHotEncoder`` for categories) and ``LogisticRegression`` / ``Ridge``, fitted on the same
training rows (validation rows included) and scored on the same test rows. The baseline takes the columns
devicelab chose as features (its role inference is what is tested by whether the file trains at all).

    python benchmarks/corpus.py [--epochs N] [--only FILE ...] [--markdown] [--split]

Prints one row per file and the share within 0.05 accuracy / 0.1 R² of the baseline (or better); the
``epochs`` column says whether cross-validation chose them ("cv N": small data, devicelab.training.cv)
and ``split`` (with --split) what today's validation split gives on the same file instead.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
MARGIN = {"accuracy": 0.05, "r2": 0.1}


def corpus() -> list[dict]:
    with open(CORPUS / "corpus.csv", newline="") as f:
        return list(csv.DictReader(f))


def baseline(path: Path, target: str, data) -> float:
    """Test accuracy (logistic regression) or R² (ridge) of a scikit-learn pipeline on devicelab's split."""
    import pyarrow as pa
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from devicelab.data import encode_target, read_frame
    from devicelab.data.split import split, stratified_split
    from devicelab.data.transforms import DATE_PARTS, _part

    frame = read_frame(path, target=target)
    spec_task = data.task
    y = encode_target(frame.table.column(target), target, spec_task, decimal=frame.decimal)
    kinds = data.preprocessor.kinds
    numeric, text = [], []
    for name in data.feature_names:
        column = frame.table.column(name)
        if kinds[name] == "numeric":
            numbers = data.preprocessor.prepare(name, column, frame.decimal)
            numeric.append(numbers.to_numpy(zero_copy_only=False).astype(float))
        elif kinds[name] == "datetime":
            dates = data.preprocessor.prepare(name, column, frame.decimal)
            numeric += [_part(dates, part) for part in DATE_PARTS]
        else:
            values = data.preprocessor.prepare(name, column, frame.decimal)
            text.append(np.asarray(pa.compute.fill_null(values, "(missing)").to_pylist(), dtype=object))
    keep = y.present
    x = np.empty((int(keep.sum()), len(numeric) + len(text)), dtype=object)
    for j, values in enumerate(numeric + text):
        x[:, j] = values[keep]
    rows = np.arange(len(x))
    # devicelab's split (the lesson's train_test_split; stratified by class for a file's classes, as
    # train_test_split(..., stratify=y) draws it): the same test rows, or the comparison is noise
    if y.task == "classification":
        train, test = stratified_split(rows, y.values, 0.2, 42)
    else:
        train, test = split(rows, 0.2, 42)
    parts = []
    if numeric:
        parts.append(
            (
                "numbers",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(range(len(numeric))),
            )
        )
    if text:
        onehot = OneHotEncoder(handle_unknown="ignore")
        parts.append(("categories", onehot, list(range(len(numeric), len(numeric) + len(text)))))
    model = LogisticRegression(max_iter=5000) if y.task == "classification" else Ridge(alpha=1.0)
    pipeline = make_pipeline(ColumnTransformer(parts), model)
    pipeline.fit(x[train], y.values[train])
    return float(pipeline.score(x[test], y.values[test]))  # accuracy, or R² for Ridge


def devicelab_score(path: Path, target: str, epochs: int | None, val_size: float | None = None):
    """devicelab's test metric with only the target given (``val_size``: 0.15 forces today's validation
    split where small data would be cross-validated, for the CV-vs-split column)."""
    from devicelab import TrainConfig, train

    options = {"epochs": epochs} if epochs else {}
    if val_size is not None:
        options["val_size"] = val_size
    config = TrainConfig(data=str(path), target=target, device="cpu", threads=1, quiet=True, **options)
    result = train(config)
    final = result.final
    metric = "accuracy" if result.dataset.task == "classification" else "r2"
    return result, metric, float(final.get(f"test_{metric}", math.nan))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="epochs per file (default: devicelab's default)")
    parser.add_argument("--only", nargs="*", help="only these files")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--split",
        action="store_true",
        help="also train each cross-validated file with today's validation split (--val-size 0.15)",
    )
    args = parser.parse_args(argv)
    rows = [r for r in corpus() if not args.only or r["file"] in args.only]
    header = ("file", "rows", "task", "metric", "devicelab", "baseline", "diff", "ok", "epochs", "split", "s")
    print(("| " + " | ".join(header) + " |") if args.markdown else "  ".join(f"{h:>10}" for h in header))
    if args.markdown:
        print("|" + "---|" * len(header))
    trained = close = 0
    for row in rows:
        path = CORPUS / row["file"]
        started = time.perf_counter()
        try:
            result, metric, mine = devicelab_score(path, row["target"], args.epochs)
        except Exception as error:  # a file that does not train is a result here, not a crash
            print(f"{row['file']}: did not train: {type(error).__name__}: {error}")
            continue
        trained += math.isfinite(mine)  # it ran to the end (completed, or stopped early) with a test score
        theirs = baseline(path, row["target"], result.dataset)
        diff = mine - theirs
        ok = diff >= -MARGIN[metric]
        close += ok
        n = result.dataset.source.get("rows_read", 0)
        folds = result.cross_validation
        epochs = f"cv {folds['best_epoch']}" if folds else str(result.epochs_done)
        split = "-"
        if folds and args.split:  # the same file with today's validation split, for comparison
            split = f"{devicelab_score(path, row['target'], args.epochs, val_size=0.15)[2]:.3f}"
        cells = (row["file"], n, result.dataset.task[:5], metric, f"{mine:.3f}", f"{theirs:.3f}", f"{diff:+.3f}",
                 "yes" if ok else "NO", epochs, split, f"{time.perf_counter() - started:.1f}")  # fmt: skip
        if args.markdown:
            print("| " + " | ".join(str(c) for c in cells) + " |")
        else:
            print("  ".join(f"{c!s:>10}" for c in cells), flush=True)
    print(
        f"\ntrained {trained}/{len(rows)}; within 0.05 accuracy / 0.1 R² of the baseline or better: {close}/{trained}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
