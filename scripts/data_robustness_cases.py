"""The files of scripts/data_robustness.py: a small table (two numbers, a colour, a label the numbers decide)
written the ways real files come (separators, encodings, number formats, broken cells, wrong kinds of file),
with what each run should do and, for a refusal, what its one line must name."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
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
