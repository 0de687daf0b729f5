"""Loading a data set into split, encoded arrays ready for the device.

The seed path is the lesson's exactly: ``train_test_split(test_size=0.2, random_state=42)`` on the raw
rows, a scaler fitted on the training rows only, float32 features and int64 class labels, and no
validation rows. A user's file gets the same split, stratified by class for a classification target
(``split.stratified_split``); its validation rows are then taken from the training rows the same way
(``DataSpec.validation_size``); every transform is fitted on the training rows (validation
rows included, as a scikit-learn pipeline fitted before its early-stopping split is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from devicelab.data.builtin import builtin_class_names, load_builtin
from devicelab.data.checks import check_trainable_target, class_warnings, extreme_warning
from devicelab.data.columns import ColumnRole, find_column, infer_role
from devicelab.data.describe import dropped_summary, target_role, with_encoding
from devicelab.data.read import NA_MARKERS, Frame, read_frame
from devicelab.data.sniff import delimiter_name
from devicelab.data.spec import DataSpec
from devicelab.data.split import check_split_size, split, split_ok, stratified_split
from devicelab.data.target import encode_target
from devicelab.data.target_scaling import TargetScaling
from devicelab.data.transforms import Preprocessor, Scaler
from devicelab.errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are made, so bad files fail fast
    import torch


@dataclass(frozen=True)
class Dataset:
    """A split, encoded data set as numpy arrays; ``tensors(device)`` makes the tensors.

    ``x_val``/``y_val``: validation rows taken from the training rows (for early stopping); empty (0 rows)
    for the built-in sets, whose training rows are the lesson's."""

    name: str
    task: str  # "classification" | "regression"
    feature_names: tuple[str, ...]  # the input columns the features come from
    target_name: str
    x_train: np.ndarray  # float32, encoded and scaled (a user's module: its dtype, training/user_inputs.py)
    x_test: np.ndarray
    y_train: np.ndarray  # int64 class ids, or float32 values
    y_test: np.ndarray
    classes: tuple | None  # original label of each class id; None for regression
    scaler: Scaler  # of the numeric columns (the first ones of the matrix)
    source: dict = field(default_factory=dict)  # where the rows came from (name, or path and sha256)
    # regression: the target is scaled on the training rows (y_* hold scaled values, see
    # TargetScaling: standard, robust or log), so one learning rate suits any target's units;
    # ``target_scaler.inverse_transform`` maps outputs back to the target's units. None: classes
    target_scaler: TargetScaling | None = None
    x_val: np.ndarray | None = None  # None: no validation rows (set to 0-row arrays on creation)
    y_val: np.ndarray | None = None
    roles: tuple[ColumnRole, ...] = ()
    preprocessor: Preprocessor | None = None
    warnings: tuple[str, ...] = ()  # what the user should know about the data (rare classes, extreme rows)

    def __post_init__(self) -> None:
        if self.x_val is None:
            object.__setattr__(self, "x_val", np.zeros((0, self.x_train.shape[1]), dtype=np.float32))
        if self.y_val is None:
            object.__setattr__(self, "y_val", np.zeros(0, dtype=self.y_train.dtype))

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    @property
    def encoded_names(self) -> tuple[str, ...]:
        """The name of each column of the feature matrix."""
        return tuple(self.preprocessor.names) if self.preprocessor else self.feature_names

    @property
    def embeddings(self) -> tuple[tuple[int, int], ...]:
        """``(slots, width)`` per trailing category-code column of the matrix (model embeddings)."""
        return self.preprocessor.embeddings if self.preprocessor else ()

    def tensors(
        self, device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_train, y_train, x_test, y_test)`` on ``device``: copied there once, kept there."""
        import torch

        return (
            torch.from_numpy(self.x_train).to(device),
            torch.from_numpy(self.y_train).to(device),
            torch.from_numpy(self.x_test).to(device),
            torch.from_numpy(self.y_test).to(device),
        )

    def val_tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_val, y_val)`` on ``device`` (0 rows when the data set has no validation split)."""
        import torch

        return torch.from_numpy(self.x_val).to(device), torch.from_numpy(self.y_val).to(device)


def load_dataset(spec: object) -> Dataset:
    """The data set ``spec`` names (a DataSpec, or a TrainConfig: its fields of the same names), split and
    encoded. Raises UserError on bad input."""
    spec = DataSpec.of(spec)
    if spec.data is not None:
        return load_file(spec)
    return load_builtin_dataset(spec)


def load_builtin_dataset(spec: DataSpec) -> Dataset:
    x, y, features, target_name, task = load_builtin(spec.dataset)
    target = encode_target(y, target_name, spec.task or task, where=f"built-in {spec.dataset!r}")
    names = builtin_class_names(spec.dataset) if target.classes is not None else None
    if names and target.classes == tuple(range(len(names))):  # the class ids' own names, not 0/1/2
        from dataclasses import replace

        target = replace(target, classes=names)
    roles = (
        *(ColumnRole(f, "numeric", "numbers", 0, "numeric") for f in features),
        target_role(target_name, target, spec.task or task),
    )
    columns = {f: ("numeric", x[:, i], "") for i, f in enumerate(features)}
    source = {"kind": "builtin", "name": spec.dataset}
    return _build(spec, spec.dataset, columns, features, target, target_name, roles, source)


def load_file(spec: DataSpec) -> Dataset:
    """A CSV or Parquet file: roles inferred (or set by --features/--ignore/--categorical), missing values
    imputed (or rows dropped with --dropna), rows without a target dropped and counted."""
    frame = read_frame(spec.data, target=spec.target, na_values=spec.na_values)
    require_two_columns(frame)
    target_name = find_column(frame, spec.target)
    for option, names in (
        ("--features", spec.features or ()),
        ("--ignore", spec.ignore),
        ("--categorical", spec.categorical),
        ("--numeric", spec.numeric),
    ):
        for name in names:
            find_column(frame, name, f"{option} column")
    both = sorted(set(spec.numeric) & set(spec.categorical))
    if both:
        raise UserError(
            f"{', '.join(both)} given both to --numeric and to --categorical", hint="give each column to one"
        )
    check_split_size(frame.table.num_rows, spec.test_size)  # one row: "too few", not "a single class"
    target = encode_target(
        frame.table.column(target_name), target_name, spec.task, where=str(frame.path),
        na_values=spec.na_values, decimal=frame.decimal,
    )  # fmt: skip
    roles, columns = infer_roles(frame, target_name, spec)
    features = tuple(columns)
    if not features:
        raise UserError(
            f"no feature column is left in {frame.path}: {dropped_summary(roles)}",
            hint="name the feature columns with --features A,B (or --categorical for text ones)",
        )
    keep = target.present.copy()
    n_read = frame.table.num_rows
    dropped_na = 0
    if spec.dropna:
        for name in features:
            keep &= ~_missing_mask(columns[name][1])
        dropped_na = int(np.count_nonzero(target.present & ~keep))
        if not keep.any():
            raise UserError(
                f"every row of {frame.path} has an empty or NaN cell", hint="nothing is left to train on"
            )
    roles = (*roles, target_role(target_name, target, spec.task))
    source = {
        **frame.describe(),
        "rows_read": n_read,
        "rows_dropped": n_read - int(np.count_nonzero(keep)),
        "rows_target_missing": target.n_missing,
        "rows_dropna": dropped_na,
        "na_values": list(spec.na_values),
    }
    kept = np.flatnonzero(keep)
    if not keep.all():
        columns = {name: (kind, values.take(kept), fmt) for name, (kind, values, fmt) in columns.items()}
        target = _subset_target(target, keep[target.present])
    return _build(spec, frame.path.stem, columns, features, target, target_name, roles, source, kept)


def infer_roles(frame: Frame, target: str, spec: DataSpec) -> tuple[tuple[ColumnRole, ...], dict]:
    """``(roles of the columns but the target, {feature: (kind, prepared values, date format)})`` in file
    order; kind is "numeric", "datetime" or "text" (categorical)."""
    roles, columns = [], {}
    na_values = (*NA_MARKERS, *spec.na_values)
    chosen = set(spec.features) if spec.features else None
    for position, name in enumerate(frame.columns):
        if name == target:
            continue
        if name in spec.ignore or (chosen is not None and name not in chosen):
            why = "--ignore" if name in spec.ignore else "not in --features"
            roles.append(ColumnRole(name, "dropped", why))
            continue
        role, values, fmt = infer_role(
            name, frame.table.column(name), first=position == 0, categorical=name in spec.categorical,
            decimal=frame.decimal, na_values=na_values, numeric=name in spec.numeric,
        )  # fmt: skip
        if (
            chosen is not None
            and role.role == "dropped"
            and values is None
            and "constant" not in role.detail
            and name not in spec.numeric
        ):
            # asked for by name: kept even if it looks like an ID or free text (as categories)
            role, values, fmt = infer_role(
                name,
                frame.table.column(name),
                first=False,
                categorical=True,
                decimal=frame.decimal,
                na_values=na_values,
            )
        roles.append(role)
        if values is not None:
            kind = "text" if role.role == "categorical" else role.kind  # numeric | datetime | text
            columns[name] = (kind, values, fmt)
    return tuple(roles), columns


def _missing_mask(values) -> np.ndarray:
    return values.is_null().to_numpy(zero_copy_only=False) | _nan_mask(values)


def _nan_mask(values) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(values.type):
        return pc.fill_null(pc.invert(pc.is_finite(values)), False).to_numpy(zero_copy_only=False)
    return np.zeros(len(values), dtype=bool)


def _subset_target(target, keep_of_present: np.ndarray):
    from dataclasses import replace

    return replace(
        target, values=target.values[keep_of_present], present=np.ones(int(keep_of_present.sum()), bool)
    )


def _build(spec: DataSpec, name, columns, features, target, target_name, roles, source, rows=None) -> Dataset:
    """Split the rows, fit the preprocessing on the training rows, encode every split. ``rows``: each
    row's data-row number in the file (0-based), for warnings."""
    n_rows = len(target.values)
    check_split_size(n_rows, spec.test_size)
    a_file = spec.data is not None
    y = target.values
    classes = y if target.task == "classification" and a_file else None
    train, test = _split(np.arange(n_rows), classes, spec.test_size, spec.seed)
    val = np.zeros(0, dtype=np.int64)
    val_size = spec.validation_size()
    fit_rows = train  # the transforms see every training row, the validation rows among them
    if val_size > 0 and split_ok(len(train), val_size):
        train, val = _split(train, classes, val_size, spec.seed)
    kinds = {feature: columns[feature][0] for feature in features}
    prepared = {feature: columns[feature][1] for feature in features}
    preprocessor = Preprocessor(list(features), kinds, spec.scaler, na_values=list(spec.na_values))
    for feature in features:
        kind, _, fmt = columns[feature]
        if kind == "datetime":
            preprocessor.dates.columns[feature] = {"format": fmt, "parts": []}
        elif kind == "numeric" and fmt:
            preprocessor.number_formats[feature] = fmt.to_dict()
    preprocessor.setup(prepared, np.sort(fit_rows))
    x_train, x_val, x_test = preprocessor.encode(prepared, [train, val, test])
    target_scaler = None
    warnings = []
    if target.task == "classification":
        y_train, y_val, y_test = (np.asarray(y[rows], dtype=np.int64) for rows in (train, val, test))
        if a_file:
            warnings += class_warnings(target, y, train, val, len(val) > 0)
            source = {**source, "classes_trained": [target.classes[i] for i in np.unique(y[train])]}
    else:
        asked = spec.target_transform if a_file or spec.target_transform != "auto" else "standard"
        target_scaler = TargetScaling.fit(asked, y[fit_rows])
        check_trainable_target(target_name, y, target_scaler.kind == "log", rows, source.get("path"))
        y_train, y_val, y_test = (target_scaler.transform(y[rows]) for rows in (train, val, test))
        warnings += extreme_warning(target_name, y, rows)
        roles = _with_target_scaling(roles, target_scaler)
    if len(val) == 0:
        x_val, y_val = None, None
    source = {**source, "rows_train": len(train), "rows_val": len(val), "rows_test": len(test)}
    return Dataset(
        name=name,
        task=target.task,
        feature_names=tuple(features),
        target_name=target_name,
        x_train=x_train,
        x_test=x_test,
        y_train=y_train,
        y_test=y_test,
        classes=target.classes,
        scaler=preprocessor.scaler,
        source=source,
        target_scaler=target_scaler,
        x_val=x_val,
        y_val=y_val,
        roles=tuple(with_encoding(roles, preprocessor)),
        preprocessor=preprocessor,
        warnings=tuple(warnings),
    )


def _split(rows: np.ndarray, labels: np.ndarray | None, size: float, seed: int):
    """The lesson's split, or stratified by class (files' classification targets)."""
    if labels is None:
        return split(rows, size, seed)
    return stratified_split(rows, labels[rows], size, seed)


def _with_target_scaling(roles, scaling: TargetScaling):
    from dataclasses import replace

    return tuple(
        replace(r, detail=f"{r.detail}; {scaling.describe()}") if r.role == "target" else r for r in roles
    )


def require_two_columns(frame: Frame) -> None:
    """Training needs feature columns and a target column."""
    if len(frame.columns) < 2:
        raise UserError(
            f"{frame.path} has a single column {frame.columns[0]!r}",
            hint="a file to train on needs feature columns and a target column, separated by , ; tab | or spaces"
            f" (read with delimiter {delimiter_name(frame.delimiter)})",
        )
