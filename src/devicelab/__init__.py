"""devicelab: know your hardware, train on it correctly and fast, and see where the time goes."""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["TrainConfig", "UserError", "__version__", "fit", "train"]


def __getattr__(name: str):
    # Lazy: `import devicelab` (and `devicelab --help`) must not pay for importing torch.
    if name == "TrainConfig":
        from devicelab.training.config import TrainConfig

        return TrainConfig
    if name == "UserError":  # no torch in it: errors.py imports nothing heavy
        from devicelab.errors import UserError

        return UserError
    if name == "fit":
        from devicelab.training.fit import fit

        return fit
    if name == "train":
        from devicelab.training.loop import train

        return train
    raise AttributeError(f"module 'devicelab' has no attribute {name!r}")
