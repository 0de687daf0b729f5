"""What a user should know about the rows before training: classes too rare for the split, classes
without training rows, extreme target values. Each is one line (``Dataset.warnings``)."""

from __future__ import annotations

import numpy as np

from devicelab.data.split import rare_classes
from devicelab.data.target_scaling import extreme_rows


def class_warnings(target, y: np.ndarray, train, val, has_val: bool) -> list[str]:
    """One line for the classes too rare to be in every split, one for classes the model never sees."""
    warnings = []
    need = 3 if has_val else 2  # a row for each of train, (validation,) test
    rare = rare_classes(y, target.classes, need)
    if rare:
        warnings.append(
            f"{len(rare)} class(es) have fewer rows than the train/{'validation/' if has_val else ''}test "
            f"split needs ({need}): {', '.join(rare[:8])}{', ...' if len(rare) > 8 else ''}; they are kept in "
            "the training rows and the test metric says little about them"
        )
    unseen = sorted(set(range(len(target.classes))) - set(np.unique(y[train]).tolist()))  # numpy: no sync
    if unseen:
        names = ", ".join(repr(target.classes[i]) for i in unseen[:8])
        warnings.append(f"class(es) {names} have no training row: the model cannot predict them")
    return warnings


def extreme_warning(name: str, y: np.ndarray, rows: np.ndarray | None) -> list[str]:
    extreme = extreme_rows(y)
    if extreme.size == 0:
        return []
    numbers = (rows[extreme] if rows is not None else extreme) + 1
    shown = ", ".join(
        f"{n} ({y[i]:g})" for n, i in zip(numbers[:5].tolist(), extreme[:5].tolist(), strict=True)
    )
    more = f" and {extreme.size - 5} more" if extreme.size > 5 else ""
    return [
        f"target {name!r} has {extreme.size} extreme value(s), in data row(s) {shown}{more}; check them "
        "(--target-transform chooses how they are scaled)"
    ]
