"""The lesson's training loop vs devicelab.train on the seed workload: same epochs, same device, one
process, interleaved repeats. Prints the median seconds of each, their spread and the ratio.

    python benchmarks/seed_vs_train.py                     # CPU, 20000 epochs, 5 repeats
    python benchmarks/seed_vs_train.py --device cuda --epochs 5000 --json out.json

Rows:
  lesson loop            tests/seed_lesson.py: loss.item() every step, optimizer.zero_grad/step
  devicelab eager        devicelab.train(TrainConfig(..., fast="off")): the loop's own clock (wall_s)
  devicelab fast         the same with fast="on": the loop's clock; its compile/capture time (setup_s) is
                         printed apart; the runner that ran (result.path) is named
  devicelab train call   the whole train() call with the default fast="auto": data, model, device
                         choice, compile/capture, loop, log points
The lesson and devicelab run with the same CPU thread count (--threads, default 1: what devicelab
picks on a small shared CPU); --lesson-default-threads adds the lesson at torch's default count.
`devicelab bench speed` measures the same rows and the peers (Lightning, skorch, JAX) in one command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from devicelab.devices import resolve_device, synchronize
from devicelab.errors import UserError
from devicelab.timing import Measurement
from devicelab.training.config import TrainConfig
from devicelab.training.loop import train
from seed_lesson import lesson_data, lesson_model, lesson_train


def lesson_seconds(device: torch.device, epochs: int) -> float:
    x_train, y_train, _, _ = lesson_data(device)
    model = lesson_model(device)
    synchronize(device)
    _, seconds = lesson_train(model, x_train, y_train, epochs)  # loss.item() syncs every step
    return seconds


def devicelab_run(device: torch.device, epochs: int, threads: int, fast: str):
    """(the result, the whole call's seconds)."""
    start = time.perf_counter()
    config = TrainConfig(epochs=epochs, device=str(device), threads=threads, fast=fast, quiet=True)
    result = train(config)
    call = time.perf_counter() - start
    assert result.status == "completed" and result.final["test_accuracy"] > 0.5
    return result, call


def describe(name: str, m: Measurement, epochs: int) -> dict:
    return {
        "name": name,
        "median_s": m.median,
        "iqr_s": m.iqr,
        "us_per_epoch": m.median / epochs * 1e6,
        "noisy": m.noisy,
        "times_s": list(m.times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lesson-default-threads", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    device = resolve_device(args.device)
    default_threads = torch.get_num_threads()
    names = ("lesson loop", "devicelab eager", "devicelab fast", "devicelab train call")
    times: dict[str, list[float]] = {name: [] for name in names}
    paths: dict[str, str] = {}
    setups: list[float] = []
    if args.lesson_default_threads:
        times[f"lesson loop, {default_threads} threads"] = []
    # one warm-up of each, then interleaved repeats so drifting load hits both alike
    torch.set_num_threads(args.threads)
    lesson_seconds(device, min(args.epochs, 500))
    for fast in ("off", "on", "auto"):
        devicelab_run(device, min(args.epochs, 500), args.threads, fast)
    for _ in range(args.repeats):
        torch.set_num_threads(args.threads)
        times["lesson loop"].append(lesson_seconds(device, args.epochs))
        eager, _ = devicelab_run(device, args.epochs, args.threads, "off")
        times["devicelab eager"].append(eager.wall_s)
        fast, _ = devicelab_run(device, args.epochs, args.threads, "on")
        times["devicelab fast"].append(fast.wall_s)
        setups.append(fast.setup_s)
        auto, call_s = devicelab_run(device, args.epochs, args.threads, "auto")
        times["devicelab train call"].append(call_s)
        paths.update(
            {"devicelab eager": eager.path, "devicelab fast": fast.path, "devicelab train call": auto.path}
        )
        if args.lesson_default_threads:
            torch.set_num_threads(default_threads)
            times[f"lesson loop, {default_threads} threads"].append(lesson_seconds(device, args.epochs))
    rows = [describe(name, Measurement(tuple(t), name), args.epochs) for name, t in times.items()]
    for row in rows:
        row["path"] = paths.get(row["name"], "lesson")
    base = rows[0]["median_s"]
    print(
        f"seed workload, {args.epochs} epochs on {device}, {args.threads} CPU thread(s), {args.repeats} repeats "
        f"(torch {torch.__version__})"
    )
    print(f"{'':24}{'ran':>14}{'median s':>10}{'IQR s':>9}{'µs/epoch':>10}{'lesson / this':>15}")
    for row in rows:
        flag = "  (noisy: IQR > 10% of median)" if row["noisy"] else ""
        ratio = base / row["median_s"]
        print(
            f"{row['name']:24}{row['path']:>14}{row['median_s']:10.3f}{row['iqr_s']:9.3f}"
            f"{row['us_per_epoch']:10.1f}{ratio:14.2f}x{flag}"
        )
        row["lesson_over_this"] = ratio
    setup = Measurement(tuple(setups))
    print(f"devicelab fast: compile/capture {setup.median:.3f} s per run (median), not in its µs/epoch")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "device": str(device),
                    "epochs": args.epochs,
                    "threads": args.threads,
                    "rows": rows,
                    "fast_setup_s": list(setups),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:  # e.g. --device cuda on a machine without one
        print(f"{sys.argv[0]}: error: {error.one_line()}", file=sys.stderr)
        sys.exit(2)
