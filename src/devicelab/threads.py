"""torch's intra-op thread count, set for a scope and put back after it (training, timing, sweeps and
benchmarks each run on the thread count they chose, and leave the process as they found it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside (None: leave it), the count from before put back after."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
