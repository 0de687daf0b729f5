"""``devicelab.train(config) -> RunResult``: the lesson's training loop, without its hidden costs.

The loop below never waits for the device between log points: each epoch's loss goes into a
preallocated device tensor, and the host reads it (with the test metrics) only every ``log_every``
epochs, at the end, and when the user presses Ctrl-C.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from devicelab.data import Dataset, load_dataset
from devicelab.training.callbacks import Callbacks, StartInfo
from devicelab.training.config import TrainConfig, validate
from devicelab.training.device_choice import DeviceChoice, choose_device
from devicelab.training.interrupt import StopFlag, stop_on_sigint
from devicelab.training.recorder import Recorder
from devicelab.training.result import RunResult
from devicelab.training.resume import Checkpoint
from devicelab.training.workload import build_workload


def train(
    config: TrainConfig | None = None,
    *,
    dataset: Dataset | None = None,
    resume: Checkpoint | None = None,
    callbacks: Callbacks | None = None,
    stop: StopFlag | None = None,
) -> RunResult:
    """Train as ``config`` says (default: the seed workload) and return the result; nothing is written
    until ``result.save()``. ``dataset``: already loaded from ``config`` (default: load it here). Ctrl-C stops at an epoch boundary with ``status == "interrupted"``; a NaN or
    infinite loss stops with ``status == "diverged"`` and the last good weights. Raises UserError on bad
    input."""
    config = config or TrainConfig()
    validate(config)
    dataset = dataset or load_dataset(config)
    if resume:
        resume.check_dataset(dataset)
    callbacks = callbacks or Callbacks()
    threads_before = torch.get_num_threads()
    with stop_on_sigint(stop) as flag:
        try:
            choice = resume.device_choice(config) if resume else choose_device(config, dataset)
            torch.set_num_threads(choice.threads)
            return _run(config, dataset, choice, resume, callbacks, flag)
        finally:
            torch.set_num_threads(threads_before)


def _run(config, dataset, choice: DeviceChoice, resume, callbacks: Callbacks, flag: StopFlag) -> RunResult:
    total = config.epochs
    work = build_workload(config, dataset, torch.device(choice.device), total)
    start = resume.restore(work) if resume else 0
    previous = resume.losses if resume else np.zeros(0, dtype=np.float32)
    y_scale = float(dataset.target_scaler.scale[0]) if dataset.target_scaler else 1.0
    recorder = Recorder(work, dataset.task, start, total, previous, resume.wall_s if resume else 0.0, y_scale)
    callbacks.on_start(
        StartInfo(
            choice.device,
            choice.threads,
            choice.reason,
            start,
            total,
            len(dataset.x_train),
            len(dataset.x_test),
        )
    )
    status, epoch, log_every = "completed", start, config.log_every
    started = time.perf_counter()
    while epoch < total:
        work.run_epoch(epoch)
        epoch += 1
        if epoch % log_every and epoch != total and not flag.requested:
            continue  # not a log point: nothing is read from the device
        point = recorder.read(epoch)
        if point is None:
            status = "diverged"
            break
        callbacks.on_log(point)
        if flag.requested and epoch < total:  # a stop asked for after the last epoch: the run is complete
            status = "interrupted"
            break
    wall_s = time.perf_counter() - started
    done = recorder.last
    return RunResult(
        config=config,
        dataset=dataset,
        model=work.model,
        status=status,
        epochs_done=done,
        losses=recorder.losses[:done].copy(),
        metrics=(*(resume.metrics if resume else ()), *recorder.rows),
        choice=choice,
        wall_s=wall_s,
        session_epochs=epoch - start,
        host_syncs=recorder.host_syncs,
        diverged_epoch=recorder.diverged_epoch,
        optimizer_state=work.optimizer_state(),
        rng_state=_rng_state(work),
        resumed_from=str(resume.run_dir) if resume else None,
        previous_wall_s=resume.wall_s if resume else 0.0,
    )


def _rng_state(work) -> dict[str, torch.Tensor]:
    """Everything random that the next epoch would draw from: dropout and the mini-batch shuffle."""
    state = {"cpu": torch.get_rng_state(), "shuffle": work.generator.get_state()}
    if work.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(work.device)
    return state
