"""The four ways of recording the loss that ``bench logging`` compares, as small loops.

Each runs ``epochs`` full-batch steps of a fresh workload (``devicelab.training.workload``) and records the loss every ``every`` epochs
(``None``: never). All return the same thing, the recorded losses with their epochs, so their results can
be checked against each other and against a plain PyTorch loop:

- ``item``: the lesson's ``losses.append(loss.item())``: one sync per record.
- ``tensor``: ``losses.append(loss)`` without ``detach()``: no sync, but every record keeps its step's
  autograd graph alive (the mistake PyTorch's FAQ warns about); read once at the end.
- ``detach``: ``losses.append(loss.detach())``: no sync, no graph; read once at the end.
- ``buffer``: devicelab's own step (the workload's, as ``devicelab train`` builds it) writes every epoch's loss into a
  preallocated device buffer; the host reads the new part of it at each record point (one sync each).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from devicelab.bench.eta import Marks
from devicelab.bench.syncs import SyncCounter
from devicelab.training.workload import Workload


@dataclass(frozen=True)
class Recorded:
    epochs: list[int]  # the epochs (1-based) whose loss was recorded
    values: list[float]
    kept: object  # what the loop keeps alive until the caller drops it (measured as memory)


def _lesson_step(p: Workload, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """The lesson's step, written its way (``torch.optim``, ``zero_grad``, ``backward``, ``step``)."""
    loss = p.loss_fn(p.model(p.x), p.y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def _due(epoch: int, every: int | None) -> bool:
    return every is not None and epoch % every == 0


def run_item(p: Workload, epochs: int, every: int | None, reads: SyncCounter, marks: Marks) -> Recorded:
    at, losses, optimizer = [], [], p.torch_optimizer()
    for epoch in range(1, epochs + 1):
        loss = _lesson_step(p, optimizer)
        if _due(epoch, every):
            at.append(epoch)
            losses.append(reads.item(loss))  # sync: the lesson's loss.item(), once per record
        marks.tick(epoch)
    return Recorded(at, losses, losses)


def _read_at_end(tensors: list[torch.Tensor], reads: SyncCounter) -> list[float]:
    if not tensors:
        return []
    with torch.no_grad():
        stacked = torch.stack([t.detach() for t in tensors])
    return reads.tolist(stacked)  # sync: one read of every record, after the loop


def run_tensor(p: Workload, epochs: int, every: int | None, reads: SyncCounter, marks: Marks) -> Recorded:
    at, losses, optimizer = [], [], p.torch_optimizer()
    for epoch in range(1, epochs + 1):
        loss = _lesson_step(p, optimizer)
        if _due(epoch, every):
            at.append(epoch)
            losses.append(loss)  # keeps this step's graph alive: the mistake being measured
        marks.tick(epoch)
    return Recorded(at, _read_at_end(losses, reads), losses)


def run_detach(p: Workload, epochs: int, every: int | None, reads: SyncCounter, marks: Marks) -> Recorded:
    at, losses, optimizer = [], [], p.torch_optimizer()
    for epoch in range(1, epochs + 1):
        loss = _lesson_step(p, optimizer)
        if _due(epoch, every):
            at.append(epoch)
            losses.append(loss.detach())  # a device tensor without its graph: no sync
        marks.tick(epoch)
    return Recorded(at, _read_at_end(losses, reads), losses)


def run_buffer(p: Workload, epochs: int, every: int | None, reads: SyncCounter, marks: Marks) -> Recorded:
    buffer = p.losses[:epochs]  # the workload's own loss buffer, as devicelab train's
    values: list[float] = []
    for epoch in range(1, epochs + 1):
        p.step(p.x, p.y, buffer, epoch - 1)  # the step devicelab train runs for this config
        if _due(epoch, every):
            values += reads.tolist(buffer[len(values) : epoch])  # sync: one read per record point
        marks.tick(epoch)
    if len(values) < epochs:
        values += reads.tolist(buffer[len(values) :])  # sync: the rest, once after the loop
    return Recorded(list(range(1, epochs + 1)), values, buffer)


Strategy = Callable[[Workload, int, "int | None", SyncCounter, Marks], Recorded]

STRATEGIES: dict[str, Strategy] = {
    "item": run_item,
    "tensor": run_tensor,
    "detach": run_detach,
    "buffer": run_buffer,
}
