"""devicelab: know your hardware, train on it correctly and fast, and see where the time goes.

The Python API (the command line, ``devicelab --help``, is a thin layer over it)::

    import devicelab

    result = devicelab.train(devicelab.TrainConfig(data="sales.csv", target="price", epochs=500))
    result            # one screen: status, device, final metrics, where the data came from
    result.roles      # a file run's role table: what was done to each column
    result.metrics    # one dict per log point; result.losses: one loss per epoch
    result.save()     # the run folder, as devicelab train writes it

- ``train(config)``: train as a ``TrainConfig`` says and return a ``RunResult``.
- ``TrainConfig``: every option of ``devicelab train`` as a field (data, target, hidden, lr, epochs, ...).
- ``RunResult``: what a run produced (losses, metrics, model, roles, how it ran); ``.plot()``, ``.save()``.
- ``UserError``: bad input (a missing file, an unknown column), with what is wrong and how to fix it.
- ``DevicelabWarning``: something that runs but is likely not meant (a softmax before cross-entropy, more
  scores than classes); ``warnings.filterwarnings("error", category=devicelab.DevicelabWarning)`` makes it fail.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.2.0"

# Lazy: `import devicelab` (and `devicelab --help`) must not pay for importing torch.
_LAZY = {
    "RunResult": "devicelab.training.result",
    "TrainConfig": "devicelab.training.config",
    "UserError": "devicelab.errors",
    "DevicelabWarning": "devicelab.errors",
    "fit": "devicelab.training.fit",
    "train": "devicelab.training.loop",
    "watch": "devicelab.profile.api",
    "profile_step": "devicelab.profile.api",
}

__all__ = [
    "DevicelabWarning",
    "RunResult",
    "TrainConfig",
    "UserError",
    "__version__",
    "fit",
    "profile_step",
    "train",
    "watch",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'devicelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazy names too, so that dir(devicelab), help(devicelab) and tab completion show the API
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
