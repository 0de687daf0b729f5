"""``devicelab.sweep.run_sweep(config, grid) -> SweepResult``: every model of the grid trained, the models
of one hidden shape together on one device, the shapes one after another.

Each model is the run ``devicelab train`` would make with the same options and ``--lr`` its learning
rate, initialised from its own seed (``TrainConfig.init_seed``) on the sweep's data split (``--seed``, the
same for all models: a sweep compares models, not splits). Between log points nothing is read from the
device; at each one, every model's losses since the last and its test metrics come back in one copy.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from devicelab.data import Dataset, load_dataset
from devicelab.errors import UserError
from devicelab.sweep import ranks, stack
from devicelab.sweep.func_models import seeded_user_model, user_models
from devicelab.sweep.grid import Grid, ModelSpec, check_size
from devicelab.sweep.layouts import choose_layout, make_models
from devicelab.sweep.result import GroupResult, SweepResult, metric_names, ranking_metric
from devicelab.threads import torch_threads
from devicelab.training import distributed
from devicelab.training.config import TrainConfig, validate
from devicelab.training.interrupt import StopFlag, stop_on_sigint
from devicelab.training.setup import build_model
from devicelab.training.units import scale_of, tensor_inverse

# Under torchrun the ranks meet once, when all have trained: the first waits for the last this long
GATHER_TIMEOUT_S = 24 * 3600
CHUNK_S = 0.05  # training time between two looks at the stop flag (Ctrl-C answers within this)


@dataclass(frozen=True)
class SweepPoint:
    """A log point of one group, for progress lines."""

    group: int  # 0-based
    n_groups: int
    hidden: tuple[int, ...]
    epoch: int
    total_epochs: int
    median_loss: float  # the group's median training loss (finite models)
    best_metric: float  # the group's best test metric so far
    metric: str
    elapsed_s: float
    eta_s: float


def run_sweep(
    config: TrainConfig,
    grid: Grid,
    *,
    layout: str = "auto",
    dataset: Dataset | None = None,
    on_log=None,
    stop: StopFlag | None = None,
) -> SweepResult:
    """Train every model of ``grid`` on ``config``'s data and options; ``on_log(SweepPoint)`` at log
    points. Ctrl-C stops within CHUNK_S, with a log point there, ``status == "interrupted"`` and what was
    done kept."""
    check_config(config, grid)
    config = dataclasses.replace(config, early_stop=0)  # every model trains every epoch (see check_config)
    dataset = dataset or load_dataset(config)
    device = ranks.device(config.device) or sweep_device(config.device)  # under torchrun: this rank's
    setup_started = time.perf_counter()
    if config.extra.get("model"):  # the user's module: torch.func, or one by one (decided per group)
        layout, layout_reason = "vmap", "the models together with torch.func (vmap over functional_call)"
    else:  # numba: compiles, or loads the disk cache; data with embedded categories trains with batched matmuls
        layout, layout_reason = choose_layout(layout, device, len(dataset.embeddings))
    setup_s = time.perf_counter() - setup_started
    threads = config.threads or (1 if device.type == "cpu" else torch.get_num_threads())
    groups: list[GroupResult | None] = []  # None: a shape with no model for this rank (under torchrun)
    status = "completed"
    with stop_on_sigint(stop) as flag, torch_threads(threads):
        for number, specs in enumerate(grid.groups()):
            if flag.requested:  # asked for as the last group ended: the next one is not started
                status = "interrupted"
                break
            mine = ranks.share(specs)  # under torchrun: this rank's models of the shape (alone: all)
            group = _train_group(
                config, dataset, device, layout, mine, number, len(grid.hiddens), flag, on_log
            ) if mine else None  # fmt: skip
            groups.append(group)
            if group and group.layout:  # the user's module: how its models trained
                layout, layout_reason = group.layout
            if group and group.status == "interrupted":
                status = "interrupted"
                break
    if distributed.launched():  # rank 0 gathers every rank's models; the others keep their own (unsaved)
        with distributed.session(device, timeout_s=GATHER_TIMEOUT_S):
            groups = ranks.gather_groups(groups) or groups
        if any(g and g.status == "interrupted" for g in groups):
            status = "interrupted"
    return SweepResult(
        config=config, grid=grid, dataset=dataset, groups=tuple(g for g in groups if g), status=status,
        device=str(device), threads=threads, layout=layout, layout_reason=layout_reason, setup_s=setup_s,
    )  # fmt: skip


def check_config(config: TrainConfig, grid: Grid) -> None:
    """A UserError for options a sweep cannot train (before any data is read or model built)."""
    validate(config)
    check_size(grid)
    if config.early_stop:
        raise UserError(
            f"--early-stop {config.early_stop}: a sweep trains every model for all --epochs and ranks them by "
            "their final test metric (each row also has its best epoch)",
            hint="leave --early-stop out; retrain the best model with early stopping if you want it",
        )
    if config.dropout > 0:
        raise UserError(
            f"--dropout {config.dropout}: a sweep trains without dropout (each single run draws its masks from "
            "the global RNG, which models trained together cannot share)",
            hint="leave --dropout out, or train dropout models one at a time with devicelab train",
        )


def sweep_device(spec: str) -> torch.device:
    if spec == "auto":  # many models at once are enough work for a GPU when there is one
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    from devicelab.devices import resolve_device

    return resolve_device(spec)


def _train_group(config, dataset, device, layout, specs: list[ModelSpec], number, n_groups, flag, on_log):
    hidden, total, task = specs[0].hidden, config.epochs, dataset.task
    source = config.extra.get("model")  # the user's own module (--model), built with each seed
    first_rows = torch.from_numpy(dataset.x_train[:2])  # a lazy layer's shapes, as train's probe gives them
    models = [
        seeded_user_model(source, s.seed, first_rows)
        if source
        else build_model(dataclasses.replace(config, hidden=hidden, init_seed=s.seed), dataset)
        for s in specs
    ]
    cpu_rng = torch.get_rng_state()  # as each single run's, after its model is built (no dropout draws)
    x_train, y_train, x_test, y_test = dataset.tensors(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)  # the mini-batch order: train seeds it with the split seed
    group_config = dataclasses.replace(config, hidden=hidden)
    try:
        if source:
            trained, used = user_models(models, [s.lr for s in specs], group_config, x_train, y_train, task,
                                        generator, total)  # fmt: skip
        else:
            trained, used = make_models(layout, models, [s.lr for s in specs], group_config, x_train, y_train,
                                        task, generator, total), None  # fmt: skip
        losses = np.full((len(specs), total), np.nan, dtype=np.float32)  # the host's copy
    except (RuntimeError, MemoryError) as error:  # torch.OutOfMemoryError is a RuntimeError
        raise UserError(
            f"{len(specs)} models × {total} epochs do not fit on {device}: {str(error)[:120]}",
            hint="sweep fewer seeds or epochs at a time",
        ) from None
    names = metric_names(task, len(dataset.x_val) > 0)
    x_val, y_val = dataset.val_tensors(device)
    codes = stack.n_codes(models[0])
    y_scale, inverse = scale_of(dataset.target_scaler), tensor_inverse(dataset.target_scaler)  # target units
    log_epochs: list[int] = []
    log_metrics: list[np.ndarray] = []
    status, epoch, last, chunk = "completed", 0, 0, 1
    started = time.perf_counter()
    while epoch < total:
        target = min(total, (epoch // config.log_every + 1) * config.log_every)
        count = min(chunk, target - epoch)
        began = time.perf_counter()
        trained.run(epoch, count)
        spent = time.perf_counter() - began
        epoch += count
        if count == chunk:  # aim the next chunk at CHUNK_S (on a GPU this times the launches: no sync)
            chunk = int(min(max(count * CHUNK_S / max(spent, 1e-6), 1), 2 * count, 1 << 16))
        if epoch < target and not flag.requested:
            continue  # not a log point: nothing is read from the device
        params = trained.params()
        outputs = trained.forward if source else None  # the user's module computes its own outputs
        test = stack.metrics(
            params, x_test, y_test, task, config.activation, y_scale, codes, inverse, outputs
        )
        if len(x_val):  # the validation metrics first (models are ranked by them), in the same copy
            val = stack.metrics(
                params, x_val, y_val, task, config.activation, y_scale, codes, inverse, outputs
            )
            test = torch.cat([val, test], dim=1)
        packed = torch.cat([trained.losses[:, last:epoch].reshape(-1), test.reshape(-1)])
        host = packed.cpu().numpy()  # sync: the one host read of this log point, for every model
        k = len(specs) * (epoch - last)
        losses[:, last:epoch] = host[:k].reshape(len(specs), epoch - last)
        log_epochs.append(epoch)
        log_metrics.append(host[k:].reshape(len(specs), len(names)))
        last = epoch
        elapsed = time.perf_counter() - started
        if on_log:
            on_log(_point(number, n_groups, hidden, epoch, total, losses[:, epoch - 1], log_metrics[-1], task,
                          names, elapsed))  # fmt: skip
        if flag.requested and epoch < total:
            status = "interrupted"
            break
    wall_s = time.perf_counter() - started
    buffers = trained.buffers()
    # sync: the trained weights to the host, once, after the group's last epoch (for the best model's run folder)
    on_cpu = lambda tensors: [t.detach().cpu() for t in tensors]  # noqa: E731
    empty = np.zeros((0, len(specs), len(names)))
    return GroupResult(
        hidden=hidden, specs=tuple(specs), status=status, epochs_done=last, losses=losses,
        log_epochs=tuple(log_epochs), log_metrics=np.stack(log_metrics) if log_metrics else empty,
        metric_names=names, wall_s=wall_s, params=on_cpu(trained.params()),
        first_buffers=on_cpu(buffers.first), second_buffers=on_cpu(buffers.second), steps=buffers.steps,
        cpu_rng=cpu_rng, shuffle_rng=generator.get_state(), host_syncs=len(log_epochs), layout=used,
        module_buffers={name: t.detach().cpu() for name, t in module_buffers(trained).items()} if source else {},
    )  # fmt: skip


def module_buffers(trained) -> dict[str, torch.Tensor]:
    """A user's models' buffers as they trained (batch norm's running statistics), stacked per model:
    one by one, each module updated its own; under vmap, the stacked buffers ``functional_call`` was
    given were updated in place (``devicelab.sweep.func_models``)."""
    models = getattr(trained, "models", None)
    if models is not None:  # LoopModels
        names = [name for name, _ in models[0].named_buffers()]
        return {name: torch.stack([m.get_buffer(name) for m in models]) for name in names}
    return dict(getattr(trained, "_buffers", {}))  # FuncModels: name -> (models, *shape)


def _point(number, n_groups, hidden, epoch, total, last_losses, metrics, task, names, elapsed) -> SweepPoint:
    finite = last_losses[np.isfinite(last_losses)]
    metric = ranking_metric(task, names)
    column = metrics[:, names.index(metric)]
    column = column[np.isfinite(column)]
    best = (column.max() if task == "classification" else column.min()) if column.size else float("nan")
    eta = elapsed / epoch * (total - epoch)
    return SweepPoint(
        number, n_groups, hidden, epoch, total, float(np.median(finite)) if finite.size else float("nan"),
        float(best), metric, elapsed, eta,
    )  # fmt: skip
