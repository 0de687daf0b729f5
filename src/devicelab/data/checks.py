"""What a user should know about the rows before training: classes too rare for the split, classes
without training rows, extreme target values. Each is one line (``Dataset.warnings``). A target value too far
from the others for float32 training is refused (``check_trainable_target``)."""

from __future__ import annotations

import numpy as np

from devicelab.data.split import rare_classes
from devicelab.data.target_scaling import extreme_rows
from devicelab.errors import UserError

# A regression target this many interquartile ranges (of its transformed values) from the median cannot be
# trained on in float32: the other rows' differences vanish beside it (float32 holds 24 bits), and from
# ~1e19 its squared error overflows; such a value is a typo or a code (1e15 among prices), not data.
TRAINABLE_SPREADS = float(2**24)


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


def check_trainable_target(name: str, y: np.ndarray, log: bool, rows: np.ndarray | None, path) -> None:
    """Refuse (one line naming the file and data rows) a regression target with values more than
    TRAINABLE_SPREADS interquartile ranges from its median, on the scale it is trained on (``log``: log1p's)."""
    f = np.log1p(y) if log else np.asarray(y, dtype=np.float64)
    q1, median, q3 = np.percentile(f, [25, 50, 75])
    spread = q3 - q1 or f.std() or 1.0
    far = np.flatnonzero(~(np.abs(f - median) <= TRAINABLE_SPREADS * spread))  # numpy: no sync
    if far.size == 0:
        return
    numbers = (rows[far] if rows is not None else far) + 1
    shown = ", ".join(f"{n} ({y[i]:g})" for n, i in zip(numbers[:5].tolist(), far[:5].tolist(), strict=True))
    more = f" and {far.size - 5} more" if far.size > 5 else ""
    raise UserError(
        f"target {name!r} in {path or 'the rows given'} has {far.size} value(s) too far from the others to train on (more than "
        f"{TRAINABLE_SPREADS:.3g} interquartile ranges from the median): data row(s) {shown}{more}",
        hint="fix or remove those rows, or name their cells in --na-values to take them as missing",
    )
