"""TensorBoard event files: a training run's log points, ``bench logging`` cells, and sweeps (HParams).

Needs the ``tensorboard`` package (``pip install 'devicelab[tensorboard]'``); the writer is
``torch.utils.tensorboard.SummaryWriter``. Nothing here reads from a device: the training callback writes
the values its log point already holds, so TensorBoard costs no host syncs.

Tags: ``train/loss`` and ``test/<metric>`` (``test/loss``, ``test/accuracy`` ...) per epoch; text
``config``, ``device``, ``hardware`` and ``run_folder``. ``bench logging``: ``<device>/<strategy>/<figure>``
with the step = the number of records in a run; ``bench speed``: ``<device>/<size>/<row>/<figure>``. A sweep
(``write_sweep``, or ``write_sweep_folder`` for a folder ``devicelab sweep`` wrote): one run (sub-folder)
per model, each with its hyper-parameters and final metrics in the HParams plugin.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devicelab.errors import UserError
from devicelab.i18n import _
from devicelab.training.callbacks import Callbacks, LogPoint, StartInfo

DEFAULT_DIR = "tensorboard"  # under --runs-dir


def summary_writer_class():
    """``SummaryWriter``, or a UserError saying how to install what it needs."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; fail with our message)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            _("--tensorboard needs the tensorboard package, which is not installed"),
            hint=_("pip install 'devicelab[tensorboard]'"),
        ) from None
    return SummaryWriter


def check_logdir(root: str | Path) -> None:
    """Before a long run: the package is there and ``root`` can hold event files (a UserError if not)."""
    summary_writer_class()
    _make_dir(Path(root))


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(folder))
    except OSError as error:
        raise UserError(
            _("cannot write TensorBoard files in {folder}: {reason}").format(
                folder=folder, reason=error.strerror or error
            ),
            hint=_("give --tensorboard a folder you can write to"),
        ) from None


def _writer(logdir: str | Path):
    writer_class = summary_writer_class()  # first: without the package, nothing is created
    _make_dir(Path(logdir))
    return writer_class(log_dir=str(logdir))


def run_logdir(root: str | Path, name: str | None = None) -> Path:
    """``root/name`` (default name: a timestamp), a new folder each time: runs side by side in TensorBoard."""
    root = Path(root)
    base = name or time.strftime("%Y%m%d-%H%M%S")
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


def metric_tag(key: str) -> str:
    """'train_loss' -> 'train/loss', 'test_accuracy' -> 'test/accuracy'."""
    split, _sep, name = key.partition("_")
    return f"{split}/{name}" if name else key


def _code_block(obj: object) -> str:
    """JSON as a Markdown code block (TensorBoard's text plugin renders Markdown)."""
    return "```\n" + json.dumps(obj, indent=2, default=str) + "\n```"


def _pairs_table(pairs: Sequence[tuple[str, str]]) -> str:
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in pairs)


class TensorBoardCallbacks(Callbacks):
    """Writes each log point as scalars, and the config, device and hardware as text."""

    def __init__(self, logdir: str | Path, config: Mapping | None = None) -> None:
        self.logdir = Path(logdir)
        self.writer = _writer(self.logdir)
        if config is not None:
            self.writer.add_text("config", _code_block(dict(config)), 0)

    def on_start(self, info: StartInfo) -> None:
        self.writer.add_text(
            "device",
            f"{info.device} ({info.threads} CPU threads): {info.device_reason}; "
            f"{info.n_train} training rows, {info.n_test} test rows",
            info.start_epoch,
        )

    def on_log(self, point: LogPoint) -> None:
        self.writer.add_scalar("train/loss", point.train_loss, point.epoch)
        for key, value in point.metrics.items():
            self.writer.add_scalar(metric_tag(key), value, point.epoch)
        self.writer.flush()  # a log point is rare: make it visible to a running TensorBoard now

    def close(self, run_folder: str | Path | None = None, status: str | None = None) -> None:
        """Add the hardware (from the saved run folder's hardware.json) and close the file."""
        if run_folder is not None:
            from devicelab.report.records import hardware_summary

            folder = Path(run_folder)
            self.writer.add_text("run_folder", f"{folder} ({status})" if status else str(folder), 0)
            hardware = folder / "hardware.json"
            if hardware.is_file():
                record = json.loads(hardware.read_text(encoding="utf-8"))
                self.writer.add_text("hardware", _pairs_table(hardware_summary(record)), 0)
        self.writer.close()


def write_bench_logging(doc: Mapping, logdir: str | Path) -> Path:
    """``bench logging``'s JSON (``to_json``) as scalars: per device and strategy, µs/epoch, memory and the
    ETA error against the number of records in a run; the verdicts as text."""
    writer = _writer(logdir)
    for cell in doc["cells"]:
        prefix = f"{cell['device']}/{cell['strategy']}"
        step = int(cell["records"])
        memory = sorted(cell["memory_bytes"])
        figures = {
            "us_per_epoch": cell["us_per_epoch"],
            "run_s": cell.get("time", {}).get("median_s"),
            "memory_MB": memory[len(memory) // 2] / 1e6 if memory else None,
            "eta_error_s": _median(cell["eta_smoothed_error_s"]),
        }
        for name, value in figures.items():
            if value is not None:
                writer.add_scalar(f"{prefix}/{name}", float(value), step)
    verdicts = "\n\n".join(
        f"**{v['explanation']}. {v['title']}** ({v['device']}): **{v['outcome']}**. {v['text']}"
        for v in doc.get("verdicts", [])
    )
    if verdicts:
        writer.add_text("verdicts", verdicts, 0)
    writer.add_text("grid", _code_block(doc.get("grid", {})), 0)
    writer.close()
    return Path(logdir)


def write_bench_speed(doc: Mapping, logdir: str | Path) -> Path:
    """``bench speed``'s JSON (``devicelab.report.bench_speed.to_json``) as scalars: per device, size and
    row, µs per epoch and the ratio to the lesson's loop (step 0: each cell is one figure, not a curve)."""
    writer = _writer(logdir)
    for cell in doc["cells"]:
        size = cell["size"]["label"] if isinstance(cell.get("size"), Mapping) else cell.get("size")
        prefix = f"{cell['device']}/{size}/{cell['row']}"
        for name in ("us_per_epoch", "ratio_to_lesson", "final_loss"):
            if isinstance(cell.get(name), (int, float)):
                writer.add_scalar(f"{prefix}/{name}", float(cell[name]), 0)
    agreement = "\n\n".join(f"{a['device']} {a['size']}: {a['text']}" for a in doc.get("agreement", []))
    if agreement:
        writer.add_text("agreement", agreement, 0)
    writer.add_text("spec", _code_block(doc.get("spec", {})), 0)
    writer.close()
    return Path(logdir)


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    return ordered[len(ordered) // 2] if ordered else None


def write_sweep(
    logdir: str | Path,
    models: Sequence[Mapping],
    *,
    curves: Sequence[Sequence[Mapping]] | None = None,
) -> list[Path]:
    """One TensorBoard run per model of a sweep, under ``logdir``: its hyper-parameters and final metrics in
    the HParams plugin (compare them in its table and parallel-coordinates view), plus its log points.

    ``models[i]``: ``{"hparams": {"lr": 0.01, "hidden": "10", ...}, "metrics": {"test_loss": 0.05, ...}}``
    (hyper-parameter values: int, float, str or bool; metrics: numbers, keys as in metrics.csv);
    ``curves[i]`` (optional): that model's metrics.csv rows (``{"epoch": 100, "train_loss": ..., ...}``).
    Returns the run folders, ``logdir/model-000`` ... in the order of ``models``.
    """
    folders = []
    width = max(3, len(str(len(models) - 1)))
    for i, model in enumerate(models):
        folder = Path(logdir) / f"model-{i:0{width}d}"
        writer = _writer(folder)
        for row in curves[i] if curves is not None else ():
            for key, value in row.items():
                if key not in ("epoch", "elapsed_s") and value is not None:
                    writer.add_scalar(metric_tag(key), float(value), int(row["epoch"]))
        hparams = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in model["hparams"].items()
        }
        metrics = {f"hparam/{metric_tag(k)}": float(v) for k, v in model["metrics"].items()}
        writer.add_hparams(hparams, metrics, run_name=".")  # "." = this run's folder, not a new sub-folder
        writer.close()
        folders.append(folder)
    return folders


HPARAM_COLUMNS = ("hidden", "lr", "seed")  # a sweep's results.csv: the grid's axes


def write_sweep_folder(
    folder: str | Path, logdir: str | Path | None = None, max_points: int = 500
) -> list[Path]:
    """A sweep folder written by ``devicelab sweep`` (results.csv, losses.npy) as TensorBoard runs, one per
    model (``write_sweep``): the grid's values as hyper-parameters, the ``final_*`` columns as metrics, and
    each model's training loss at ``max_points`` epochs at most. ``logdir`` defaults to
    ``<folder>/tensorboard``."""
    import csv

    import numpy as np

    from devicelab.report.svg import downsample

    folder = Path(folder)
    with (folder / "results.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    models, curves = [], []
    losses = np.load(folder / "losses.npy") if (folder / "losses.npy").is_file() else None
    for row in rows:
        hparams = {k: _value(row[k]) for k in HPARAM_COLUMNS if k in row}
        metrics = {
            k.removeprefix("final_"): float(v)
            for k, v in row.items()
            if k.startswith("final_") and _is_number(v)
        }
        models.append({"hparams": hparams, "metrics": metrics})
        curve = losses[int(row["model"])] if losses is not None else np.zeros(0)
        epochs = [i + 1 for i, v in enumerate(curve) if v == v]
        x, y = downsample(epochs, [float(curve[e - 1]) for e in epochs], max_points)
        curves.append([{"epoch": e, "train_loss": v} for e, v in zip(x, y, strict=True)])
    return write_sweep(logdir or folder / "tensorboard", models, curves=curves)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value(text: str) -> float | str:
    return float(text) if _is_number(text) else text
