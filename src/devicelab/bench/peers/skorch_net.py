"""The workload with skorch: ``NeuralNetClassifier`` (``NeuralNet`` for regression) over the same torch
module, from the same initial weights, full batch (``batch_size=-1``), ``max_epochs`` epochs, the same
torch optimizer, no validation split, silent. skorch builds its ``DataLoader`` over the numpy rows each
epoch and reads the loss every epoch: that is how skorch trains. The loop's time runs from the first
epoch's start to the end of training (a callback reads the clock); ``fit`` before that is its set-up.
"""

from __future__ import annotations

import copy
import time
import warnings

import torch

from devicelab.bench.speed_rows import Run, Setting
from devicelab.devices import synchronize
from devicelab.training.setup import make_loss

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def run(setting: Setting) -> Run:
    skorch = setting.import_module("skorch")
    callbacks = setting.import_module("skorch.callbacks")
    config, dataset, device = setting.config, setting.dataset, setting.device
    marks: dict[str, float] = {}

    class Clock(callbacks.Callback):
        def on_epoch_begin(self, net, **kwargs) -> None:
            marks.setdefault("loop", time.perf_counter())

        def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
            synchronize(device)  # sync: queued device work belongs to the loop's time
            marks["end"] = time.perf_counter()

    options = {"optimizer__weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        options["optimizer__momentum"] = config.momentum
    classification = dataset.task == "classification"
    net_class = skorch.NeuralNetClassifier if classification else skorch.NeuralNet
    net = net_class(
        module=copy.deepcopy(setting.initial_model()),
        criterion=type(make_loss(dataset.task)),
        optimizer=OPTIMIZERS[config.optimizer],
        lr=config.lr,
        max_epochs=setting.epochs,
        batch_size=-1,  # one batch of every training row
        train_split=None,
        device=str(device),
        verbose=0,
        callbacks=[("clock", Clock())],
        **options,
    )
    torch.set_num_threads(setting.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        net.fit(dataset.x_train, dataset.y_train)
    final = float(net.history[-1, "train_loss"])  # already a float: skorch read it at the epoch's end
    return Run(
        marks["end"] - marks["loop"],
        marks["loop"] - start,
        final,
        "NeuralNet.fit",
        f"skorch {skorch.__version__}, batch_size=-1",
    )
