"""Training on several processes with torchrun: DistributedDataParallel, Gloo on CPUs, NCCL on GPUs.

Everything distributed is set up here, from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), as torchtitan and nanoGPT do: ``ddp_rank()``, ``is_main()``. Rank 0 alone
prints and writes; every rank trains.

Exactness: every rank draws the same seeded permutation and takes its contiguous slice of every
mini-batch (or of the rows, full batch), and scales its mean loss by ``n_rank * world / n``. DDP averages
the ranks' gradients, so the update is the gradient of the whole batch's mean loss, and the sum of the
ranks' scaled losses over ``world`` is the whole batch's loss: the loss history is one process's, to
float rounding. Between log points the only collective is DDP's gradient all-reduce; a log point adds one
all-reduce of its packed losses and metrics (``LogReduce``), which also carries a stop request, so that
every rank stops at the same epoch.

For other commands (a sweep split across ranks): ``rank_world()``, ``split(items)``, ``setup(device)``
and ``gather_objects(obj)``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import Candidate, DeviceChoice
from devicelab.training.interrupt import StopFlag
from devicelab.training.launch import launched, note_joined
from devicelab.training.step import Step, make_step
from devicelab.training.workload import Workload

TIMEOUT_ENV, DEFAULT_TIMEOUT_S = "DEVICELAB_DIST_TIMEOUT", 300
DDP_EAGER = "DDP: eager step (a fast path would bypass DistributedDataParallel's gradient all-reduce)"


def ddp_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0 (or a process not under torchrun): the one that prints and writes."""
    return ddp_rank() == 0


def rank_world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` outside torchrun."""
    return (ddp_rank(), world_size()) if launched() else (0, 1)


def split(items: Sequence, rank: int | None = None, world: int | None = None) -> list:
    """This rank's share of ``items``: every ``world``-th one from index ``rank`` (all of them alone)."""
    here, size = rank_world()
    return list(items[(here if rank is None else rank) :: size if world is None else world])


def shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous rows ``[lo, hi)`` of ``n``: sizes differ by at most one."""
    return n * rank // world, n * (rank + 1) // world


def device_choice(config: TrainConfig) -> DeviceChoice:
    """The device of this rank: no timing (every rank must train alike and a timing would differ from
    rank to rank): ``cuda:LOCAL_RANK`` when CUDA is here (and not ``--device cpu``), else the CPU, with one
    thread unless ``--threads`` (the ranks share the machine's cores)."""
    rank, world = rank_world()
    asked = config.device
    if asked not in ("auto", "cpu") and not asked.startswith("cuda"):
        raise UserError(
            f"--device {asked} under torchrun: devicelab trains across processes on cpu (Gloo) or cuda (NCCL)",
            hint="use --device cpu or --device cuda",
        )
    use_cuda = asked != "cpu" and torch.cuda.is_available()
    if asked.startswith("cuda") and not use_cuda:
        from devicelab.devices import why_unavailable

        raise UserError(
            f"--device {asked} is not available: {why_unavailable('cuda')}", hint="or use --device cpu"
        )
    if use_cuda:
        # every rank checks the machine's process count (not its own index), so rank 0 says it too
        count, here = torch.cuda.device_count(), int(os.environ.get("LOCAL_WORLD_SIZE", local_rank() + 1))
        if here > count:
            raise UserError(
                f"{here} processes on this machine, one GPU each, but it has {count}",
                hint=f"start at most {count} processes per machine (--nproc-per-node {count}), or --device cpu",
            )
        device, threads = f"cuda:{local_rank()}", config.threads or torch.get_num_threads()
    else:
        device, threads = "cpu", config.threads or 1
    only = Candidate(device, threads, None)
    why = f"rank {rank} of {world} under torchrun, {'NCCL' if use_cuda else 'Gloo'}; not timed"
    return DeviceChoice(device, threads, f"{only.label}: {why}", (only,))


def setup(device: torch.device | str, timeout_s: float | None = None) -> None:
    """Join the process group torchrun's environment describes (once per process): NCCL for a CUDA
    device, Gloo otherwise. ``timeout_s`` (default: ``DEVICELAB_DIST_TIMEOUT``, else 300): how long a
    collective waits for a rank before it fails (a rank that dies is seen at once: torchrun stops the job)."""
    if dist.is_initialized():
        return
    device = torch.device(device)
    timeout = timedelta(seconds=timeout_s or float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=timeout, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    note_joined()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: torch.device | str, timeout_s: float | None = None) -> Iterator[None]:
    """The process group for one run, left when it ends (also on an error)."""
    setup(device, timeout_s)
    try:
        yield
    except BaseException:
        teardown()
        raise
    # every rank leaves together: a rank that tore its Gloo group down while another still used it could
    # abort at exit ("terminate called without an active exception")
    dist.barrier()
    teardown()


def gather_objects(obj: object) -> list | None:
    """Every rank's ``obj`` (picklable), in rank order, on rank 0; None on the other ranks. Outside
    torchrun: ``[obj]``."""
    if not dist.is_initialized():
        return [obj]
    rank, world = dist.get_rank(), dist.get_world_size()
    found = [None] * world if rank == 0 else None
    dist.gather_object(obj, found, dst=0)
    return found


class ScaledLoss(nn.Module):
    """``loss_fn(out, y) * scale``: a rank's share of the whole batch's mean loss (see the module doc);
    the scale is set before each step (a Python float: nothing is read from the device)."""

    def __init__(self, loss_fn: nn.Module) -> None:
        super().__init__()
        self.loss_fn, self.scale = loss_fn, 1.0

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out, y) * self.scale


def ddp_workload(work: Workload) -> Workload:
    """``work`` trained by this rank under DDP: the same module (saved and evaluated as it is), wrapped
    for the step, a ``torch.optim`` optimizer (DDP's hooks run in ``backward()``, which the plain-SGD
    step's ``autograd.grad`` skips: same arithmetic), and this rank's share of every batch."""
    if work.data_mode == "streamed":
        raise UserError(
            "streaming the rows from host memory is not available under torchrun yet",
            hint="use more processes (each holds the rows on its device), or train in one process",
        )
    rank, world = rank_world()
    ids = [work.device.index] if work.device.type == "cuda" else None
    model = nn.parallel.DistributedDataParallel(work.model, device_ids=ids)  # broadcasts rank 0's weights
    loss = ScaledLoss(work.loss_fn)
    optimizer = work.torch_optimizer()
    step = make_step(model, loss, optimizer)
    run_epoch = make_ddp_epoch(
        step,
        loss,
        work.x_train,
        work.y_train,
        work.losses,
        work.config.batch_size,
        work.generator,
        rank,
        world,
    )
    return replace(
        work, optimizer=optimizer, kind="optim", step=step, run_epoch=run_epoch, eager_only=DDP_EAGER
    )


def make_ddp_epoch(
    step: Step,
    loss: ScaledLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    losses: torch.Tensor,
    batch_size: int | None,
    generator: torch.Generator,
    rank: int,
    world: int,
) -> Callable[[int], None]:
    """``epoch(i)``: this rank's part of epoch ``i`` of ``devicelab.training.epoch.make_epoch``; its
    scaled loss into ``losses[i]`` (``LogReduce`` sums the ranks' losses into the epoch's loss)."""
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        _check_split(n, world, "the training rows")
        lo, hi = shard(n, rank, world)
        xs, ys, scale = x[lo:hi], y[lo:hi], (hi - lo) * world / n  # equal shards: exactly 1.0

        def full_batch(i: int) -> None:
            loss.scale = scale
            step(xs, ys, losses, i)

        return full_batch

    starts = range(0, n, batch_size)
    sizes = [min(batch_size, n - s) for s in starts]
    _check_split(min(sizes), world, f"the last mini-batch of {n} rows in batches of {batch_size}")
    parts = [(s + lo, s + hi, (hi - lo) * world / b) for s, b in zip(starts, sizes, strict=True)
             for lo, hi in [shard(b, rank, world)]]  # fmt: skip
    batch_losses = torch.zeros(len(starts), device=x.device)
    weights = torch.tensor([b / n for b in sizes], device=x.device)  # as make_epoch's

    def mini_batches(i: int) -> None:
        order = torch.randperm(n, device=x.device, generator=generator)  # the same on every rank
        for j, (a, b, scale) in enumerate(parts):
            rows = order[a:b]
            loss.scale = scale
            step(x.index_select(0, rows), y.index_select(0, rows), batch_losses, j)
        losses[i] = torch.dot(batch_losses, weights)  # stays on the device

    return mini_batches


def _check_split(rows: int, world: int, what: str) -> None:
    if rows < world:
        raise UserError(
            f"{what} ({rows}) cannot be split across {world} processes: each needs at least one row",
            hint="use fewer processes, or a --batch-size that leaves a last batch of at least that many rows",
        )


class LogReduce:
    """A log point's one collective: the packed losses and metrics summed over the ranks and divided by
    the world size (losses: the epoch's loss, see the module doc; metrics, alike on every rank: their
    value), plus whether any rank was asked to stop, so that every rank stops at the same log point."""

    def __init__(self, flag: StopFlag) -> None:
        self.flag = flag
        self.world = dist.get_world_size()

    def __call__(self, packed: torch.Tensor) -> np.ndarray:
        asked = torch.tensor([float(self.flag.requested)], device=packed.device)  # a host-to-device copy
        both = torch.cat([packed.float(), asked])
        dist.all_reduce(both)  # SUM over the ranks
        host = (both / self.world).cpu().numpy()  # sync: the one host read of this log point
        if host[-1] > 0:
            self.flag.requested = True  # asked on some rank: every rank stops here
        return host[:-1]


def is_rank_failure(error: BaseException) -> bool:
    """A collective that failed because another rank died or stopped answering."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        word in text
        for word in ("gloo", "nccl", "connection closed", "connection reset", "timed out", "peer")
    )


def rank_stopped(error: BaseException, folder: object | None) -> UserError:
    """The one line rank 0 ends the job with when another rank died."""
    rank, world = rank_world()
    who = f"rank {1 - rank}" if world == 2 else "another rank"
    # the backend's own words, without its source location ("[.../pair.cc:537] "), first sentence only
    text = re.sub(r"^\[[^\]]*\]\s*", "", (str(error).strip().splitlines() or [""])[-1])
    detail = text.split(". ")[0][:200] or type(error).__name__
    where = f"the last checkpoint is in {folder}" if folder else "no checkpoint was written yet"
    return UserError(
        f"{who} stopped: {detail}; {where}",
        hint=f"see that rank's output; continue with: torchrun ... -m devicelab train --resume {folder}"
        if folder
        else "see that rank's output and start again",
    )


def launch(nproc: int, argv: Sequence[str]) -> int:
    """``devicelab train --nproc N ...``: torchrun with ``nproc`` processes on this machine (rendezvous on
    a free local port), each running ``devicelab ARGV``; returns torchrun's exit status."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "devicelab", *argv]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", **os.environ}  # torchrun would set it, with a warning
    return subprocess.call(command, env=env)
