"""One epoch of mini-batches: devicelab's data pipeline vs the usual TensorDataset + DataLoader loop.

    python benchmarks/data_pipeline.py                    # CPU, 1,000,000 rows x 64 features, batch 1024
    python benchmarks/data_pipeline.py --device cuda --json out.json

Synthetic data (scikit-learn's make_classification, float32), devicelab's MLP (64-64-2 by default) and
one training step function for every row (devicelab.training.step.make_step: forward, cross-entropy,
backward, torch.optim.SGD), so the rows differ only in how each epoch's shuffled batches reach the step:

  DataLoader             TensorDataset + DataLoader(batch_size, shuffle=True), each batch .to(device):
                         the loop most tutorials write (a row at a time, then collated)
  devicelab in-memory    devicelab.training.epoch.make_epoch: the rows on the device once, a randperm on
                         the device, one index_select per batch (what devicelab train runs)
  devicelab streamed     devicelab.training.stream.make_stream_epoch: the rows in host memory, chunks
                         gathered into pinned memory and copied on a side stream (what devicelab train
                         runs when the rows do not fit in the device's free memory; on a CPU, forced)

Each is also timed with a step that does nothing ("data only"). Repeats are interleaved, one process;
medians, IQR, and each row's speed-up over the DataLoader row beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from devicelab.devices import resolve_device, synchronize
from devicelab.errors import UserError
from devicelab.models import MLP
from devicelab.timing import Measurement
from devicelab.training.epoch import make_epoch
from devicelab.training.step import make_step
from devicelab.training.stream import make_stream_epoch


def make_data(rows: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=min(16, features), n_classes=2, random_state=seed
    )
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def training_step(features: int, hidden: int, device: torch.device, lr: float):
    torch.manual_seed(0)
    model = MLP(features, (hidden,), 2).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return make_step(model, torch.nn.CrossEntropyLoss(), optimizer)


def no_step(x, y, losses, i) -> None:
    """Data only: the batch is made and handed over, nothing is computed on it."""


def dataloader_epoch(x, y, batch: int, device: torch.device, step, seed: int):
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    batch_losses = torch.zeros(len(loader), device=device)

    def epoch() -> None:
        for j, (xb, yb) in enumerate(loader):
            step(xb.to(device), yb.to(device), batch_losses, j)

    return epoch


def devicelab_epoch(x, y, batch: int, device: torch.device, step, seed: int, streamed: bool):
    losses = torch.zeros(1, device=device)
    if streamed:
        generator = torch.Generator().manual_seed(seed)
        run = make_stream_epoch(step, x, y, losses, batch, generator, device)
    else:
        xd, yd = x.to(device), y.to(device)  # once, before any epoch (not timed)
        generator = torch.Generator(device=device).manual_seed(seed)
        run = make_epoch(step, xd, yd, losses, batch, generator)
    return lambda: run(0)


def seconds(epoch, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    epoch()
    synchronize(device)  # sync: the epoch's queued work is done before the clock is read
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default: 1)")
    parser.add_argument("--no-data-only", action="store_true", help="skip the data-only rows")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    made = time.perf_counter()
    x, y = make_data(args.rows, args.features, seed=0)
    made = time.perf_counter() - made
    b = args.batch_size
    pipelines = {
        "DataLoader": lambda step: dataloader_epoch(x, y, b, device, step, 1),
        "devicelab in-memory": lambda step: devicelab_epoch(x, y, b, device, step, 1, streamed=False),
        "devicelab streamed": lambda step: devicelab_epoch(x, y, b, device, step, 1, streamed=True),
    }
    kinds = {"train": lambda: training_step(args.features, args.hidden, device, 0.01)}
    if not args.no_data_only:
        kinds["data only"] = lambda: no_step
    epochs = {
        (name, kind): make(new_step()) for kind, new_step in kinds.items() for name, make in pipelines.items()
    }
    for epoch in epochs.values():  # warm-up: first allocations, kernel loading
        seconds(epoch, device)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in epochs}
    for _ in range(args.repeats):  # interleaved, so a drifting load hits every row alike
        for key, epoch in epochs.items():
            times[key].append(seconds(epoch, device))
    n_batches = -(-args.rows // b)
    print(
        f"one epoch: {args.rows:,} rows x {args.features} features (make_classification, {made:.1f} s), "
        f"batch {b} ({n_batches} batches), MLP {args.features}-{args.hidden}-2, SGD, on {device}, "
        f"{args.threads} CPU thread(s), {args.repeats} repeats, torch {torch.__version__}"
    )
    print(f"{'':34}{'median s':>10}{'IQR s':>9}{'ms/batch':>10}{'Mrows/s':>9}{'vs DataLoader':>15}")
    rows = []
    for kind in kinds:
        base = Measurement(tuple(times[("DataLoader", kind)])).median
        for name in pipelines:
            m = Measurement(tuple(times[(name, kind)]), f"{name}, {kind}")
            flag = "  (noisy: IQR > 10% of median)" if m.noisy else ""
            print(
                f"{m.label:34}{m.median:10.3f}{m.iqr:9.3f}{m.median / n_batches * 1e3:10.3f}"
                f"{args.rows / m.median / 1e6:9.2f}{base / m.median:14.1f}x{flag}"
            )
            rows.append({"name": name, "kind": kind, **m.to_dict(), "times_s": list(m.times),
                         "speedup_vs_dataloader": base / m.median})  # fmt: skip
    if args.json:
        record = {"device": str(device), "rows": args.rows, "features": args.features, "batch": b,
                  "hidden": args.hidden, "threads": args.threads, "torch": torch.__version__,
                  "results": rows}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:  # e.g. --device cuda on a machine without one
        print(f"{sys.argv[0]}: error: {error.one_line()}", file=sys.stderr)
        sys.exit(2)
