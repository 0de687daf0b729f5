"""The rows ``devicelab.fit`` is given, as a ``Dataset``: arrays, tensors, DataFrames or a torch ``Dataset``,
used as given (no scaling, no split) unless an argument asks. The task and the classes are inferred as
``devicelab train`` infers them from a column (``devicelab.data.encode_target``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from devicelab.data import Dataset, Scaler, check_split_size, encode_target
from devicelab.errors import UserError

TARGET_KEYS = ("y", "label", "labels", "target", "targets")  # a dict item's target, by its key
FEATURE_KEYS = ("x", "X", "features", "input", "inputs", "data")  # and its features


def dataset_from_arrays(
    X, y, X_test=None, y_test=None, *, task: str | None = None, test_size: float | None = None,
    seed: int = 42, scaler: str = "none",
) -> Dataset:  # fmt: skip
    """``X``/``y`` (and ``X_test``/``y_test``) as a Dataset; ``test_size``: split a test set off ``X`` as
    train does (``train_test_split`` with ``seed``); ``scaler``: fitted on the training rows."""
    if y is None:  # a torch Dataset of (x, y) pairs
        X, y = _from_torch_dataset(X, "X")
        if X_test is not None and y_test is None:
            X_test, y_test = _from_torch_dataset(X_test, "X_test")
    names = _column_names(X)
    x, labels = _features(X, "X"), _values(y, "y")
    _same_length(x, labels, "X", "y")
    _finite(x, "X", X)
    _finite(labels, "y", y)
    if (X_test is None) != (y_test is None):
        raise UserError("X_test and y_test go together", hint="pass both, or neither")
    if X_test is not None and test_size is not None:
        raise UserError("test_size splits X, and X_test was given too", hint="pass one of them")
    if X_test is not None:
        x_test, labels_test = _features(X_test, "X_test"), _values(y_test, "y_test")
        _same_length(x_test, labels_test, "X_test", "y_test")
        _finite(x_test, "X_test", X_test)
        _finite(labels_test, "y_test", y_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise UserError(f"X_test's rows have shape {x_test.shape[1:]}, X's {x.shape[1:]}")
        test_names = _column_names(X_test)
        if (
            names and test_names and test_names != names
        ):  # the same columns in another order: mixed up silently
            first = next(i for i, (a, b) in enumerate(zip(names, test_names, strict=True)) if a != b)
            raise UserError(
                f"X_test's columns are not X's: column {first} is {test_names[first]!r} in X_test and "
                f"{names[first]!r} in X",
                hint="X_test = X_test[X.columns] puts them in X's order",
            )
        if labels_test.shape[1:] != labels.shape[1:]:  # (n,) labels and one-hot test rows, say
            raise UserError(
                f"y_test's rows have shape {labels_test.shape[1:]}, y's {labels.shape[1:]}",
                hint="give y and y_test in one form (class labels, or one-hot rows, in both)",
            )
    else:
        x_test, labels_test = x[:0], labels[:0]
    n_train = len(labels)
    target = _target(np.concatenate([labels, labels_test]), task)
    y_all = target.values.astype(np.int64 if target.task == "classification" else np.float32)
    y_train, y_test_values = y_all[:n_train], y_all[n_train:]
    if test_size is not None:
        from sklearn.model_selection import train_test_split

        check_split_size(n_train, test_size)
        x, x_test, y_train, y_test_values = train_test_split(
            x, y_train, test_size=test_size, random_state=seed
        )
    if scaler != "none" and x.ndim != 2:
        raise UserError(f"scaler={scaler!r} scales columns, and X's rows have shape {x.shape[1:]}")
    fitted = Scaler.fit(scaler, x.reshape(len(x), -1))  # "none": the identity, as saved with a run
    if scaler != "none":
        x, x_test = fitted.transform(x), fitted.transform(x_test)
    return Dataset(
        name="arrays",
        task=target.task,
        feature_names=names or tuple(f"x{i}" for i in range(x.shape[1] if x.ndim == 2 else 0)),
        target_name=getattr(y, "name", None) or "y",
        x_train=np.ascontiguousarray(x),
        x_test=np.ascontiguousarray(x_test, x.dtype),
        y_train=np.ascontiguousarray(y_train),
        y_test=np.ascontiguousarray(y_test_values),
        classes=target.classes,
        scaler=fitted,
        source={"kind": "arrays", "name": "arrays", "rows_train": len(x), "rows_test": len(x_test)},
        x_val=np.zeros((0, *x.shape[1:]), x.dtype),
        y_val=y_train[:0],
    )


def _target(values: np.ndarray, task: str | None):
    if values.ndim == 2 and task != "regression" and _one_hot(values):
        # one-hot rows (Keras' to_categorical, pandas.get_dummies): the class of each row is where its 1 is;
        # cross-entropy on those ids is the user's cross_entropy(out, y_one_hot) to the last digit
        ids = values.argmax(axis=1).astype(np.int64)
        return _Multi(ids, "classification", tuple(range(values.shape[1])))
    if values.ndim > 1:  # several numbers a row: regression on all of them
        if task == "classification":
            raise UserError(
                f"classification takes one label a row, and y has shape {values.shape}",
                hint="pass the class of each row (y.argmax(axis=1) of one-hot rows), or task='regression'",
            )
        return _Multi(values.astype(np.float32))
    whole = values.dtype.kind in "iu" or (
        values.dtype.kind == "f" and bool(np.all(values == np.floor(values)))
    )
    if task != "regression" and (whole or values.dtype.kind not in "f") and bool(np.all(values == values[0])):
        # a numpy scalar on the host (.item(): no device, no sync)
        first = values[0].item() if isinstance(values[0], np.generic) else values[0]
        raise UserError(
            f"y has one class ({first!r}) in all its rows ({len(values)}): classification needs rows of at "
            "least two classes",
            hint="give rows of two classes or more, or pass task='regression' for a number to predict",
        )
    found = encode_target(values, "y", task)
    if found.n_missing:  # empty labels (None, "") among text ones (NaN and inf: said by _finite already)
        row = int(np.argmin(found.present))
        raise UserError(
            f"y has {found.n_missing} missing label(s), the first at row {row}", hint="drop those rows first"
        )
    if found.task == "classification" and whole and values.min() >= 0:
        # integer labels (or whole floats, 0. 1. 2. as np.loadtxt reads them) are the class indices the user's
        # own loop gives cross-entropy (``y.long()``): kept as they are (labels 0, 1, 2, 4 stay 4, not 3), the
        # classes 0..max, so fit's losses are that loop's
        return replace(found, values=values.astype(np.int64), classes=tuple(range(int(values.max()) + 1)))
    return found


def _one_hot(values: np.ndarray) -> bool:
    """Each row one 1 and otherwise 0 (bools or numbers), two columns or more."""
    if values.shape[1] < 2 or values.dtype.kind not in "biuf":
        return False
    return bool(np.isin(values, (0, 1)).all() and (values.sum(axis=1) == 1).all())


class _Multi:
    """A target ``encode_target`` does not read: several numbers a row, or one-hot rows as class ids."""

    def __init__(self, values: np.ndarray, task: str = "regression", classes: tuple | None = None) -> None:
        self.values, self.task, self.classes = values, task, classes


def _features(data, what: str) -> np.ndarray:
    array = _numpy(data, what)
    if array.ndim < 2:
        raise UserError(
            f"{what} has shape {array.shape}: one row a sample is needed",
            hint=f"one feature: {what}.reshape(-1, 1); one sample: {what}.reshape(1, -1)",
        )
    if array.dtype.kind not in "fiub":
        raise UserError(f"{what} holds {array.dtype} values, not numbers", hint="encode text columns first")
    # as given: floats in their own precision, integers (codes for an embedding) as integers; the model
    # decides the dtype it trains on (devicelab.training.user_inputs)
    if array.dtype.kind == "b":
        return array.astype(np.float32)
    return (
        array if array.flags.writeable else array.copy()
    )  # (pandas' copy-on-write hands out read-only views)


def _values(data, what: str) -> np.ndarray:
    array = _numpy(data, what, features=False)  # (a DataFrame's labels may be text)
    if (
        array.dtype == object
    ):  # text labels: a missing one (pandas' NaN in a str column) as None, as pyarrow reads it
        array = np.array([None if v is None or v != v else v for v in array.reshape(-1)], object).reshape(
            array.shape
        )
    return array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array


def _numpy(data, what: str, features: bool = True) -> np.ndarray:
    if hasattr(data, "detach"):  # a torch tensor
        # sync: a device tensor is copied to the host once, before training, to be checked and split
        return data.detach().cpu().numpy()
    if features and hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a pandas DataFrame
        return _frame_numbers(data, what)
    if hasattr(data, "to_numpy"):  # a pandas Series
        return data.to_numpy()
    if hasattr(data, "toarray") and hasattr(data, "nnz"):  # a scipy sparse matrix (TF-IDF, one-hot features)
        return data.toarray()  # dense rows, as the user's torch.tensor(X.toarray()) makes them
    try:
        return np.asarray(data)
    except (TypeError, ValueError) as error:
        raise UserError(f"{what} is not an array ({type(data).__name__}: {error})") from None


def _frame_numbers(frame, what: str) -> np.ndarray:
    """A DataFrame's cells as one numeric array: bool columns as 0/1, nullable columns (``Int64``,
    ``boolean``) with their missing cells as NaN; a text column is named in one line."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    kinds = []
    for column, dtype in frame.dtypes.items():
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype)):
            raise UserError(
                f"{what}'s column {column!r} holds {dtype} values, not numbers",
                hint="encode it first (pandas.get_dummies, or .cat.codes), or train on the file with "
                "devicelab train --data FILE, which encodes text columns",
            )
        kinds.append(getattr(dtype, "numpy_dtype", dtype))  # Int64 -> int64, boolean -> bool
    numbers = [k for k in kinds if np.dtype(k).kind != "b"]
    dtype = np.result_type(*numbers) if numbers else np.dtype(np.float32)  # bools alone: float32
    if dtype.kind in "iu" and bool(frame.isna().to_numpy().any()):
        dtype = np.dtype(np.float64)  # a nullable integer column with missing cells
    return frame.to_numpy(dtype=dtype, na_value=np.nan if dtype.kind == "f" else None)


def _finite(array: np.ndarray, what: str, data) -> None:
    """A UserError naming the first NaN or infinite cell of ``array`` (by the DataFrame's index label and
    column name where ``data`` has them): a user's loop would train on it and diverge without a word."""
    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    index = getattr(data, "index", None)
    label = index[first[0]] if index is not None else None
    # numpy's 107, said as 107 (a host scalar: no device, no sync)
    label = label.item() if isinstance(label, np.generic) else label
    row = f"row {first[0]}" + (f" (index {label!r})" if index is not None else "")
    columns = _column_names(data)
    cell = (
        f", column {columns[first[1]]!r}" if columns and len(first) == 2
        else f", column {first[1]}" if len(first) == 2
        else f", position {first[1:]}" if len(first) > 2
        else ""
    )  # fmt: skip
    value = "NaN" if np.isnan(array[first]) else "an infinite value"
    keep = f"np.isfinite({what})" + (".all(axis=1)" if array.ndim == 2 else "")
    raise UserError(
        f"{what} has {int(bad.sum())} NaN or infinite value(s), the first ({value}) at {row}{cell}",
        hint=f"drop or fill those rows before fit (e.g. keep = {keep}); "
        "devicelab train --data FILE fills a file's missing cells",
    )


def _column_names(data) -> tuple[str, ...]:
    columns = getattr(data, "columns", None)
    return tuple(str(c) for c in columns) if columns is not None else ()


def _same_length(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if len(x) != len(y):
        raise UserError(
            f"{x_name} has {len(x)} rows and {y_name} {len(y)}",
            hint=f"{y_name} needs one target for each row of {x_name}",
        )
    if len(x) == 0:
        raise UserError(f"{x_name} has no rows")


def _from_torch_dataset(data, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(x, y)`` item of a map-style torch Dataset, stacked (once, before training)."""
    import torch

    try:
        items = [data[i] for i in range(len(data))]
    except Exception as error:
        raise UserError(
            f"{what} is not a Dataset of (x, y) pairs: {what}[i] raised {type(error).__name__}: {error}",
            hint="pass y, or a map-style torch Dataset whose items are (features, target)",
        ) from None
    if not items:
        raise UserError(f"{what} has no rows")
    pairs = [_pair(item, what) for item in items]
    try:
        xs = torch.stack([torch.as_tensor(x) for x, _ in pairs])
        ys = torch.stack([torch.as_tensor(y) for _, y in pairs])
    except Exception as error:
        raise UserError(
            f"{what}'s items do not stack into rows ({type(error).__name__}: {error})",
            hint="each item's features must have one shape, and its target one number (or one shape)",
        ) from None
    return xs.numpy(), ys.numpy()


def _pair(item, what: str) -> tuple:
    """An item as ``(features, target)``: a pair as it is; a dict by its keys (``TARGET_KEYS`` for the
    target, ``FEATURE_KEYS`` or the one other key for the features)."""
    if isinstance(item, Mapping):
        target = next((k for k in TARGET_KEYS if k in item), None)
        others = [k for k in item if k != target]
        features = next((k for k in FEATURE_KEYS if k in item), others[0] if len(others) == 1 else None)
        if target is None or features is None:
            raise UserError(
                f"{what}'s items are dicts with the keys {', '.join(map(repr, item))}, and devicelab cannot "
                "tell the features from the target",
                hint=f"name the target {TARGET_KEYS[0]!r} or {TARGET_KEYS[1]!r} and the features "
                f"{FEATURE_KEYS[0]!r}, or return (features, target) pairs",
            )
        return item[features], item[target]
    if isinstance(item, tuple | list) and len(item) == 2:
        return item[0], item[1]
    kind = (
        f"a {len(item)}-item {type(item).__name__}" if isinstance(item, tuple | list) else type(item).__name__
    )
    raise UserError(
        f"{what}'s items are {kind}, not (features, target) pairs",
        hint="pass y, or a map-style torch Dataset whose items are (features, target)",
    )
