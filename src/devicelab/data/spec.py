"""What to load: the data options of a run, independent of how training is configured.

``DataSpec.of(config)`` reads the fields of the same names from any object (a ``TrainConfig``, a parsed
argparse namespace), so the data layer needs nothing from the training layer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEFAULT_VAL_SIZE = 0.15  # of the training rows, for user files; built-in sets get none (the lesson's split)


@dataclass(frozen=True)
class DataSpec:
    dataset: str = "iris"  # a built-in toy set; ignored when `data` is given
    data: str | None = None  # a CSV or Parquet file
    target: str | None = None
    task: str | None = None  # "classification" | "regression"; inferred when None
    test_size: float = 0.2
    val_size: float | None = None  # None: DEFAULT_VAL_SIZE for files, 0 for built-in sets
    seed: int = 42
    scaler: str = "minmax"  # "minmax" | "standard" | "none"
    dropna: bool = False
    features: tuple[str, ...] | None = None  # only these columns are features (--features)
    ignore: tuple[str, ...] = ()  # never features (--ignore)
    categorical: tuple[str, ...] = ()  # categorical whatever their values look like (--categorical)
    numeric: tuple[str, ...] = ()  # numbers whatever their values look like (--numeric)
    target_transform: str = "auto"  # regression: "auto" | "none" | "standard" | "robust" | "log"
    na_values: tuple[str, ...] = ()  # cells that mean "missing", also in the target (--na-values)

    @classmethod
    def of(cls, options: object) -> DataSpec:
        """The spec of ``options`` (a DataSpec, a TrainConfig, a namespace): same-named attributes, the
        defaults for those it lacks; lists become tuples."""
        if isinstance(options, DataSpec):
            return options
        values = {}
        for f in fields(cls):
            if hasattr(options, f.name):
                value = getattr(options, f.name)
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def validation_size(self) -> float:
        if self.val_size is not None:
            return self.val_size
        return DEFAULT_VAL_SIZE if self.data is not None else 0.0
