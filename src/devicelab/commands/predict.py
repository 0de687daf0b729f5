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
    from devicelab.fsutil import check_output

    if args.out:
        check_output(args.out, "--out", inputs=[args.data], run_dir=args.run_dir)
    frame = read_frame(args.data, text=True)  # bad files fail before torch is imported
    from devicelab.fsutil import atomic_write_text
    from devicelab.i18n import _
    from devicelab.i18n.labels import metric_word
    from devicelab.training.predict import load_saved, predict_table, predictions_csv

    predictions = predict_table(load_saved(args.run_dir), frame)
    text = predictions_csv(predictions)
    note = _("{n} predictions").format(n=len(predictions.values))
    if predictions.score:
        name, value = predictions.score
        note = _("{n} predictions ({metric} {value:.4f} against the target column in the file)").format(
            n=len(predictions.values), metric=metric_word(name), value=value
        )
    if args.out:
        try:
            atomic_write_text(args.out, text)
        except OSError as error:
            raise UserError(
                f"cannot write --out {args.out}: {error.strerror or error}",
                hint="give --out a file path in a folder you can write to",
            ) from None
        print(_("wrote {note} to {path}").format(note=note, path=args.out), file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(note, file=sys.stderr)
    for line in cell_lines(predictions.cells, len(predictions.values)):
        print(line, file=sys.stderr)
    return 0


def cell_lines(cells, rows: int) -> list[str]:
    """One line per feature column with cells the model never saw as they are: missing ones (imputed as in
    training) and unseen category levels (encoded as unknown); one line saying so when there are none."""
    from devicelab.i18n import _

    lines = []
    for c in cells:
        if c.missing and c.kind == "numeric":
            line = _(
                "{column}: {n} of {rows} cells missing or not a number, imputed with the training median "
                "{median:g}"
            ).format(column=c.column, n=c.missing, rows=rows, median=c.median)
        elif c.missing and c.kind == "datetime":
            line = _(
                "{column}: {n} of {rows} cells missing or not a date, imputed with the training medians"
            ).format(column=c.column, n=c.missing, rows=rows)
        elif c.missing and c.missing_level:
            line = _("{column}: {n} of {rows} cells missing, encoded as missing, as in training").format(
                column=c.column, n=c.missing, rows=rows
            )
        elif c.missing:
            line = _(
                "{column}: {n} of {rows} cells missing, encoded as unknown (no training row was missing here)"
            ).format(column=c.column, n=c.missing, rows=rows)
        else:
            line = None
        lines += [line] if line else []
        if c.unseen:
            lines.append(
                _("{column}: {n} of {rows} cells are levels not seen in training, encoded as unknown").format(
                    column=c.column, n=c.unseen, rows=rows
                )
            )
    if not lines and cells:
        lines.append(_("every feature cell was filled in, with no category level unseen in training"))
    return lines
