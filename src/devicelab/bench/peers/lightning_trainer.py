"""The workload as a PyTorch Lightning ``LightningModule`` trained by ``Trainer.fit``: full batch (one
pre-built batch, already on the device, per epoch), ``max_epochs`` epochs, the same torch optimizer, from
the same initial weights. Logger, checkpoints, progress bar and model summary are off: this times
Lightning's loop, not its extras. The loop's time runs from the first epoch's start to the end of
training (a callback reads the clock); everything ``fit`` does before that is its set-up.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings

import torch

from devicelab.bench.speed_rows import Run, Setting
from devicelab.devices import synchronize
from devicelab.training.setup import make_loss, make_optimizer

LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def run(setting: Setting) -> Run:
    L = setting.import_module("lightning")
    config, device = setting.config, setting.device
    model = copy.deepcopy(setting.initial_model()).to(device)
    loss_fn = make_loss(setting.dataset.task)
    x, y, _, _ = setting.dataset.tensors(device)

    class SeedModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.last_loss = torch.zeros((), device=device)

        def training_step(self, batch, batch_idx):
            inputs, targets = batch
            loss = loss_fn(self.model(inputs), targets)
            self.last_loss = loss.detach()  # kept on the device; read once, after fit
            return loss

        def configure_optimizers(self):
            return make_optimizer(config, self.model.parameters())

    marks: dict[str, float] = {}

    class Clock(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            marks.setdefault("loop", time.perf_counter())

        def on_train_end(self, trainer, pl_module) -> None:
            synchronize(device)  # sync: queued device work belongs to the loop's time
            marks["end"] = time.perf_counter()

    accelerator = "cpu" if device.type == "cpu" else "gpu"
    devices = 1 if device.type == "cpu" else [device.index or 0]
    module = SeedModule()
    torch.set_num_threads(setting.threads)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # "GPU available: ...", "`Trainer.fit` stopped ..." and the like
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "does not have many workers", "small batch": the point here
            start = time.perf_counter()
            trainer = L.Trainer(
                max_epochs=setting.epochs,
                accelerator=accelerator,
                devices=devices,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                callbacks=[Clock()],
            )
            trainer.fit(module, train_dataloaders=_OneBatch(x, y))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    final = float(module.last_loss)  # sync: one read, after the clock
    return Run(
        marks["end"] - marks["loop"],
        marks["loop"] - start,
        final,
        "Trainer.fit",
        f"lightning {L.__version__}, one pre-built batch per epoch",
    )


class _OneBatch:
    """An iterable of one pre-built batch (Lightning takes any iterable as a loader)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.batch = (x, y)

    def __iter__(self):
        yield self.batch

    def __len__(self) -> int:
        return 1
