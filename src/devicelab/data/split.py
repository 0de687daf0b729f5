"""Splitting rows into training and test (or validation) rows, as scikit-learn draws them.

``split`` is ``train_test_split(rows, test_size, random_state=seed)`` exactly (the lesson's split);
``stratified_split`` is ``train_test_split(..., stratify=labels)`` exactly when every class has two rows
or more. A class with a single row stays in the training rows (the model sees it; nothing tests it).
"""

from __future__ import annotations

import math

import numpy as np

from devicelab.errors import UserError


def split(rows: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` exactly as scikit-learn's ``train_test_split(rows, test_size=test_size,
    random_state=seed)`` draws them (one permutation of a ``RandomState(seed)``), without importing it."""
    n_test = math.ceil(test_size * len(rows))
    permutation = np.random.RandomState(seed).permutation(len(rows))
    return rows[permutation[n_test:]], rows[permutation[:n_test]]


def stratified_split(
    rows: np.ndarray, labels: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` with each class in both in proportion: scikit-learn's StratifiedShuffleSplit
    (``train_test_split(rows, stratify=labels, random_state=seed)``) when every class has 2+ rows; rows of
    a class with one row go to ``train``, the rest is drawn the same way."""
    n_test = math.ceil(test_size * len(rows))
    _, ids, counts = np.unique(labels, return_inverse=True, return_counts=True)
    single = counts[ids] < 2
    lone, rows, ids = rows[single], rows[~single], ids[~single]
    if len(rows) == 0:
        return np.concatenate([lone, rows]), rows
    _, ids, counts = np.unique(ids, return_inverse=True, return_counts=True)
    n_test = min(n_test, len(rows) - 1)
    n_train = len(rows) - n_test
    class_rows = np.split(np.argsort(ids, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(counts)):
        drawn = class_rows[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(drawn[: n_i[i]])
        test.extend(drawn[n_i[i] : n_i[i] + t_i[i]])
    train = rows[rng.permutation(np.asarray(train, dtype=np.int64))]
    test = rows[rng.permutation(np.asarray(test, dtype=np.int64))]
    return np.concatenate([train, lone]), test


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``_approximate_mode``: rows per class in a draw of ``n_draws``, ties broken by ``rng``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def rare_classes(labels: np.ndarray, classes: tuple, need: int) -> list[str]:
    """``'label' (n rows)`` of the classes with fewer than ``need`` rows."""
    counts = np.bincount(labels, minlength=len(classes))
    return [
        f"{classes[i]!r} ({counts[i]} row{'s' if counts[i] != 1 else ''})"
        for i in np.flatnonzero(counts < need)
    ]


def check_split_size(n_rows: int, test_size: float) -> None:
    """A UserError when ``n_rows`` cannot give at least 2 training rows and 1 test row."""
    if split_ok(n_rows, test_size):
        return
    needed = next(n for n in range(3, 10_000) if split_ok(n, test_size))
    raise UserError(
        f"{n_rows} rows are too few for --test-size {test_size}: the split needs at least {needed} "
        "(2 to train on, 1 to test)",
        hint="add rows, or change --test-size",
    )


def split_ok(n_rows: int, test_size: float) -> bool:
    n_test = math.ceil(test_size * n_rows)  # how train_test_split rounds a fractional test size
    return n_test >= 1 and n_rows - n_test >= 2
