"""Write the corpus files that are not copied from a package but written for it (tests/data/corpus, the
second table of its README): scikit-learn's bundled data sets as people export them, and a classic small
table typed by hand. Run once; the files are committed, so this documents how they were made.

    python benchmarks/corpus_extra.py

Each keeps the data as published (values unchanged) and takes a style the corpus needs: Efron's
tab-separated diabetes file, an R ``write.csv`` export with row names and quoted text, a European
spreadsheet export (semicolons, decimal commas), spaces in column names, a 20-row table, and 1,797 rows
of 64 pixel counts (a file above cross-validation's 1,000 rows).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"


def _bundled(name: str) -> Path:
    from sklearn.datasets import _base

    return Path(_base.__file__).parent / "data" / name


def _rows(name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """scikit-learn's bundled CSV: a first line ``n,features,class names...``, then numbers and a class id."""
    with open(_bundled(name), newline="") as f:
        head = next(csv.reader(f))
        data = np.array([[float(v) for v in row] for row in csv.reader(f)])
    return head[2:], data[:, :-1], data[:, -1].astype(int)


def diabetes() -> None:
    """Efron et al. (2004): the raw (unstandardised) 442 patients, tab-separated with Efron's header."""
    x = np.loadtxt(gzip.open(_bundled("diabetes_data_raw.csv.gz")))
    y = np.loadtxt(gzip.open(_bundled("diabetes_target.csv.gz")))
    names = ["AGE", "SEX", "BMI", "BP", "S1", "S2", "S3", "S4", "S5", "S6", "Y"]
    lines = ["\t".join(names)] + ["\t".join(f"{v:g}" for v in (*row, t)) for row, t in zip(x, y, strict=True)]
    (CORPUS / "diabetes.csv").write_text("\n".join(lines) + "\n")


def iris_r() -> None:
    """Fisher's iris as R's ``write.csv(iris)`` writes it: quoted header, row names, quoted species."""
    classes, x, y = _rows("iris.csv")
    lines = ['"","Sepal.Length","Sepal.Width","Petal.Length","Petal.Width","Species"']
    lines += [f'"{i + 1}",' + ",".join(f"{v:g}" for v in row) + f',"{classes[c]}"' for i, (row, c) in
              enumerate(zip(x, y, strict=True))]  # fmt: skip
    (CORPUS / "iris_r.csv").write_text("\n".join(lines) + "\n")


def wine_eu() -> None:
    """The UCI wine recognition data as a European spreadsheet exports it: semicolons, decimal commas."""
    classes, x, y = _rows("wine_data.csv")
    names = ["Alcohol", "Malic acid", "Ash", "Alcalinity of ash", "Magnesium", "Total phenols", "Flavanoids",
             "Nonflavanoid phenols", "Proanthocyanins", "Color intensity", "Hue", "OD280/OD315", "Proline",
             "Cultivar"]  # fmt: skip
    lines = [";".join(names)] + [
        ";".join(f"{v:g}".replace(".", ",") for v in row) + f";{classes[c]}"
        for row, c in zip(x, y, strict=True)
    ]
    (CORPUS / "wine_eu.csv").write_text("\n".join(lines) + "\n")


def breast_cancer() -> None:
    """The Wisconsin diagnostic data with the UCI column names (spaces in them) and text diagnoses."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    label = {0: "malignant", 1: "benign"}
    with open(CORPUS / "breast_cancer.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*data.feature_names, "diagnosis"])
        out.writerows(
            [*(f"{v:g}" for v in row), label[int(t)]] for row, t in zip(data.data, data.target, strict=True)
        )


def linnerud() -> None:
    """Tenenhaus' 20 middle-aged men: three exercises and three body measures, space-separated."""
    exercise = _bundled("linnerud_exercise.csv").read_text().splitlines()
    body = _bundled("linnerud_physiological.csv").read_text().splitlines()
    lines = [f"{a} {b}" for a, b in zip(exercise, body, strict=True) if a.strip()]
    (CORPUS / "linnerud.csv").write_text("\n".join(lines) + "\n")


def digits() -> None:
    """The UCI optical digits (8x8 pixel counts 0-16), one column per pixel and the digit last."""
    from sklearn.datasets import load_digits

    data = load_digits()
    names = [f"p{r}{c}" for r in range(8) for c in range(8)] + ["digit"]
    lines = [",".join(names)] + [",".join(str(int(v)) for v in (*row, t)) for row, t in
                                 zip(data.data, data.target, strict=True)]  # fmt: skip
    (CORPUS / "digits.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    for write in (diabetes, iris_r, wine_eu, breast_cancer, linnerud, digits):
        write()
