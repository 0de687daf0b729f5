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
import codecs
import contextlib
import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COLUMNS = ("x1", "x2", "colour", "label")
LABELS = ("bird", "cat", "dog")
TRAIN = ["--epochs", "60", "--log-every", "20", "--optimizer", "adam", "--lr", "0.05", "--quiet", "--threads", "1",
         "--device", "cpu"]  # fmt: skip


def rows(n: int = 60, seed: int = 0, labels=LABELS) -> list[list[str]]:
    """Two numbers, a colour, a label that the numbers decide (so a model can learn it)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).round(3)
    colours = rng.choice(["red", "green", "blue"], size=n)
    score = x[:, 0] + 0.5 * x[:, 1]
    y = np.digitize(score, [-0.4, 0.4])
    out = [
        [repr(float(a)), repr(float(b)), str(c), str(labels[k])]
        for (a, b), c, k in zip(x, colours, y, strict=True)
    ]
    for i, k in enumerate(range(len(labels))):  # every class present
        out[i][3] = str(labels[k])
    return out


def text(header, body, sep=",", end="\n") -> str:
    return end.join([sep.join(header), *(sep.join(r) for r in body)]) + end


# what a refusal's line must name (the file's kind, the cell, the row), beyond exit status 2
SAYS = {
    "duplicate_names": "duplicate column names: x1", "header_only": "no data rows", "one_row": "1 rows are too few",
    "one_class": "single class", "xlsx_as_csv": "Excel", "json_as_csv": "is JSON", "directory": "not a file",
    "target_missing": "did you mean 'label'", "stray_text_in_target": "'12a' in data row 5",
    "much_stray_text_in_target": "60 different values in 60 rows",
    "2000_columns_target_missing": "did you mean 'label'", "no_header": "'label' is not in",
    "huge_target": "data row(s) 4 (1e+39)", "constant_target": "same value (5) in every row", "two_rows": "too few",
    "only_target": "no feature column", "predict_missing_column": "lacks the feature column(s) x2",
    "predict_decimal_comma": "line 2 has 6 cells", "predict_header_only": "no data rows",
}  # fmt: skip


@dataclass
class Case:
    name: str
    write: Callable[[Path], Path]  # writes the training file into the folder, returns its path
    target: str = "label"
    extra: tuple[str, ...] = ()
    predict: Callable[[Path], Path] | None = None  # the second file; default: a clean one
    expect: str = "ok"  # "ok": trains and predicts; "refuse": one line, exit 2
    same_rows: bool = False  # the second file holds clean_predict's rows: the same predictions expected
    reference: Callable[[Path], Path] | None = None  # those rows written plainly, when not clean_predict's
    notes: list[str] = field(default_factory=list)


def put(name: str, content: str | bytes, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return write


def clean_predict(folder: Path) -> Path:
    path = folder / "new_rows.csv"
    path.write_text(text(COLUMNS, rows(20, seed=7)))
    return path


def predict_variant(name: str, header, body) -> Callable[[Path], Path]:
    return put(name, text(header, body))


def base() -> str:
    return text(COLUMNS, rows())


def numbers_as(fmt: Callable[[str], str], sep=",") -> str:
    return text(COLUMNS, [[fmt(r[0]), fmt(r[1]), r[2], r[3]] for r in rows()], sep=sep)


def with_cells(cells: dict[int, tuple[int, str]]) -> str:
    body = rows()
    for row, (col, value) in cells.items():
        body[row][col] = value
    return text(COLUMNS, body)


def parquet_bytes() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [r[i] for r in rows()] for i, c in enumerate(COLUMNS)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def xlsx_bytes() -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return sink.getvalue()


def wide(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2000)).round(2)
    header = [f"f{i}" for i in range(2000)] + ["label"]
    body = [[*map(str, r), LABELS[i % 3]] for i, r in enumerate(x)]
    path = folder / "wide.csv"
    path.write_text(text(header, body))
    return path


def wide_predict(folder: Path) -> Path:
    path = folder / "wide_new.csv"
    x = np.random.default_rng(2).normal(size=(5, 2000)).round(2)
    path.write_text(text([f"f{i}" for i in range(2000)], [list(map(str, r)) for r in x]))
    return path


def unreadable(folder: Path) -> Path:
    path = folder / "locked.csv"
    path.write_text(base())
    path.chmod(0)
    return path


def directory(folder: Path) -> Path:
    path = folder / "a_folder.csv"
    path.mkdir(exist_ok=True)
    return path


def thousands(v: str) -> str:
    return f'"{float(v) * 1000:,.1f}"'


def plain(v: str) -> str:
    return f"{float(v) * 1000:.1f}"


def one_class_rows() -> str:
    return text(COLUMNS, [[*r[:3], "cat"] for r in rows()])


def singleton_class() -> str:
    body = rows()
    body[5][3] = "fish"
    return text(COLUMNS, body)


def regression(body_fn: Callable[[list[list[str]]], None] | None = None) -> str:
    body = rows()
    for r in body:
        r[3] = repr(round(float(r[0]) * 3 + float(r[1]), 3))
    if body_fn:
        body_fn(body)
    return text((*COLUMNS[:3], "price"), body)


def regression_predict(folder: Path) -> Path:
    path = folder / "new_rows.csv"
    path.write_text(text(COLUMNS[:3], [r[:3] for r in rows(20, seed=7)]))
    return path


def _set(body, row, col, value):
    body[row][col] = value


def cases() -> list[Case]:
    shuffled = [1, 3, 0, 2]
    new = rows(20, seed=7)
    return [
        Case("utf8_bom", put("bom.csv", "\ufeff" + base())),
        Case("semicolon", put("semi.csv", text(COLUMNS, rows(), sep=";"))),
        Case("tab", put("tab.tsv", text(COLUMNS, rows(), sep="\t"))),
        Case("decimal_comma", put("dc.csv", numbers_as(lambda v: v.replace(".", ","), sep=";"))),
        Case("quoted_numbers", put("quoted.csv", numbers_as(lambda v: f'"{v}"'))),
        Case("thousands_sep", put("thousands.csv", numbers_as(thousands))),
        Case("crlf", put("crlf.csv", text(COLUMNS, rows(), end="\r\n"))),
        Case("blank_lines", put("blank.csv", base().replace("\n", "\n\n", 5) + "\n\n")),
        Case("trailing_comma", put("trail.csv", text((*COLUMNS, ""), [[*r, ""] for r in rows()]))),
        Case(
            "duplicate_names", put("dup.csv", text(("x1", "x1", "colour", "label"), rows())), expect="refuse"
        ),
        Case("header_only", put("header.csv", text(COLUMNS, [])), expect="refuse"),
        Case("one_row", put("one.csv", text(COLUMNS, rows()[:1])), expect="refuse"),
        Case("one_class", put("oneclass.csv", one_class_rows()), expect="refuse"),
        Case("singleton_class", put("single.csv", singleton_class())),
        Case("inf_cells", put("inf.csv", with_cells({3: (0, "1e400"), 4: (1, "inf"), 9: (0, "-inf")}))),
        Case("na_cells", put("na.csv", with_cells({3: (0, "NA"), 4: (1, "null"), 5: (0, "?"), 6: (2, "")}))),
        Case("text_in_number", put("12a.csv", with_cells({7: (0, "12a")}))),
        Case("latin1", put("latin1.csv", with_cells({3: (2, "rosé"), 8: (2, "rosé")}), encoding="latin-1")),
        Case("gzip", put("data.csv.gz", gzip.compress(base().encode()))),
        Case("xlsx_as_csv", put("book.csv", xlsx_bytes()), expect="refuse"),
        Case("parquet_as_csv", put("table.csv", parquet_bytes())),
        Case(
            "json_as_csv",
            put("rows.csv", json.dumps([dict(zip(COLUMNS, r, strict=True)) for r in rows()])),
            expect="refuse",
        ),
        Case("directory", directory, expect="refuse"),
        Case("unreadable", unreadable, expect="root-reads" if os.geteuid() == 0 else "refuse"),
        Case("2000_columns", wide, predict=wide_predict),
        Case("labels_1_to_3", put("ints.csv", text(COLUMNS, rows(labels=("1", "2", "3"))))),
        Case("target_missing", put("base.csv", base()), target="lable", expect="refuse"),
        Case("na_in_target", put("natarget.csv", with_cells({3: (3, "NA"), 4: (3, "")}))),
        Case(
            "regression_inf_target",
            put("reginf.csv", regression(lambda b: _set(b, 3, 3, "1e400"))),
            target="price",
            predict=regression_predict,
        ),
        Case(
            "header_trailing_comma",
            put("trail_head.csv", ",".join(COLUMNS) + ",\n" + text(COLUMNS, rows()).split("\n", 1)[1]),
        ),
        Case(
            "stray_text_in_target",
            put("typo.csv", regression(lambda b: _set(b, 4, 3, "12a"))),
            target="price",
            expect="refuse",
        ),
        Case(
            "much_stray_text_in_target",
            put("typos.csv", regression(lambda b: [_set(b, i, 3, f"x{i}") for i in range(1, 6)])),
            target="price",
            expect="refuse",
        ),
        Case("2000_columns_target_missing", wide, target="lable", expect="refuse"),
        Case(
            "utf16_tab",
            put("utf16.txt", codecs.BOM_UTF16_LE + text(COLUMNS, rows(), sep="\t").encode("utf-16-le")),
        ),
        Case(
            "european_numbers",
            put(
                "euro.csv",
                numbers_as(lambda v: f"{float(v) * 1e4:_.2f}".replace(".", ",").replace("_", "."), sep=";"),
            ),
        ),
        Case("trailing_comma_rows_only", put("trail_rows.csv", text(COLUMNS, [[*r, ""] for r in rows()]))),
        Case("excel_sep_line", put("excel.csv", "sep=;\n" + text(COLUMNS, rows(), sep=";"))),
        Case("no_header", put("noheader.csv", text(rows()[0], rows()[1:])), expect="refuse"),
        Case("cr_line_ends", put("mac.csv", text(COLUMNS, rows(), end="\r"))),
        Case(
            "padded_cells",
            put(
                "padded.csv",
                text((" x1", "x2 ", " colour", "label "), [[f" {c} " for c in r] for r in rows()]),
            ),
        ),
        Case("huge_float32", put("huge.csv", with_cells({3: (0, "1e300"), 4: (1, "-3e39")}))),
        Case(
            "huge_target",
            put("hugetarget.csv", regression(lambda b: _set(b, 3, 3, "1e39"))),
            target="price",
            predict=regression_predict,
            expect="refuse",
        ),
        Case(
            "constant_target",
            put("const.csv", regression(lambda b: [r.__setitem__(3, "5") for r in b])),
            target="price",
            predict=regression_predict,
            expect="refuse",
        ),
        Case("two_rows", put("two.csv", text(COLUMNS, rows()[:2])), expect="refuse"),
        Case("five_rows", put("five.csv", text(COLUMNS, rows()[:5]))),
        Case(
            "only_target",
            put("onlytarget.csv", text(("id", "label"), [[str(i), r[3]] for i, r in enumerate(rows())])),
            expect="refuse",
        ),
        Case("float_labels", put("floatlab.csv", text(COLUMNS, rows(labels=("1.0", "2.0", "3.0"))))),
        Case(
            "predict_decimal_comma",
            put("base.csv", base()),
            expect="refuse-predict",
            predict=predict_variant(
                "dc_new.csv", COLUMNS, [[r[0].replace(".", ","), r[1].replace(".", ","), *r[2:]] for r in new]
            ),
        ),
        Case(
            "predict_semicolon_dc",
            same_rows=True,
            write=put("base.csv", base()),
            predict=put(
                "sdc_new.csv",
                text(
                    COLUMNS, [[r[0].replace(".", ","), r[1].replace(".", ","), *r[2:]] for r in new], sep=";"
                ),
            ),
        ),
        Case(
            "predict_thousands",
            same_rows=True,
            write=put("thousands.csv", numbers_as(thousands)),
            predict=put(
                "th_new.csv", text(COLUMNS, [[thousands(r[0]), thousands(r[1]), *r[2:]] for r in new])
            ),
            reference=put("th_plain.csv", text(COLUMNS, [[plain(r[0]), plain(r[1]), *r[2:]] for r in new])),
        ),
        Case(
            "predict_header_only",
            put("base.csv", base()),
            predict=put("h.csv", text(COLUMNS, [])),
            expect="refuse-predict",
        ),
        Case(
            "predict_bom_crlf",
            same_rows=True,
            write=put("base.csv", base()),
            predict=put("bc.csv", "\ufeff" + text(COLUMNS, new, end="\r\n")),
        ),
        Case("predict_same_file", put("base.csv", base()), predict=lambda folder: folder / "base.csv"),
        Case(
            "predict_reordered",
            same_rows=True,
            write=put("base.csv", base()),
            predict=predict_variant(
                "reordered.csv", [COLUMNS[i] for i in shuffled], [[r[i] for i in shuffled] for r in new]
            ),
        ),
        Case(
            "predict_extra_column",
            same_rows=True,
            write=put("base.csv", base()),
            predict=predict_variant("extra.csv", (*COLUMNS, "note"), [[*r, "x"] for r in new]),
        ),
        Case(
            "predict_missing_column",
            put("base.csv", base()),
            predict=predict_variant("missing.csv", ("x1", "colour"), [[r[0], r[2]] for r in new]),
            expect="refuse-predict",
        ),
        Case(
            "predict_no_target",
            same_rows=True,
            write=put("base.csv", base()),
            predict=predict_variant("notarget.csv", COLUMNS[:3], [r[:3] for r in new]),
        ),
        Case(
            "predict_unseen_level",
            put("base.csv", base()),
            predict=predict_variant("unseen.csv", COLUMNS, [[*r[:2], "purple", r[3]] for r in new]),
        ),
        Case(
            "predict_unseen_label",
            same_rows=True,
            write=put("base.csv", base()),
            predict=predict_variant("unseenlabel.csv", COLUMNS, [[*r[:3], "fish"] for r in new]),
        ),
    ]


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
