"""Training: the config, the sync-free step, the loop and the run folder.

In a notebook: ``result = devicelab.train(devicelab.TrainConfig(epochs=2000))`` (the seed workload,
shorter), then ``result.losses``, ``result.metrics``, ``result.plot()``, ``result.save()``.
"""

from __future__ import annotations

import sys
import types

from devicelab.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(*args, **kwargs):
    """``devicelab.train.loop.train``: see there. (Imported on first call: the loop imports torch.)"""
    from devicelab.train.loop import train as run

    return run(*args, **kwargs)


class _CallablePackage(types.ModuleType):
    """``devicelab.train`` is both this package and the function people call: once any submodule is
    imported, Python binds the name ``devicelab.train`` to the package, so the package itself forwards
    calls to the loop (a module may set its ``__class__`` to a ModuleType subclass; Python >= 3.5)."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
