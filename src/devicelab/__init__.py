"""devicelab: know your hardware, train on it correctly and fast, and see where the time goes."""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["TrainConfig", "__version__", "profile_step", "train", "watch"]


def __getattr__(name: str):
    # Lazy: `import devicelab` (and `devicelab --help`) must not pay for importing torch.
    if name == "TrainConfig":
        from devicelab.training.config import TrainConfig

        return TrainConfig
    if name == "train":
        from devicelab.training.loop import train

        return train
    if name in ("watch", "profile_step"):  # the profiler on the user's own code (devicelab.profile.api)
        from devicelab.profile import api

        return getattr(api, name)
    raise AttributeError(f"module 'devicelab' has no attribute {name!r}")
