"""Everything that defines a training run. The defaults are the lesson's seed workload."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from devicelab.errors import UserError


@dataclass
class TrainConfig:
    """A training run, checked when built (a UserError names every bad value). ``TrainConfig()`` is the seed workload: Iris, 80/20 split with seed 42, MinMax
    scaling fitted on the training rows, MLP 4-10-3 with ReLU, cross-entropy, SGD lr 0.01, full batch,
    20000 epochs, a log line every 100 epochs."""

    # data
    dataset: str = "iris"  # a built-in toy set; ignored when `data` (a CSV path) is given
    data: str | None = None
    target: str | None = None
    task: str | None = None  # "classification" | "regression"; inferred when None
    test_size: float = 0.2
    seed: int = 42
    init_seed: int | None = None  # the model's initialisation seed; None: `seed` (split and init)
    scaler: str = "minmax"  # "minmax" | "standard" | "none"
    dropna: bool = False
    features: tuple[str, ...] | None = None  # only these columns are features; None: inferred roles
    ignore: tuple[str, ...] = ()  # columns that are never features
    categorical: tuple[str, ...] = ()  # columns taken as categories whatever their values look like
    numeric: tuple[str, ...] = ()  # columns taken as numbers whatever their values look like
    target_transform: str = "auto"  # regression target scaling: auto | none | standard | robust | log
    na_values: tuple[str, ...] = ()  # extra cells that mean "missing" (in a target: the only ones besides "")
    val_size: float | None = None  # of the training rows; None: 0.15 for a file, none for built-in sets
    early_stop: int | None = (
        None  # patience; None: on for a file (EARLY_STOP_PATIENCE), off for built-ins; 0: off
    )
    # model
    hidden: tuple[int, ...] = (10,)
    activation: str = "relu"
    dropout: float = 0.0
    # optimisation
    optimizer: str = "sgd"  # "sgd" | "adam" | "adamw"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 20000
    batch_size: int | None = None  # None: full batch
    # running
    device: str = "auto"
    fast: str = "auto"  # "auto" | "on" | "off": the fast path (devicelab.fast) where it applies
    threads: int | None = None  # CPU intra-op threads; None: decided by devicelab
    log_every: int = 100
    runs_dir: str = "runs"
    name: str | None = None
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)  # validated once, where it is built: every TrainConfig is a valid one

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs.setdefault("target_transform", "standard")  # runs saved before the option: standardised
        if "hidden" in kwargs:
            kwargs["hidden"] = tuple(int(h) for h in kwargs["hidden"])
        for key in ("features", "ignore", "categorical", "numeric", "na_values"):  # JSON lists back to tuples
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(str(v) for v in kwargs[key])
        return cls(**kwargs)


def validate(config: TrainConfig) -> None:
    """Gather every problem with the numbers of a config into one UserError (named by CLI option)."""
    problems = []
    if not (config.lr > 0 and math.isfinite(config.lr)):
        problems.append(f"--lr must be positive and finite, got {config.lr}")
    if config.epochs <= 0:
        problems.append(f"--epochs must be positive, got {config.epochs}")
    if not 0 < config.test_size < 1:
        problems.append(f"--test-size must be between 0 and 1, got {config.test_size}")
    if config.val_size is not None and not 0 <= config.val_size < 1:
        problems.append(f"--val-size must be at least 0 and below 1, got {config.val_size}")
    if config.target_transform not in ("auto", "none", "standard", "robust", "log"):
        problems.append(
            f"--target-transform must be auto, none, standard, robust or log, got {config.target_transform!r}"
        )
    if config.early_stop is not None and config.early_stop < 0:
        problems.append(f"--early-stop patience must be 0 (off) or positive, got {config.early_stop}")
    if config.batch_size is not None and config.batch_size <= 0:
        problems.append(f"--batch-size must be positive, got {config.batch_size}")
    if not 0 <= config.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {config.dropout}")
    if not all(0 <= v < math.inf for v in (config.momentum, config.weight_decay)):  # also rejects NaN
        problems.append("--momentum and --weight-decay must be finite and not negative")
    if not 0 <= config.seed < 2**32:  # the range scikit-learn's split and torch.manual_seed both take
        problems.append(f"--seed must be between 0 and {2**32 - 1}, got {config.seed}")
    if config.init_seed is not None and not 0 <= config.init_seed < 2**32:
        problems.append(f"the init seed must be between 0 and {2**32 - 1}, got {config.init_seed}")
    if config.fast not in ("auto", "on", "off"):
        problems.append(f"--fast must be auto, on or off, got {config.fast!r}")
    if config.threads is not None and config.threads <= 0:
        problems.append(f"--threads must be positive, got {config.threads}")
    if config.log_every <= 0:
        problems.append(f"--log-every must be positive, got {config.log_every}")
    if config.data is not None and not config.target:
        problems.append("--data needs --target COLUMN (the column to predict)")
    if config.data is None and config.target:
        problems.append(
            f"--target {config.target} needs --data FILE.csv (the built-in sets have their own target)"
        )
    if problems:
        raise UserError("; ".join(problems))


EARLY_STOP_PATIENCE = 10  # log points without a better validation loss before training stops


def early_stop_patience(config: TrainConfig) -> int:
    """The early-stopping patience of a run; 0: off (the default for built-in sets: the lesson's loop)."""
    if config.early_stop is not None:
        return config.early_stop
    return EARLY_STOP_PATIENCE if config.data is not None else 0
