"""How the epochs between two log points run: the eager step, or a fast path that does the same
arithmetic with less overhead (``devicelab.fast``). The loop only ever calls a ``Runner``.

A runner trains epochs ``[start, stop)`` and leaves each epoch's loss in ``work.losses`` on the device;
it never reads a value back to the host. Between log points the weights may live elsewhere (a fused
kernel's arrays, a captured graph's static tensors): ``sync_module()`` writes them, and the optimizer's
state, back into ``work.model`` / ``work.optimizer`` before a log point evaluates, snapshots or saves
them, and ``load_module()`` reads them in again after something (resume, the NaN stop) changed them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from devicelab.training.config import TrainConfig
from devicelab.training.guard import SelfCheck, self_check
from devicelab.training.workload import Workload

FastRunner = Callable[[Workload, TrainConfig], tuple["Runner | None", str]]


class Runner(Protocol):
    name: str  # "eager", or the fast path's name ("numba", "cuda-graph", ...)
    setup_s: float  # compile or capture time and the self-check, paid once, not counted as training time
    self_check: SelfCheck | None  # the fast path's check against the eager step (None: no fast path)

    def run(self, start: int, stop: int, should_stop: Callable[[], bool]) -> int:
        """Train epochs ``start..stop-1`` (fewer if ``should_stop()`` turns true between epochs or
        chunks); return the epoch reached. Nothing here waits for the device."""
        ...

    def sync_module(self) -> None:
        """Write weights and optimizer state back into the workload's model and optimizer."""
        ...

    def load_module(self) -> None:
        """Read weights and optimizer state from the workload's model and optimizer."""
        ...


@dataclass
class EagerRunner:
    """Today's step, one epoch at a time: any ``nn.Module`` trains this way."""

    work: Workload
    name: str = "eager"
    setup_s: float = 0.0
    reason: str = field(default="")
    self_check: SelfCheck | None = None  # a fast path's failed check, when that is why this runs

    def run(self, start: int, stop: int, should_stop: Callable[[], bool]) -> int:
        epoch = start
        while epoch < stop:
            self.work.run_epoch(epoch)
            epoch += 1
            if should_stop():
                break
        return epoch

    def sync_module(self) -> None:  # the eager step trains the module itself
        pass

    def load_module(self) -> None:
        pass


def select_runner(
    work: Workload, config: TrainConfig, *, fast_runner: FastRunner | None = None
) -> tuple[Runner, str]:
    """The runner for ``--fast auto|on|off`` and why. ``auto`` takes a fast path where it applies and
    pays; ``on`` takes it wherever it applies; anything a fast path cannot take trains eagerly, and the
    reason says why (never an error: any ``nn.Module`` trains). A fast path is trusted only once its
    self-check against the eager step passed (``devicelab.training.guard``; its cost is in
    ``setup_s``). ``fast_runner``: how the fast path is built (default: the device's own)."""
    if work.eager_only:  # DDP's gradient hooks, or rows streamed from host memory: no fast path applies
        return EagerRunner(work), work.eager_only
    if config.fast == "off":
        return EagerRunner(work), "eager step: --fast off"
    fast, why = (fast_runner or _fast_runner)(work, config)
    if fast is None:
        return EagerRunner(work), f"eager step: {why}"
    key = (type(fast), str(work.device), getattr(fast, "plan", None), tuple(work.x_train.shape))
    check = self_check(work, fast, key)
    fast.setup_s += check.seconds
    if not check.passed:
        reason = (
            f"eager step: the {fast.name} path failed its self-check against the eager step ({check.figures})"
        )
        return EagerRunner(work, reason=reason, self_check=check), reason
    fast.self_check = check
    return fast, why


def _fast_runner(work: Workload, config: TrainConfig) -> tuple[Runner | None, str]:
    if work.device.type == "cpu":
        from devicelab.fast.cpu_runner import cpu_fast_runner

        return cpu_fast_runner(work, config)
    if work.device.type == "cuda":
        from devicelab.fast.cuda_graph import cuda_graph_runner

        return cuda_graph_runner(work, config)
    return None, f"no fast path for {work.device.type} devices yet"
