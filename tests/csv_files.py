"""Real CSV files for tests: Iris written out the way users' files come (delimiters, BOM, text labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SPECIES = ("setosa", "versicolor", "virginica")


def iris_arrays() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_iris()
    return np.asarray(bunch.data), np.asarray(bunch.target)


def iris_rows(text_labels: bool = True) -> list[list[str]]:
    x, y = iris_arrays()
    return [
        [*(repr(float(v)) for v in row), SPECIES[t] if text_labels else str(int(t))]
        for row, t in zip(x, y, strict=True)
    ]


def write_csv(
    path: Path,
    rows: list[list[str]],
    header: tuple[str, ...] = (*COLUMNS, "species"),
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(row) for row in rows)]
    text = "\n".join(lines) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def iris_csv(path: Path, **kwargs) -> Path:
    text_labels = kwargs.pop("text_labels", True)
    return write_csv(path, iris_rows(text_labels), **kwargs)
