"""The grid of a sweep: learning rates × initialisation seeds × hidden shapes, parsed from the command
line's lists (``0.001,0.01``; ``0-63``; ``10 32,32``) into one ``ModelSpec`` per model."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from devicelab.errors import UserError

MAX_MODELS = 100_000


@dataclass(frozen=True)
class ModelSpec:
    index: int  # the model's row in results.csv and losses.npy
    hidden: tuple[int, ...]
    lr: float
    seed: int  # initialisation seed (the data split is the sweep's --seed, the same for all)


@dataclass(frozen=True)
class Grid:
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    hiddens: tuple[tuple[int, ...], ...]

    def models(self) -> list[ModelSpec]:
        """Every combination, shape by shape, then learning rate, then seed."""
        combos = [(h, lr, s) for h in self.hiddens for lr in self.lrs for s in self.seeds]
        return [ModelSpec(i, h, lr, s) for i, (h, lr, s) in enumerate(combos)]

    def groups(self) -> list[list[ModelSpec]]:
        """The models of each hidden shape (one group trains together)."""
        models = self.models()
        return [[m for m in models if m.hidden == h] for h in self.hiddens]

    def __len__(self) -> int:
        return len(self.lrs) * len(self.seeds) * len(self.hiddens)


def parse_lrs(text: str) -> tuple[float, ...]:
    """``"0.001,0.01,0.1"`` → the learning rates (positive, finite, no repeats, in the order given)."""
    values = []
    for part in _parts(text, "--lr", "0.001,0.01,0.1"):
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"--lr {text}: {part!r} is not a number", hint="give learning rates like --lr 0.001,0.01,0.1"
            ) from None
        if not (value > 0 and math.isfinite(value)):
            raise UserError(f"--lr {text}: {part} is not a positive, finite learning rate")
        values.append(value)
    return _unique(values, "--lr", text)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-63"``, ``"1,5,7"``, ``"0-3,10"`` → the seeds, each in [0, 2**32)."""
    values: list[int] = []
    for part in _parts(text, "--seeds", "0-63 or 1,5,7"):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise UserError(
                f"--seeds {text}: {part!r} is not a seed or a range",
                hint="give seeds like --seeds 0-63 or --seeds 1,5,7",
            ) from None
        if first > last:
            raise UserError(f"--seeds {text}: the range {part} is empty", hint=f"write it as {last}-{first}")
        if first < 0 or last >= 2**32:
            raise UserError(f"--seeds {text}: seeds must be between 0 and {2**32 - 1}")
        if last - first >= MAX_MODELS:
            raise UserError(
                f"--seeds {text}: more than {MAX_MODELS} seeds", hint="sweep fewer seeds at a time"
            )
        values.extend(range(first, last + 1))
    return _unique(values, "--seeds", text)


def check_size(grid: Grid) -> None:
    if len(grid) > MAX_MODELS:
        raise UserError(
            f"the grid has {len(grid)} models ({len(grid.lrs)} learning rates × {len(grid.seeds)} seeds × "
            f"{len(grid.hiddens)} shapes), more than {MAX_MODELS}",
            hint="split it into several sweeps",
        )


def _parts(text: str, option: str, example: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise UserError(
            f"{option} {text!r}: an empty item", hint=f"give a comma-separated list, e.g. {example}"
        )
    return parts


def _unique(values: list, option: str, text: str) -> tuple:
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise UserError(
            f"{option} {text}: {', '.join(map(str, repeated))} given more than once",
            hint="each value trains the same models again; give each once",
        )
    return tuple(values)
