"""devicelab on malformed and unusual files: each case is written to a temporary folder and run through the
real CLI (``train --data FILE --target ...``, then ``predict`` on a second file with the run folder, then
``report``). Prints one row per case: the exit status of each command, whether a traceback appeared, the
first line devicelab printed on stderr, and what was written (the run folder, the predictions).

Expected for every case: a right answer (the model trains; the predictions are in the training's label
space) or one clear line with exit status 2; never a traceback; a run folder never overwritten.

    python scripts/data_robustness.py [--only CASE ...] [--subprocess]

``--subprocess`` runs each command as ``python -m devicelab`` (slower: torch is imported per command);
by default the commands run in this process through ``devicelab.cli.main``. Under root, a file made
unreadable with chmod 000 is still read (root bypasses the permission bits): that case says so.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from data_robustness_cases import SAYS, TRAIN, Case, cases, clean_predict


@dataclass
class Outcome:
    code: int | None
    line: str
    traceback: bool
    stdout: str = ""
    length: int = 0  # of the whole error line (one line, but not a screenful)


def in_process(argv: list[str]) -> Outcome:
    from devicelab.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = None
    return _outcome(code, err.getvalue(), out.getvalue())


def as_subprocess(argv: list[str]) -> Outcome:
    done = subprocess.run([sys.executable, "-m", "devicelab", *argv], capture_output=True, text=True)
    return _outcome(done.returncode, done.stderr, done.stdout)


def _outcome(code, err: str, out: str) -> Outcome:
    lines = [line for line in err.splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith("devicelab: error")), lines[0] if lines else "")
    return Outcome(code, said[:400], "Traceback (most recent call last)" in err, out, len(said))


def predicted(path: Path) -> list[str] | None:
    """The predicted column of a predictions file (written with the delimiter of the rows it was given)."""
    with open(path, newline="") as f:
        first = f.readline()
        f.seek(0)
        delimiter = max(",;\t|", key=first.count)
        table = list(csv.DictReader(f, delimiter=delimiter))
    column = next((c for c in table[0] if c and c.startswith("predicted_")), None) if table else None
    return None if column is None else [r[column] for r in table]


def label_space(run: Path, predictions: Path) -> str:
    """'ok' when every predicted label is one of the training's labels (or a number, for regression)."""
    saved = json.loads((run / "preprocessing.json").read_text())
    found = predicted(predictions)
    if found is None:
        return "no predicted column"
    values = set(found)
    classes = saved.get("classes")
    if classes is None:  # regression
        try:
            [float(v) for v in values]
        except ValueError:
            return "non-numeric prediction"
        return "ok"
    outside = values - {str(c) for c in classes}
    return "ok" if not outside else f"outside {sorted(outside)[:3]}"


def run_case(case: Case, folder: Path, runner) -> dict:
    folder.mkdir()
    data = case.write(folder)
    runs = folder / "runs"
    train = runner(["train", "--data", str(data), "--target", case.target, *TRAIN, *case.extra,
                    "--runs-dir", str(runs), "--name", "run"])  # fmt: skip
    row = {"case": case.name, "expect": case.expect, "train": train, "says": SAYS.get(case.name, "")}
    run = runs / "run"
    row["written"] = sorted(p.name for p in run.iterdir()) if run.is_dir() else []
    if train.code != 0:
        return row
    row["roles"] = roles(run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    again = runner(["train", "--data", str(data), "--target", case.target, *TRAIN, "--runs-dir", str(runs),
                    "--name", "run"])  # fmt: skip
    row["again"] = again  # the same --name: refused or another folder, the first run untouched
    row["untouched"] = before == {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    second = (case.predict or clean_predict)(folder)
    out = folder / "predictions.csv"
    out.write_text("kept\n")  # a predict that fails must not lose it
    row["predict"] = runner(["predict", str(run), "--data", str(second), "--out", str(out)])
    if row["predict"].code == 0:
        row["labels"] = label_space(run, out)
        if case.same_rows:
            reference = folder / "reference.csv"
            plain = (case.reference or clean_predict)(folder)
            runner(["predict", str(run), "--data", str(plain), "--out", str(reference)])
            if predicted(reference) != predicted(out):
                row["labels"] = "differ from the clean file's"
    else:
        row["labels"] = "kept" if out.read_text() == "kept\n" else "LOST"
    row["report"] = runner(["report", str(run)])
    return row


def roles(run: Path) -> str:
    """The roles devicelab gave the columns, short: ``x1:numeric colour:categorical(3 levels) ...``, and the rows."""
    saved = json.loads((run / "preprocessing.json").read_text())
    parts = []
    for role in saved["roles"]:
        detail = role["detail"].split(";")[0].split(",")[0]
        short = role["role"] if role["role"] in ("numeric",) else f"{role['role']}({detail})"
        parts.append(
            f"{role['column']}:{short}" + (f"[{role['missing']} missing]" if role["missing"] else "")
        )
    source = saved["source"]
    dropped = source.get("rows_dropped", 0) + source.get("rows_target_missing", 0)
    return (
        f"{source['rows_read']} rows" + (f" ({dropped} dropped)" if dropped else "") + "; " + " ".join(parts)
    )


def verdict(row: dict) -> str:
    outcomes = [row.get(k) for k in ("train", "again", "predict", "report") if row.get(k)]
    if any(o.traceback or o.code is None for o in outcomes):
        return "TRACEBACK"
    if any(o.length > 400 for o in outcomes):
        return "BREAK (long line)"
    train, expect = row["train"], row["expect"]
    if expect == "refuse":
        said = train.line.startswith("devicelab: error") and row["says"] in train.line
        return "ok" if train.code == 2 and said else "BREAK" if train.code != 2 else "BREAK (says)"
    if train.code != 0:
        return "BREAK" if expect != "root-reads" else "BREAK (root)"
    if row["again"].code not in (0, 2) or not row["untouched"]:
        return "BREAK (run overwritten)"
    predict = row["predict"]
    if expect == "refuse-predict":
        return (
            "ok" if predict.code == 2 and row["labels"] == "kept" and row["says"] in predict.line else "BREAK"
        )
    if predict.code != 0 or row.get("labels") != "ok" or row["report"].code != 0:
        return "BREAK"
    return "ok"


def main_() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--subprocess", action="store_true")
    parser.add_argument("--roles", action="store_true", help="print the column roles of each run")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    runner = as_subprocess if args.subprocess else in_process
    top = Path(tempfile.mkdtemp(prefix="data-robust-"))
    results = []
    print(f"{'case':28}{'verdict':14}{'train':>6}{'pred':>5}{'rep':>4}  labels      first stderr line")
    try:
        for case in cases():
            if args.only and case.name not in args.only:
                continue
            row = run_case(case, top / case.name, runner)
            status = verdict(row)
            codes = [row[k].code if k in row else "-" for k in ("train", "predict", "report")]
            line = (
                row.get("predict") if row["train"].code == 0 and row["predict"].code else row["train"]
            ).line
            print(
                f"{case.name:28}{status:14}{codes[0]!s:>6}{codes[1]!s:>5}{codes[2]!s:>4}  "
                f"{row.get('labels', '-'):12}{line.replace(str(top), '…')[:170]}",
                flush=True,
            )
            if args.roles and row.get("roles"):
                print(f"{'':28}{row['roles']}")
            line = line.replace(str(top), "…")
            results.append({"case": case.name, "verdict": status, "codes": codes, "line": line,
                            "labels": row.get("labels"), "written": row["written"],
                            "roles": row.get("roles")})  # fmt: skip
    finally:
        for path in top.rglob("*"):
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(top, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    bad = [r["case"] for r in results if r["verdict"] != "ok"]
    print(
        f"{len(results) - len(bad)} of {len(results)} as expected"
        + (f"; not: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main_())
