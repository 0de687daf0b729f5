"""Many models at once: ``devicelab sweep`` trains every combination of learning rates, initialisation
seeds and hidden shapes, the models of one shape together (see docs/sweep.md).

    from devicelab.sweep import Grid, run_sweep
    result = run_sweep(TrainConfig(epochs=2000), Grid(lrs=(0.01, 0.1), seeds=tuple(range(64)), hiddens=((10,),)))
    result.save("runs")
"""

from __future__ import annotations

from devicelab.sweep.grid import Grid, ModelSpec, parse_lrs, parse_seeds

__all__ = ["Grid", "ModelSpec", "parse_lrs", "parse_seeds", "run_sweep"]


def __getattr__(name: str):
    if name == "run_sweep":  # imported on use: it imports torch, and `devicelab --help` should not
        from devicelab.sweep.run import run_sweep

        return run_sweep
    raise AttributeError(name)
