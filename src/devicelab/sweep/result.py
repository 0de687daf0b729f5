"""What a sweep produced: per shape group, every model's losses, test metrics at log points and final
weights; one row per model; the best model as an ordinary ``RunResult`` (saved as a run folder that
``devicelab predict`` and ``devicelab train --resume`` accept)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from devicelab.data import Dataset
from devicelab.sweep.grid import Grid, ModelSpec
from devicelab.training.config import TrainConfig
from devicelab.training.evaluate import METRIC_NAMES


def metric_names(task: str, validation: bool) -> tuple[str, ...]:
    """The metrics each log point records per model: the test ones of ``devicelab train``, after the same
    ones on the validation rows when there are validation rows (``val_loss``, ``val_accuracy``, ...)."""
    test = METRIC_NAMES[task]
    return (*(f"val_{n.removeprefix('test_')}" for n in test), *test) if validation else test


def ranking_metric(task: str, names: tuple[str, ...]) -> str:
    """What models are ranked by: validation accuracy (classes) or loss (numbers) when there are
    validation rows, else the test one (nothing else to rank by)."""
    split = "val" if "val_loss" in names else "test"
    return f"{split}_accuracy" if task == "classification" else f"{split}_loss"


@dataclass(frozen=True)
class GroupResult:
    """The models of one hidden shape, trained together."""

    hidden: tuple[int, ...]
    specs: tuple[ModelSpec, ...]
    status: str  # "completed" | "interrupted"
    epochs_done: int
    losses: np.ndarray  # (models, epochs) float32, NaN for epochs not run
    log_epochs: tuple[int, ...]
    log_metrics: np.ndarray  # (log points, models, metrics)
    metric_names: tuple[str, ...]
    wall_s: float
    params: list[torch.Tensor]  # final weights, stacked (models, *shape), on the CPU
    first_buffers: list[torch.Tensor]  # SGD momentum / Adam exp_avg, stacked
    second_buffers: list[torch.Tensor]  # Adam exp_avg_sq, stacked
    steps: int
    cpu_rng: torch.Tensor
    shuffle_rng: torch.Tensor
    host_syncs: int
    layout: tuple[str, str] | None = None  # a user's module: (layout, why), vmap or one by one
    # a user's module: its buffers as trained (batch norm's running statistics), stacked (models, *shape)
    module_buffers: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepResult:
    config: TrainConfig  # the base options (split seed, data, optimizer, epochs)
    grid: Grid
    dataset: Dataset
    groups: tuple[GroupResult, ...]
    status: str  # "completed" | "interrupted"
    device: str
    threads: int
    layout: str  # "numba" | "bmm"
    layout_reason: str
    setup_s: float = 0.0  # compiling the numba kernel or loading it from the disk cache, not in wall_s

    @property
    def task(self) -> str:
        return self.dataset.task

    @property
    def metric(self) -> str:
        """The metric models are ranked by: on the validation rows when there are some, else the test one."""
        names = self.groups[0].metric_names if self.groups else ()
        return ranking_metric(self.task, names)

    @property
    def loss_metric(self) -> str:
        """The loss that breaks ties of accuracy: on the same rows as ``metric``."""
        return f"{self.metric.split('_')[0]}_loss"

    @property
    def wall_s(self) -> float:
        return sum(g.wall_s for g in self.groups)

    @property
    def model_epochs(self) -> int:
        return sum(len(g.specs) * g.epochs_done for g in self.groups)

    @property
    def us_per_model_epoch(self) -> float:
        return self.wall_s / self.model_epochs * 1e6 if self.model_epochs else float("nan")

    def losses(self) -> np.ndarray:
        """(models trained, epochs) float32, in model-index order; NaN for epochs not run."""
        return np.concatenate([g.losses for g in self.groups])

    def rows(self) -> list[dict]:
        """One row per trained model (results.csv)."""
        return [row for g in self.groups for row in _group_rows(g, self.task)]

    def ranked(self) -> list[dict]:
        """The rows, best first: highest validation accuracy (then lowest validation loss), or lowest
        validation loss (the test ones where there are no validation rows); diverged models last."""
        key, loss_key = self.metric, self.loss_metric
        sign = -1.0 if self.task == "classification" else 1.0

        def order(row: dict) -> tuple:
            value, loss = row[f"final_{key}"], row[f"final_{loss_key}"]
            bad = not (math.isfinite(value) and math.isfinite(loss))
            return (bad, sign * value if not bad else 0.0, loss if not bad else 0.0, row["model"])

        return sorted(self.rows(), key=order)

    def best_run(self):
        """The best model as the RunResult ``devicelab train`` would have made for it."""
        from devicelab.sweep.func_models import seeded_user_model
        from devicelab.training.device_choice import Candidate, DeviceChoice
        from devicelab.training.result import RunResult
        from devicelab.training.setup import build_model

        best = self.ranked()[0]
        group = next(g for g in self.groups if any(s.index == best["model"] for s in g.specs))
        i = [s.index for s in group.specs].index(best["model"])
        spec = group.specs[i]
        config = dataclasses.replace(
            self.config, hidden=spec.hidden, lr=spec.lr, init_seed=spec.seed, device=self.device,
            threads=self.threads, name=None,
        )  # fmt: skip
        source = config.extra.get("model")
        rows = torch.from_numpy(self.dataset.x_train[:2])  # a lazy layer's shapes, as trained
        model = seeded_user_model(source, spec.seed, rows) if source else build_model(config, self.dataset)
        with torch.no_grad():
            for p, stacked in zip(model.parameters(), group.params, strict=True):
                p.copy_(stacked[i])
            for name, stacked in group.module_buffers.items():  # running statistics as trained, not as built
                model.get_buffer(name).copy_(stacked[i])
        done = group.epochs_done
        metrics = tuple(
            {
                "epoch": epoch,
                "train_loss": float(group.losses[i, epoch - 1]),
                **{name: float(v) for name, v in zip(group.metric_names, values[i], strict=True)},
                "elapsed_s": group.wall_s * epoch / max(done, 1),
            }
            for epoch, values in zip(group.log_epochs, group.log_metrics, strict=True)
        )
        only = Candidate(self.device, self.threads, None)
        reason = f"trained in a sweep of {len(group.specs)} models ({self.layout_reason})"
        return RunResult(
            config=config, dataset=self.dataset, model=model, status=group.status, epochs_done=done,
            losses=group.losses[i, :done].copy(), metrics=metrics,
            choice=DeviceChoice(self.device, self.threads, reason, (only,)),
            wall_s=group.wall_s / len(group.specs), session_epochs=done, host_syncs=group.host_syncs,
            diverged_epoch=None, optimizer_state=_optimizer_state(config, model, group, i),
            rng_state={"cpu": group.cpu_rng, "shuffle": group.shuffle_rng},
            path=f"sweep-{self.layout}", path_reason=reason, baseline=self._baseline(model),
        )  # fmt: skip

    def _baseline(self, model) -> dict | None:
        """The linear baseline beside the best model, as every file run has it (training/baseline.py)."""
        if self.dataset.source.get("kind") == "builtin":
            return None
        from devicelab.training.baseline import run

        return run(self.dataset, model).to_dict()

    def save(self, runs_dir: str | Path | None = None, name: str | None = None) -> Path:
        from devicelab.sweep.folder import write_sweep

        return write_sweep(self, runs_dir or self.config.runs_dir, name or self.config.name)


def _group_rows(group: GroupResult, task: str) -> list[dict]:
    rows = []
    metric = ranking_metric(task, group.metric_names)
    # accuracy, else the loss (the validation rows', when there are some)
    ranked_by = group.metric_names.index(metric)
    loss_at = group.metric_names.index(f"{metric.split('_')[0]}_loss")
    for i, spec in enumerate(group.specs):
        history = group.losses[i, : group.epochs_done]
        bad = np.flatnonzero(~np.isfinite(history))
        final = (
            group.log_metrics[-1, i] if len(group.log_epochs) else np.full(len(group.metric_names), np.nan)
        )
        column = group.log_metrics[:, i, ranked_by] if len(group.log_epochs) else np.zeros(0)
        best = _best_index(column, group.log_metrics[:, i, loss_at], task) if column.size else None
        row = {
            "model": spec.index,
            "hidden": "-".join(map(str, spec.hidden)),
            "lr": spec.lr,
            "seed": spec.seed,
            "status": "diverged" if bad.size else group.status,
            "epochs": group.epochs_done,
            "diverged_epoch": int(bad[0]) + 1 if bad.size else "",
            "final_train_loss": float(history[-1]) if history.size and not bad.size else float("nan"),
            **{f"final_{name}": float(v) if not bad.size else float("nan")
               for name, v in zip(group.metric_names, final, strict=True)},
            "best_epoch": group.log_epochs[best] if best is not None and not bad.size else "",
            f"best_{group.metric_names[ranked_by]}": float(column[best]) if best is not None and not bad.size else float("nan"),
        }  # fmt: skip
        rows.append(row)
    return rows


def _best_index(column: np.ndarray, test_loss: np.ndarray, task: str) -> int | None:
    """The log point with the best ranking metric (accuracy: then the lower loss); None if none finite."""
    ok = np.isfinite(column) & np.isfinite(test_loss)
    if not ok.any():
        return None
    candidates = np.flatnonzero(ok)
    if task == "classification":
        return int(min(candidates, key=lambda j: (-column[j], test_loss[j])))
    return int(min(candidates, key=lambda j: column[j]))


def _optimizer_state(config: TrainConfig, model, group: GroupResult, i: int) -> dict:
    """Model ``i``'s optimizer state as ``torch.optim``'s ``state_dict()`` (what a run folder keeps for
    --resume); plain SGD keeps none, as in devicelab train."""
    from devicelab.training.setup import make_optimizer
    from devicelab.training.workload import uses_plain_sgd

    if uses_plain_sgd(config):
        return {"state": {}, "param_groups": []}
    optimizer = make_optimizer(config, model.parameters())
    if group.steps and not (config.optimizer == "sgd" and config.momentum == 0):
        for p, first, second in zip(
            model.parameters(), group.first_buffers, group.second_buffers, strict=True
        ):
            if config.optimizer == "sgd":
                optimizer.state[p] = {"momentum_buffer": first[i].clone()}
            else:
                optimizer.state[p] = {
                    "step": torch.tensor(float(group.steps)),
                    "exp_avg": first[i].clone(),
                    "exp_avg_sq": second[i].clone(),
                }
    return optimizer.state_dict()
