"""``devicelab.train(config) -> RunResult``: the lesson's training loop, without its hidden costs.

The loop below never waits for the device between log points: each epoch's loss goes into a
preallocated device tensor, and the host reads it (with the test metrics) only every ``log_every``
epochs, at the end, and when the user presses Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from devicelab.data import Dataset, load_dataset
from devicelab.errors import UserError, one_line
from devicelab.threads import torch_threads
from devicelab.training import cv, distributed, estimate
from devicelab.training.autosave import Autosave
from devicelab.training.baseline import run as run_baseline
from devicelab.training.callbacks import Callbacks, StartInfo
from devicelab.training.config import TrainConfig, early_stop_patience
from devicelab.training.device_choice import DeviceChoice, choose_device, cpu_kernel_applies
from devicelab.training.early_stop import EarlyStopping
from devicelab.training.guard import Fallback
from devicelab.training.interrupt import StopFlag, stop_on_sigint
from devicelab.training.rank_watch import watch_ranks
from devicelab.training.recorder import Recorder
from devicelab.training.result import RunResult
from devicelab.training.resume import Checkpoint
from devicelab.training.runner import FastRunner, select_runner
from devicelab.training.session import Keep
from devicelab.training.units import scale_of, tensor_inverse
from devicelab.training.user_check import check_user_model
from devicelab.training.user_model import UserModel, with_default_loss
from devicelab.training.workload import BuildWorkload, Workload, build_workload


def train(
    config: TrainConfig | None = None,
    *,
    dataset: Dataset | None = None,
    resume: Checkpoint | None = None,
    callbacks: Callbacks | None = None,
    stop: StopFlag | None = None,
    autosave: Autosave | None = None,
    keep: Keep | None = None,
    model: UserModel | None = None,
) -> RunResult:
    """Train as ``config`` says (default: the seed workload) and return the result. ``dataset``: already
    loaded from ``config`` (default: load it here). Ctrl-C stops at an epoch boundary with ``status ==
    "interrupted"``; a NaN or infinite loss stops with ``status == "diverged"`` and the last good weights.
    Raises UserError on bad input.

    Without ``keep`` nothing is written until ``result.save()``. ``keep=Keep()`` keeps the run as
    ``devicelab train`` does (``devicelab.training.session``): its folder made now, resumable checkpoints
    at log points, TensorBoard if asked, a progress bar, the whole folder at the end (``result.folder``).
    ``autosave``: the checkpoints alone, into a folder made by the caller (with ``keep``: made there)."""
    config = config or TrainConfig()
    if dataset is None:
        dataset = load_dataset(config)
        _say_roles(config, dataset)  # a file loaded here: its role table, as ``devicelab train`` prints it
    if keep is not None:
        from devicelab.training.session import keep_run

        def kept(callbacks_: Callbacks, flag: StopFlag, saving: Autosave | None) -> RunResult:
            return train(
                config, dataset=dataset, resume=resume, callbacks=callbacks_, stop=flag, autosave=saving,
                model=model,
            )  # fmt: skip

        return keep_run(config, kept, keep, callbacks, stop)
    if resume:
        resume.check_dataset(dataset)
    if model is None:
        build = partial(build_workload, config, dataset)
        return run_training(
            config,
            dataset,
            build,
            resume=resume,
            callbacks=callbacks,
            stop=stop,
            autosave=autosave,
            cross_validate=True,
        )
    dataset, shape = check_user_model(
        model.module, dataset, config.device, model.loss_fn, model.source.get("inputs")
    )  # one line when it does not fit
    model = with_default_loss(model, dataset, shape)

    def timed(device: torch.device, n_epochs: int, data: str = "auto") -> Workload:
        # device timing trains a copy of the user's module; the run trains the module itself
        return build_workload(config, dataset, device, n_epochs, data=data, user=model.copy())

    # in training mode (dropout on) whatever mode the module came in, as skorch and Lightning do; given back
    was_training, _ = model.module.training, model.module.train()
    try:
        return run_training(
            config,
            dataset,
            partial(build_workload, config, dataset, user=model),
            resume=resume,
            callbacks=callbacks,
            stop=stop,
            autosave=autosave,
            time_build=timed,
            one_thread_kernel=lambda c, d: cpu_kernel_applies(c, d, user=model.copy()),
        )
    finally:
        model.module.train(was_training)


def run_training(
    config: TrainConfig,
    dataset: Dataset,
    build: BuildWorkload,
    *,
    resume: Checkpoint | None = None,
    callbacks: Callbacks | None = None,
    stop: StopFlag | None = None,
    autosave: Autosave | None = None,
    fast_runner: FastRunner | None = None,
    cross_validate: bool = False,
    time_build: BuildWorkload | None = None,
    one_thread_kernel: Callable[[TrainConfig, Dataset], bool] | None = None,
) -> RunResult:
    """The run itself, for any model: ``build(device, n_epochs, data=...)`` makes the workload (its model,
    loss, optimizer and data on ``device``; ``functools.partial(build_workload, config, dataset)`` for
    devicelab's MLP), on the device chosen here (timed with the same builder) or resumed.
    ``fast_runner``: how the fast path is built (default: the device's own; tests inject failing ones).
    ``time_build``: the builder device timing uses (default ``build``; ``train(model=)`` times copies of
    the user's module), ``one_thread_kernel``: whether the CPU runs it in the one-thread fused kernel.

    ``cross_validate``: small data chooses its epochs by k folds first (devicelab's MLP on a file's rows)."""
    callbacks = callbacks or Callbacks()
    with stop_on_sigint(stop) as flag:
        if distributed.launched():  # under torchrun: every rank alike, no timing
            choice = distributed.device_choice(config)
        else:
            choice = (
                resume.device_choice(config)
                if resume
                else choose_device(
                    config, dataset, build=time_build or build, one_thread_kernel=one_thread_kernel
                )
            )
        with torch_threads(choice.threads):
            if distributed.launched():
                return _run_rank(
                    config, dataset, build, choice, resume, callbacks, flag, autosave, fast_runner
                )
            folds = None
            if (
                cross_validate
                and cv.reason_not(config, dataset, resumed=resume is not None, distributed=False) is None
            ):
                # small data: k folds choose the epochs, then one refit on every training row (training/cv.py)
                folds = cv.cross_validate(config, dataset, flag)
                config, dataset = cv.refit(config, folds)
                build = partial(build_workload, config, dataset)
            result = _run(config, dataset, build, choice, resume, callbacks, flag, autosave, fast_runner)
            return dataclasses.replace(result, cross_validation=folds.to_dict()) if folds else result


def _say_roles(config: TrainConfig, dataset: Dataset) -> None:
    """What was done to a file's columns, said before training (by one process of a torchrun job)."""
    if config.quiet or dataset.source.get("kind") == "builtin" or not distributed.is_main():
        return
    from devicelab.data import file_report

    print(file_report(dataset), flush=True)


def _run_rank(
    config, dataset, build, choice: DeviceChoice, resume, callbacks, flag, autosave, fast
) -> RunResult:
    """This rank's part of a torchrun job, inside its process group. A collective that fails because
    another rank died ends the run with one line saying where the last checkpoint is (rank 0 writes it)."""
    folder = lambda: autosave.folder if autosave and autosave.written else None  # noqa: E731
    # under NCCL a thread watches the other ranks (a dead one blocks the GPU, and this thread with it)
    with distributed.session(choice.device), watch_ranks(torch.device(choice.device).type, folder):
        try:
            return _run(config, dataset, build, choice, resume, callbacks, flag, autosave, fast)
        except (RuntimeError, torch.distributed.DistError) as error:
            if not distributed.is_rank_failure(error):
                raise
            raise distributed.rank_stopped(error, folder()) from None


def _run(
    config, dataset, build, choice: DeviceChoice, resume, callbacks: Callbacks, flag: StopFlag, autosave, fast
) -> RunResult:
    total = config.epochs
    # rows too large for the device's free memory are streamed from host memory (training/stream.py)
    work = build(torch.device(choice.device), total, data="auto")
    start = resume.restore(work) if resume else 0
    ddp = distributed.launched()
    if ddp:  # after the restore: DDP starts every rank from rank 0's (restored) weights
        work = distributed.ddp_workload(work)
    runner, path_reason = select_runner(work, config, fast_runner=fast)
    runner.load_module()  # a resumed run's weights and optimizer state, into the runner
    check, setup_s = runner.self_check, runner.setup_s
    previous = resume.losses if resume else np.zeros(0, dtype=np.float32)
    y_scale = scale_of(dataset.target_scaler)  # metrics in the target's units (training/units.py)
    inverse = tensor_inverse(dataset.target_scaler)
    # under DDP a log point's losses and metrics are reduced across the ranks (one all_reduce)
    to_host = distributed.LogReduce(flag) if ddp else None
    wall_before = resume.wall_s if resume else 0.0
    if autosave:  # the folder's first files, before the clock starts and anything is said
        autosave.start(config, dataset, work.model, str(resume.run_dir) if resume else None)
    recorder = Recorder(work, dataset.task, start, total, previous, wall_before, y_scale, to_host, inverse)
    rows = (len(dataset.x_train), len(dataset.x_test), len(dataset.x_val))
    callbacks.on_start(
        StartInfo(choice.device, choice.threads, choice.reason, start, total, *rows, runner.name, path_reason)
    )
    patience = early_stop_patience(config)
    early = EarlyStopping(patience) if patience and len(dataset.x_val) else None
    if early and resume and resume.early_stopping:  # a resumed run compares with the same best point
        early.load(resume.early_stopping, resume.extra, work.device)
    status, epoch, log_every = "completed", start, config.log_every
    # under DDP a stop is agreed on at log points (LogReduce), so that every rank stops at the same epoch
    should_stop = _never if ddp else lambda: flag.requested
    started = time.perf_counter()
    fallback = Fallback(work, runner) if runner.name != "eager" else None
    while epoch < total:
        next_log = min(total, (epoch // log_every + 1) * log_every)
        if fallback:
            fallback.mark()  # a fast path: the state of this log point, to go on from if it fails
        try:
            reached, point = _interval(runner, recorder, epoch, next_log, should_stop)
        except Exception as error:
            if fallback is None or fallback.reason:
                raise
            try:
                runner = fallback.recover(error, epoch, next_log)
                callbacks.on_fallback(fallback.reason)  # said once; kept in the summary
                reached, point = _interval(runner, recorder, epoch, next_log, should_stop)
            except Exception as again:  # the device itself is broken (a sticky CUDA error): stop, say where
                reason = fallback.reason or f"the {runner.name} path failed ({one_line(error)})"
                raise _device_failed(work, reason, again, autosave) from None
        epoch = reached
        if point is None:
            status = "diverged"
            break
        callbacks.on_log(point)
        if early and early.update(point.metrics["val_loss"], epoch, work.model) and epoch < total:
            status = "early_stopped"
            break
        if flag.requested and epoch < total:  # a stop asked for after the last epoch: the run is complete
            status = "interrupted"
            break
        if autosave and epoch < total and autosave.due():
            _checkpoint(autosave, config, choice, work, recorder, resume, epoch, early)
    wall_s = time.perf_counter() - started
    extra = early.tensors() if early else {}
    if early and status in ("completed", "early_stopped"):
        # the last epoch's weights stay in the state file, so that the run can still be continued exactly
        extra |= {f"resume/{k}": v.detach().clone() for k, v in work.model.state_dict().items()}
        early.restore_best(work.model)  # the best validation point's weights, as Keras' restore_best_weights
    done = recorder.last
    # a linear model beside every file run, on the same rows and features (devicelab.training.baseline)
    # (a file's rows: not a built-in set, nor fit()'s arrays, which may have no test rows or be images)
    wanted = dataset.source.get("kind") not in ("builtin", "arrays") and len(dataset.x_test) > 0
    wanted = wanted and dataset.x_test.ndim == 2 and distributed.is_main()  # rank 0 alone reports it
    baseline = run_baseline(dataset, getattr(work.model, "module", work.model)) if wanted else None
    # the kept weights' metric on the validation rows, with its bootstrap spread (training/estimate.py)
    validation = None
    if estimate.wanted(dataset) and distributed.is_main() and status != "diverged":
        kept = (
            early.best_epoch if early and early.best_epoch is not None and status != "interrupted" else done
        )
        validation = estimate.estimate(dataset, getattr(work.model, "module", work.model), kept).to_dict()
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
        path=runner.name,
        path_reason=path_reason,
        setup_s=setup_s,
        self_check=check.to_dict() if check else None,
        fallback=fallback.reason if fallback else "",
        early_stopping=early.to_dict() if early else None,
        extra_state=extra,
        checkpoints=autosave.to_dict() if autosave else None,
        data_mode=work.data_mode,
        data_reason=work.data_reason,
        world_size=distributed.rank_world()[1],
        baseline=baseline.to_dict() if baseline else None,
        validation=validation,
    )


def _interval(runner, recorder: Recorder, start: int, stop: int, should_stop):
    """Train ``start..stop-1`` and read the log point: (the epoch reached, the point or None if the loss
    diverged). Nothing is read from the device until the log point (or a stop asked for)."""
    reached = runner.run(start, stop, should_stop)
    runner.sync_module()  # the weights and optimizer state, back into the module for the log point
    return reached, recorder.read(reached)


def _device_failed(work, reason: str, error: Exception, autosave) -> UserError:
    saved = autosave.folder if autosave and autosave.written else None
    again = f"continue from the last checkpoint: devicelab train --resume {saved}" if saved else None
    return UserError(
        f"training on {work.device} failed: {reason}, and the eager step failed too ({one_line(error)})",
        hint=again or "train again (with --fast off to leave the fast path out)",
    )


def _never() -> bool:
    return False


def _checkpoint(autosave, config, choice, work, recorder, resume, epoch: int, early) -> None:
    """A resumable checkpoint of this log point (the runner has put the weights back into the module)."""
    autosave.save(
        extra=early.tensors() if early else {},
        model=work.model,
        optimizer_state=work.optimizer_state(),
        rng_state=_rng_state(work),
        losses=recorder.losses[:epoch],
        metrics=[*(resume.metrics if resume else ()), *recorder.rows],
        summary={
            "status": "running",
            "resumable": True,
            "epochs_done": epoch,
            "epochs_total": config.epochs,
            "device": choice.device,
            "threads": choice.threads,
            "total_wall_s": recorder.rows[-1]["elapsed_s"],  # this run's and the runs it resumed
            "early_stopping": early.to_dict() if early else None,
        },
    )


def _rng_state(work) -> dict[str, torch.Tensor]:
    """Everything random that the next epoch would draw from: dropout and the mini-batch shuffle."""
    state = {"cpu": torch.get_rng_state(), "shuffle": work.generator.get_state()}
    if work.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(work.device)
    return state
