"""A sweep under torchrun: the grid split across the ranks (each rank trains its share of every shape
group together, on its own device), and rank 0 gathering the groups into the one-process sweep's rows.

Models train independently of the others in their group, so a model's losses do not depend on which rank
trained it; ``merge_groups`` puts the shares back in model-index order.
"""

from __future__ import annotations

import numpy as np
import torch

from devicelab.sweep.grid import ModelSpec
from devicelab.sweep.result import GroupResult
from devicelab.training import distributed


def share(specs: list[ModelSpec]) -> list[ModelSpec]:
    """This rank's models of a group (every world-th one; all of them outside torchrun)."""
    return distributed.split(specs)


def device(spec: str) -> torch.device | None:
    """Under torchrun: this rank's device (``cuda:LOCAL_RANK`` when CUDA is here and ``spec`` is not cpu);
    None outside torchrun (the sweep decides as usual)."""
    if not distributed.launched():
        return None
    use_cuda = spec != "cpu" and torch.cuda.is_available()
    return torch.device("cuda", distributed.local_rank()) if use_cuda else torch.device("cpu")


def gather_groups(groups: list[GroupResult | None]) -> list[GroupResult] | None:
    """Every rank's groups, merged per shape, on rank 0 (None on the other ranks); ``groups`` itself
    (without the empty shares) outside torchrun. A group may be missing on a rank that was stopped."""
    parts = distributed.gather_objects(groups)
    if parts is None:
        return None
    merged = []
    for k in range(max(len(p) for p in parts)):
        found = [p[k] for p in parts if k < len(p) and p[k] is not None]
        if found:
            merged.append(merge_groups(found))
    return merged


def merge_groups(parts: list[GroupResult]) -> GroupResult:
    """One group from the ranks' shares of it, in model-index order; a stop that came at different log
    points on different ranks keeps the log points all of them reached."""
    if len(parts) == 1:
        return parts[0]
    specs = [s for p in parts for s in p.specs]
    order = np.argsort([s.index for s in specs], kind="stable")
    done = min(p.epochs_done for p in parts)
    common = [e for e in parts[0].log_epochs if all(e in p.log_epochs for p in parts)]
    losses = np.concatenate([p.losses for p in parts])[order]
    losses[:, done:] = np.nan
    log_metrics = np.concatenate(
        [p.log_metrics[[p.log_epochs.index(e) for e in common]] for p in parts], axis=1
    )[:, order]
    index = torch.from_numpy(order)
    last = max(parts, key=lambda p: max(s.index for s in p.specs))  # RNG state after the last model's build

    def stacked(lists: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        return [torch.cat(tensors)[index] for tensors in zip(*lists, strict=True)]

    return GroupResult(
        hidden=parts[0].hidden,
        specs=tuple(specs[i] for i in order),
        status="completed" if all(p.status == "completed" for p in parts) else "interrupted",
        epochs_done=done,
        losses=losses,
        log_epochs=tuple(common),
        log_metrics=log_metrics,
        metric_names=parts[0].metric_names,
        wall_s=max(p.wall_s for p in parts),  # the ranks train at the same time
        params=stacked([p.params for p in parts]),
        first_buffers=stacked([p.first_buffers for p in parts]),
        second_buffers=stacked([p.second_buffers for p in parts]),
        steps=min(p.steps for p in parts),
        cpu_rng=last.cpu_rng,
        shuffle_rng=last.shuffle_rng,
        host_syncs=max(p.host_syncs for p in parts),
        layout=parts[0].layout,
        module_buffers={
            name: torch.cat([p.module_buffers[name] for p in parts])[index]
            for name in parts[0].module_buffers
        },
    )
