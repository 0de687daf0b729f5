"""The one builder of a training workload: everything one run holds on its device (data, model, loss,
optimizer, the loss buffer, the step and the epoch function).

``devicelab train``, ``profile``, ``bench``, the fast paths and the device timing all build what they run
here, so what is profiled, benchmarked or timed is what ``devicelab train`` would run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.errors import UserError
from devicelab.fast.match import linear_macs
from devicelab.training.config import TrainConfig
from devicelab.training.epoch import make_epoch
from devicelab.training.setup import build_model, make_loss, make_optimizer
from devicelab.training.step import Step, make_plain_sgd_step, make_step
from devicelab.training.stream import choose_data_mode, host_rows, make_stream_epoch
from devicelab.training.user_model import UserModel

# The kinds of eager step devicelab builds, keyed as ``Workload.kind``.
STEP_KINDS = {
    "optim": "torch.optim step (devicelab.training.step.make_step)",
    "plain_sgd": "plain SGD step: autograd.grad + one foreach update (devicelab.training.step.make_plain_sgd_step)",
}


@dataclass(frozen=True)
class Workload:
    """What one run holds on its device; ``optimizer_state()`` is what a run folder saves for --resume."""

    config: TrainConfig  # as built (with any width scaling applied)
    device: torch.device
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer | None  # None for plain SGD, whose step needs no optimizer object
    kind: str  # a key of STEP_KINDS
    step: Step  # step(x, y, losses, i): one update, its loss into losses[i]; no host sync
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor  # validation rows taken from the training rows (0 rows: none)
    y_val: torch.Tensor
    losses: torch.Tensor  # one float32 slot per epoch, on the device
    generator: torch.Generator  # the mini-batch shuffle, on the device
    run_epoch: Callable[[int], None]  # epoch(i): trains one epoch, its loss into losses[i]
    data_mode: str = "device"  # "device": rows copied there once; "streamed": from host memory (stream.py)
    data_reason: str = ""
    eager_only: str = ""  # why no fast path may take this workload ("DDP: ...", streamed rows); "": none

    def optimizer_state(self) -> dict:
        return self.optimizer.state_dict() if self.optimizer else {"state": {}, "param_groups": []}

    @property
    def x(self) -> torch.Tensor:
        """One step's inputs: the full training set, or the first mini-batch."""
        return self.x_train[: self.config.batch_size] if self.config.batch_size else self.x_train

    @property
    def y(self) -> torch.Tensor:
        return self.y_train[: self.config.batch_size] if self.config.batch_size else self.y_train

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def torch_optimizer(self) -> torch.optim.Optimizer:
        """The ``torch.optim`` optimizer for this config (the plain-SGD step has none: a fresh one over
        the same parameters, for loops written the lesson's way)."""
        return self.optimizer or make_optimizer(self.config, self.model.parameters())

    def first_rows(self, rows: int) -> Workload:
        """The same workload trained on its first ``rows`` training rows only, on the same data path
        (on the device, or streamed): the device timing's cut of an epoch of many mini-batches."""
        if rows >= self.x_train.shape[0]:
            return self
        x, y, batch = self.x_train[:rows], self.y_train[:rows], self.config.batch_size
        if self.data_mode == "streamed":
            epoch = make_stream_epoch(self.step, x, y, self.losses, batch, self.generator, self.device)
        else:
            epoch = make_epoch(self.step, x, y, self.losses, batch, self.generator)
        return dataclasses.replace(self, x_train=x, y_train=y, run_epoch=epoch)

    def repeated_step(self) -> Callable[[int], None]:
        """``step(i)``: one update on ``(x, y)``, its loss into the buffer, cycling over its slots."""
        # one batch on the device (streamed rows live in host memory: this batch is copied once)
        step, x, y, losses = self.step, self.x.to(self.device), self.y.to(self.device), self.losses
        n = losses.numel()
        return lambda i: step(x, y, losses, i % n)


# build(device, n_epochs, data=...) -> Workload: what a run trains, made on a device (the run, the device
# timing and the probes all call it); functools.partial(build_workload, config, dataset) for devicelab's MLP
BuildWorkload = Callable[..., "Workload"]

STREAMED_EAGER = "eager step: the rows are streamed from host memory (the fast paths need them on the device)"


def too_many_epochs(n_epochs: int, where: str) -> UserError:
    """The error for a loss history (4 bytes an epoch) that does not fit in memory."""
    return UserError(
        f"--epochs {n_epochs} needs {n_epochs * 4 / 1e9:.1f} GB for the loss history on {where}, "
        "more than there is",
        hint="train fewer epochs at a time and continue with --resume RUN --epochs N",
    )


def uses_plain_sgd(config: TrainConfig) -> bool:
    return config.optimizer == "sgd" and config.momentum == 0 and config.weight_decay == 0


def build_workload(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    n_epochs: int | None = None,
    *,
    batch_factor: int = 1,
    width_factor: int = 1,
    data: str = "device",
    user: UserModel | None = None,
) -> Workload:
    """devicelab's MLP initialised from ``config.seed`` (as the lesson's), or the user's module as given
    (``user``: moved to ``device``, trained in place), assembled with the data by ``assemble_workload``.
    ``width_factor`` multiplies the hidden widths of devicelab's MLP (the regime probe's scaled copies)."""
    if width_factor != 1:
        config = dataclasses.replace(config, hidden=tuple(h * width_factor for h in config.hidden))
    if user is None:
        model, loss_fn, optimizer = build_model(config, dataset).to(device), make_loss(dataset.task), None
    else:  # (nn.Module.to keeps the Parameter objects, so an optimizer over them still holds them)
        model, loss_fn, optimizer = (
            user.module.to(device),
            user.loss_fn or make_loss(dataset.task),
            user.optimizer,
        )
    return assemble_workload(
        config, dataset, device, model, loss_fn, optimizer, n_epochs, batch_factor=batch_factor, data=data
    )


def assemble_workload(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    n_epochs: int | None = None,
    *,
    batch_factor: int = 1,
    data: str = "device",
) -> Workload:
    """Any model, loss and optimizer (None: the config's) with the data copied to ``device`` once and a
    loss buffer of ``n_epochs`` slots (default ``config.epochs``). ``batch_factor`` repeats the training
    rows (the regime probe). ``data``: "device", "auto" (training rows too large for the device's free
    memory are streamed from host memory) or "stream" (always streamed; see ``devicelab.training.stream``)."""
    n_epochs = config.epochs if n_epochs is None else n_epochs
    if optimizer is not None:
        kind, step = "optim", make_step(model, loss_fn, optimizer)
    elif uses_plain_sgd(config):
        kind, step = "plain_sgd", make_plain_sgd_step(model, loss_fn, config.lr)
    else:  # (creating a torch.optim optimizer the first time also imports torch._dynamo: ~1 s)
        optimizer = make_optimizer(config, model.parameters())
        kind, step = "optim", make_step(model, loss_fn, optimizer)
    train_bytes = dataset.x_train.nbytes + dataset.y_train.nbytes
    mode = choose_data_mode(train_bytes, device, config.batch_size, data)
    x_train, y_train, x_test, y_test = (
        host_rows(dataset, device) if mode.streamed else dataset.tensors(device)
    )
    x_val, y_val = dataset.val_tensors(device)
    if batch_factor != 1:
        x_train = x_train.repeat(batch_factor, *([1] * (x_train.dim() - 1)))
        y_train = y_train.repeat(batch_factor, *([1] * (y_train.dim() - 1)))
    try:
        losses = torch.zeros(n_epochs, device=device)
    except (RuntimeError, MemoryError):  # torch.OutOfMemoryError is a RuntimeError
        raise too_many_epochs(n_epochs, str(device)) from None
    generator = torch.Generator(device=x_train.device)  # the shuffle is drawn where the rows are
    generator.manual_seed(config.seed)
    if mode.streamed:
        run_epoch = make_stream_epoch(step, x_train, y_train, losses, config.batch_size, generator, device)
    else:
        run_epoch = make_epoch(step, x_train, y_train, losses, config.batch_size, generator)
    return Workload(
        config, device, model, loss_fn, optimizer, kind, step,
        x_train, y_train, x_test, y_test, x_val, y_val, losses, generator, run_epoch,
        mode.mode, mode.reason, STREAMED_EAGER if mode.streamed else "",
    )  # fmt: skip


def forward_macs(model: nn.Module, batch: int) -> int:
    """Forward multiply-accumulates of an MLP step: batch × the weights of every Linear layer."""
    return batch * linear_macs(model)
