"""The rows of ``bench speed``: each trains the same workload (same data split, same initial weights, same
optimizer, lr and epochs) its own way, and says how long its training loop took.

A row is a ``RowSpec``: a name, a label, the modules it needs (a peer framework; "not installed" when an
import fails) and ``run(setting) -> Run``. The lesson's loop and devicelab's own rows are here; the peers
(PyTorch Lightning, skorch, JAX) are in ``devicelab.bench.peers``, imported only when their row runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from devicelab.data import Dataset
from devicelab.devices import synchronize
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag
from devicelab.training.setup import build_model

ImportModule = Callable[[str], ModuleType]


@dataclass(frozen=True)
class Size:
    """How much the workload is scaled: hidden widths × ``width``, training rows (the batch) × ``batch``."""

    width: int = 1
    batch: int = 1

    @property
    def label(self) -> str:
        return f"x{self.width}" if self.width == self.batch else f"w{self.width}xb{self.batch}"


@dataclass(frozen=True)
class Setting:
    """What one row trains, and where: the config and data already scaled to the size."""

    config: TrainConfig
    dataset: Dataset
    device: torch.device
    threads: int  # torch intra-op threads for this row
    epochs: int
    stop: StopFlag
    import_module: ImportModule = importlib.import_module

    def initial_model(self) -> torch.nn.Module:
        """The model every row starts from (on the CPU): devicelab's, seeded as ``devicelab train`` seeds it."""
        return build_model(self.config, self.dataset)


@dataclass(frozen=True)
class Run:
    """One run of one row."""

    seconds: float  # the training loop alone
    setup_s: float  # compile, capture or framework set-up before the first epoch (not in seconds)
    final_loss: float  # the training loss of the last epoch (computed before its update)
    path: str = ""  # what ran (devicelab: the runner's name)
    path_reason: str = ""


@dataclass(frozen=True)
class RowSpec:
    name: str
    label: str
    kind: str  # "lesson" | "devicelab" | "peer"
    run: Callable[[Setting], Run | None]  # None: stopped by the user before the end
    requires: tuple[tuple[str, str], ...] = ()  # (module, pip name) a peer needs
    same_init: bool = True  # starts from the torch init (else it cannot agree on the final loss)
    check: Callable[[Setting], str | None] = lambda setting: None  # why it cannot run this setting

    def missing(self, import_module: ImportModule) -> str | None:
        """'pip install X' for the first module that does not import, else None."""
        for module, package in self.requires:
            try:
                import_module(module)
            except ImportError:
                return f"pip install {package}"
        return None


def scaled(config: TrainConfig, dataset: Dataset, size: Size, epochs: int) -> tuple[TrainConfig, Dataset]:
    """The config with hidden widths × ``size.width`` and the data with training rows repeated
    ``size.batch`` times (the same repetition as ``build_workload(batch_factor=...)``)."""
    config = dataclasses.replace(config, hidden=tuple(h * size.width for h in config.hidden), epochs=epochs)
    if size.batch != 1:
        dataset = dataclasses.replace(
            dataset,
            x_train=np.tile(dataset.x_train, (size.batch, 1)),
            y_train=np.tile(dataset.y_train, size.batch),
        )
    return config, dataset


def run_lesson(setting: Setting) -> Run:
    """The lesson's loop (``devicelab.profile.loops.lesson_loop``): ``loss.item()`` every epoch and a
    ``torch.optim`` optimizer, on the model, data and optimizer ``devicelab train`` would build."""
    from devicelab.profile.loops import lesson_loop
    from devicelab.training.workload import build_workload

    torch.set_num_threads(setting.threads)
    work = build_workload(setting.config, setting.dataset, setting.device, n_epochs=1)
    optimizer = work.torch_optimizer()
    synchronize(setting.device)  # sync: the copies to the device are not the loop's time
    start = time.perf_counter()
    losses = lesson_loop(work.model, work.loss_fn, optimizer, work.x_train, work.y_train, setting.epochs)
    seconds = time.perf_counter() - start  # (the loop's last loss.item() has already waited for the device)
    return Run(seconds, 0.0, losses[-1], "lesson loop", "loss.item() every epoch, torch.optim")


def _run_devicelab(setting: Setting, fast: str) -> Run | None:
    from devicelab.training.loop import train

    config = dataclasses.replace(
        setting.config,
        fast=fast,
        device=str(setting.device),
        threads=setting.threads,
        quiet=True,
        early_stop=0,
    )  # (early_stop=0: every row trains every epoch, as the lesson's loop does)
    result = train(config, dataset=setting.dataset, stop=setting.stop)
    if result.status == "interrupted":
        return None
    # result.losses: read from the device at the log points, already on the host
    final = float(result.losses[-1]) if len(result.losses) else float("nan")
    return Run(result.wall_s, result.setup_s, final, result.path, result.path_reason)


def run_eager(setting: Setting) -> Run | None:
    return _run_devicelab(setting, "off")


def run_fast(setting: Setting) -> Run | None:
    # what `devicelab train` runs by default: the fast path where it applies and pays (a big model's step,
    # where BLAS on every core wins, runs eager: the row is never slower than eager by choice)
    return _run_devicelab(setting, "auto")


def _no_dropout(setting: Setting) -> str | None:
    if setting.config.dropout > 0:
        return "not comparable with dropout (each framework draws its own masks)"
    return None


def _peer(module: str, function: str) -> Callable[[Setting], Run | None]:
    """A peer's run function, imported when the row runs (its framework is imported there, too)."""

    def run(setting: Setting) -> Run | None:
        return getattr(importlib.import_module(f"devicelab.bench.peers.{module}"), function)(setting)

    return run


def _jax_check(setting: Setting) -> str | None:
    from devicelab.bench.peers.jax_loop import unsupported

    return unsupported(setting)


ROWS: tuple[RowSpec, ...] = (
    RowSpec("lesson", "the lesson's loop", "lesson", run_lesson),
    RowSpec("eager", "devicelab eager", "devicelab", run_eager),
    RowSpec("fast", "devicelab fast", "devicelab", run_fast),
    RowSpec(
        "lightning",
        "PyTorch Lightning Trainer",
        "peer",
        _peer("lightning_trainer", "run"),
        requires=(("lightning", "lightning"),),
        check=_no_dropout,
    ),
    RowSpec(
        "skorch",
        "skorch NeuralNet",
        "peer",
        _peer("skorch_net", "run"),
        requires=(("skorch", "skorch"),),
        check=_no_dropout,
    ),
    RowSpec(
        "jax-jit",
        "JAX jit step, Python loop",
        "peer",
        _peer("jax_loop", "run_jit_step"),
        requires=(("jax", "jax"),),
        check=_jax_check,
    ),
    RowSpec(
        "jax-scan",
        "JAX whole loop, lax.scan",
        "peer",
        _peer("jax_loop", "run_scan"),
        requires=(("jax", "jax"),),
        check=_jax_check,
    ),
)
# the lesson's loop again with torch's default thread count (the lesson's reality), on a CPU where
# devicelab's choice differs from it
LESSON_DEFAULT_THREADS = "lesson-default-threads"
ROW_NAMES = (*(r.name for r in ROWS), LESSON_DEFAULT_THREADS)
