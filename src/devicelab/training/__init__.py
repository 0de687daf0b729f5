"""Training: the config, the sync-free step, the loop and the run folder.

The notebook entry point is the function ``devicelab.train`` (``devicelab.training.loop.train``):
``result = devicelab.train(devicelab.TrainConfig(epochs=2000))`` (the seed workload, shorter), then
``result.losses``, ``result.metrics``, ``result.plot()``, ``result.save()``. Your own module trains the same way:
``devicelab.fit(model, X, y)`` (``devicelab.training.fit.fit``) returns the same result. This package has its own name
so that the function and the package are never the same object.
"""

from __future__ import annotations

from devicelab.training.config import TrainConfig

__all__ = ["TrainConfig"]
