"""The toy data sets shipped with scikit-learn, read without a download (Iris without importing it)."""

from __future__ import annotations

import numpy as np

from devicelab.errors import UserError

BUILTIN: dict[str, str] = {
    # name -> task; loaders come from sklearn.datasets (shipped with scikit-learn, no download)
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}


def load_builtin(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str, str]:
    """``(X, y, feature_names, target_name, task)`` of a toy set shipped with scikit-learn."""
    if name not in BUILTIN:
        from difflib import get_close_matches

        close = get_close_matches(name, BUILTIN, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown dataset {name!r}",
            hint=f"{suggestion}built-in sets: {', '.join(BUILTIN)}; or give a CSV with --data FILE --target COLUMN",
        )
    if name == "iris":  # the seed workload: read the file scikit-learn ships, without importing it (~1 s)
        iris = _iris_as_sklearn_ships_it()
        if iris is not None:
            return (*iris, "target", BUILTIN[name])
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    features = tuple(str(f) for f in bunch.feature_names)
    return np.asarray(bunch.data), np.asarray(bunch.target), features, "target", BUILTIN[name]


def builtin_class_names(name: str) -> tuple | None:
    """The label of each class id of a built-in set, as scikit-learn names them (iris: setosa, versicolor,
    virginica; digits: 0 to 9); None for a regression set."""
    if BUILTIN.get(name) != "classification":
        return None
    if name == "iris":
        return IRIS_CLASSES
    import sklearn.datasets

    names = getattr(sklearn.datasets, f"load_{name}")().target_names
    return tuple(n.item() if isinstance(n, np.generic) else n for n in names)  # numpy scalars: no device


IRIS_FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
IRIS_CLASSES = ("setosa", "versicolor", "virginica")  # load_iris().target_names


IRIS_FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
IRIS_CLASSES = ("setosa", "versicolor", "virginica")  # load_iris().target_names


def _iris_as_sklearn_ships_it() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """``sklearn.datasets.load_iris()``'s data, target and feature names, parsed the way its
    ``load_csv_data`` parses ``datasets/data/iris.csv`` (float64 features, int targets); None when that
    file is not where a scikit-learn installation keeps it."""
    import csv
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "iris.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        n_samples, n_features = (int(v) for v in next(rows)[:2])
        data = np.empty((n_samples, n_features))
        target = np.empty((n_samples,), dtype=int)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = np.asarray(row[-1], dtype=int)
    return data, target, IRIS_FEATURES
