"""Training rows larger than the device's free memory: mini-batches streamed from host memory.

The rows stay in host memory. Each epoch draws its shuffle on the host, gathers a chunk of whole
mini-batches (in shuffled order) into a pinned staging tensor, and copies it to the device with
``non_blocking=True`` on a side stream, so the copy of chunk k+1 overlaps the compute of chunk k; the
compute stream waits for a chunk's copy on the device (an event), never on the host. The batches are the
in-memory epoch's (``devicelab.training.epoch``), row for row: the same permutation, cut at the same
places, so on the CPU (where ``data="stream"`` forces this path, to test it) the losses are the same.

``choose_data_mode`` decides from the device's measured free memory, and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from devicelab.errors import UserError
from devicelab.training.step import Step

# The training rows may take at most this share of the device's free memory; the rest is for the
# model, its activations and gradients, the test rows and the allocator's slack.
FIT_SHARE = 0.5
CHUNK_BYTES = 64 * 2**20  # a chunk (whole mini-batches) copied in one transfer: ~64 MiB
DATA_MODES = ("device", "auto", "stream")


@dataclass(frozen=True)
class DataMode:
    mode: str  # "device" (copied to the device once) | "streamed" (from host memory, chunk by chunk)
    reason: str

    @property
    def streamed(self) -> bool:
        return self.mode == "streamed"


def choose_data_mode(
    train_bytes: int,
    device: torch.device,
    batch_size: int | None,
    asked: str = "auto",
    *,
    free_bytes: Callable[[torch.device], int] | None = None,
) -> DataMode:
    """``asked``: "device" (always on the device), "stream" (always streamed: forced, for tests and
    benchmarks) or "auto" (streamed on a CUDA device whose free memory is too small for the rows).
    ``free_bytes`` reads a device's free memory (injectable, to test without a GPU)."""
    if asked not in DATA_MODES:
        raise ValueError(f"data mode must be one of {DATA_MODES}, got {asked!r}")
    if asked == "device":
        return DataMode("device", "on the device")
    if asked == "stream":
        mode = DataMode("streamed", "streamed from host memory: asked for")
    elif device.type != "cuda":  # the CPU's rows are in host memory already; MPS shares it
        return DataMode("device", f"on {device.type}: the rows are in host memory already, nothing to stream")
    else:
        free = (free_bytes or _cuda_free_bytes)(device)
        if train_bytes <= FIT_SHARE * free:
            fit = f"the training rows ({_gb(train_bytes)}) fit in {device}'s free memory ({_gb(free)})"
            return DataMode("device", f"on the device: {fit}")
        mode = DataMode(
            "streamed",
            f"streamed from pinned host memory: the training rows ({_gb(train_bytes)}) exceed "
            f"{FIT_SHARE:.0%} of {device}'s free memory ({_gb(free)})",
        )
    if batch_size is None:
        raise UserError(
            f"the training rows ({_gb(train_bytes)}) must be streamed from host memory to {device}, "
            "which needs mini-batches",
            hint="pass --batch-size N (e.g. 1024), or --device cpu",
        )
    return mode


def _cuda_free_bytes(device: torch.device) -> int:
    free, _total = torch.cuda.mem_get_info(device)  # the driver's count, at set-up; waits for nothing queued
    return int(free)


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.2f} GB"


def batches_per_chunk(batch_size: int, row_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(1, batch_size * row_bytes))


def make_stream_epoch(
    step: Step,
    x: torch.Tensor,
    y: torch.Tensor,
    losses: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    chunk_batches: int | None = None,
) -> Callable[[int], None]:
    """``epoch(i)``: one epoch of mini-batches of the host rows ``x``, ``y`` on ``device``, its mean loss
    into ``losses[i]`` (on ``device``); ``generator`` (a CPU one) draws the shuffle. ``chunk_batches``:
    mini-batches per copied chunk (default: ~``CHUNK_BYTES``)."""
    n = x.shape[0]
    row_bytes = x[:1].nbytes + y[:1].nbytes
    chunk_rows = batch_size * (chunk_batches or batches_per_chunk(batch_size, row_bytes))
    starts = range(0, n, batch_size)
    batch_losses = torch.zeros(len(starts), device=device)
    # each batch's share of the epoch mean (the last batch may be smaller): as the in-memory epoch
    weights = torch.tensor([min(batch_size, n - s) / n for s in starts], device=device)
    copier = HostToDevice(device)

    def epoch(i: int) -> None:
        # on the host, where the rows are; one batch of all the rows is not shuffled (as make_epoch)
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        chunk_starts = range(0, n, chunk_rows)
        pending = copier.start(x, y, order[:chunk_rows])
        j = 0
        for c in chunk_starts:
            xc, yc = copier.ready(pending)
            for s in range(0, xc.shape[0], batch_size):  # queued on the device; returns at once on a GPU
                step(xc[s : s + batch_size], yc[s : s + batch_size], batch_losses, j)
                j += 1
            if c + chunk_rows < n:  # gathered and copied while the device computes the batches above
                pending = copier.start(x, y, order[c + chunk_rows : c + 2 * chunk_rows])
        losses[i] = torch.dot(batch_losses, weights)  # stays on the device

    return epoch


class HostToDevice:
    """Chunks of host rows onto the device: gathered into pinned memory, copied on a side stream.

    On the CPU a chunk is only gathered (the same batches, no copy), which is what the tests run.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def start(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor):
        """Begin moving ``x[rows]``, ``y[rows]`` to the device; returns a handle for ``ready``."""
        if not self.cuda:
            return x.index_select(0, rows), y.index_select(0, rows), None
        # pinned staging from torch's caching host allocator: a block is reused only after the copy that
        # read it has finished (it records an event with the copy), so the host never waits for it here
        xs = torch.empty((len(rows), *x.shape[1:]), dtype=x.dtype, pin_memory=True)
        ys = torch.empty((len(rows), *y.shape[1:]), dtype=y.dtype, pin_memory=True)
        torch.index_select(x, 0, rows, out=xs)
        torch.index_select(y, 0, rows, out=ys)
        with torch.cuda.stream(self.stream):
            xd = xs.to(self.device, non_blocking=True)  # asynchronous from pinned memory: no wait
            yd = ys.to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self.stream)
        return xd, yd, copied

    def ready(self, pending) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunk's device tensors, usable by work queued on the current stream from now on."""
        xd, yd, copied = pending
        if copied is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(copied)  # the device waits for the copy, the host does not
            # allocated on the side stream, used on the compute stream: the caching allocator must not
            # hand the memory out again before the compute queued on it has run
            xd.record_stream(compute)
            yd.record_stream(compute)
        return xd, yd


def host_rows(dataset, device: torch.device):
    """``(x_train, y_train, x_test, y_test)``: the training rows in host memory (for streaming), the test
    rows copied to ``device`` once."""
    return (
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.y_train),
        torch.from_numpy(dataset.x_test).to(device),
        torch.from_numpy(dataset.y_test).to(device),
    )
