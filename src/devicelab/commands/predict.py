"""devicelab predict: apply a trained run's preprocessing and model to new rows."""

from __future__ import annotations

import argparse
import sys

from devicelab.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict with a trained run on a CSV or Parquet file (labels come back as the original ones)",
        description=(
            "Apply the preprocessing and model saved in a run folder to the rows of a CSV or Parquet file and "
            "write them back as CSV with a predicted_<target> column (and, for classes, the model's "
            "confidence). The file needs the run's feature columns; other columns are kept; missing cells "
            "are imputed and unseen categories are 'unknown', as in training; a target column, if present, "
            "is scored."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="a run folder written by devicelab train")
    parser.add_argument("--data", metavar="FILE", required=True, help="the rows to predict (CSV or Parquet)")
    parser.add_argument("--out", metavar="FILE.csv", help="write predictions here (default: standard output)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devicelab.data import read_frame

    frame = read_frame(args.data, text=True)  # bad files fail before torch is imported
    from devicelab.fsutil import atomic_write_text
    from devicelab.training.predict import load_saved, predict_table, predictions_csv

    predictions = predict_table(load_saved(args.run_dir), frame)
    text = predictions_csv(predictions)
    note = f"{len(predictions.values)} predictions"
    if predictions.score:
        name, value = predictions.score
        note += f" ({name} {value:.4f} against the target column in the file)"
    if args.out:
        try:
            atomic_write_text(args.out, text)
        except OSError as error:
            raise UserError(
                f"cannot write --out {args.out}: {error.strerror or error}",
                hint="give --out a file path in a folder you can write to",
            ) from None
        print(f"wrote {note} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(note, file=sys.stderr)
    return 0
