"""One table over device types (cpu, cuda, mps, xpu): availability, synchronize, memory.

Everything that differs by device type goes through ``BACKENDS`` so that no if/elif ladder over device
names is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from devicelab.errors import UserError


@dataclass(frozen=True)
class Backend:
    type: str
    module: Callable[[], object | None]  # the torch submodule, or None when torch lacks it

    def available(self) -> bool:
        mod = self.module()
        return bool(mod is not None and mod.is_available())

    def count(self) -> int:
        if self.type == "cpu":
            return 1
        if not self.available():
            return 0
        mod = self.module()
        return int(mod.device_count()) if hasattr(mod, "device_count") else 1

    def synchronize(self, device: torch.device) -> None:
        mod = self.module()
        if self.type == "cpu" or mod is None:
            return
        if self.type == "mps":
            mod.synchronize()
        else:
            mod.synchronize(device)


def _cpu_module():
    return None


BACKENDS: dict[str, Backend] = {
    "cpu": Backend("cpu", _cpu_module),
    "cuda": Backend("cuda", lambda: torch.cuda),
    "mps": Backend("mps", lambda: getattr(torch, "mps", None) if torch.backends.mps.is_available() else None),
    "xpu": Backend("xpu", lambda: getattr(torch, "xpu", None)),
}


def available_devices() -> list[torch.device]:
    """Every device this process can use: the CPU first, then each accelerator."""
    found = [torch.device("cpu")]
    for backend in BACKENDS.values():
        if backend.type == "cpu":
            continue
        n = backend.count()
        if backend.type == "mps":
            found += [torch.device("mps")] if n else []
        else:
            found += [torch.device(backend.type, i) for i in range(n)]
    return found


def why_unavailable(device_type: str) -> str:
    """A one-line reason why a device type cannot be used here, with what to do about it: the finding of
    ``devicelab info``'s doctor when it has one, so both say the same; else a general reason."""
    from devicelab.hardware.doctor import explain_missing

    finding = explain_missing(device_type)
    if finding is not None:
        return f"{finding.problem}; {finding.fix}"
    if device_type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            return (
                f"this torch {torch.__version__} is a CPU-only build; install a CUDA build of torch "
                "(see https://pytorch.org/get-started/locally/)"
            )
        return (
            "torch was built with CUDA but finds no usable GPU (no NVIDIA driver loaded, or no GPU visible)"
        )
    if device_type == "mps":
        if not torch.backends.mps.is_built():
            return "this torch was built without MPS (Apple GPUs); MPS needs torch for macOS on Apple silicon"
        return "torch has MPS but it is unavailable (macOS 12.3 or later on Apple silicon is needed)"
    if device_type == "xpu":
        return "torch finds no Intel XPU (install a torch build with XPU support and Intel's GPU driver)"
    return f"unknown device type {device_type!r}"


def resolve_device(spec: str) -> torch.device:
    """Turn a user's ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``xpu[:N]`` into a usable device.

    Raises UserError naming the reason and the fix when the device does not exist here.
    ``auto`` is not handled here: training decides it by timing
    (``devicelab.training.device_choice.choose_device``), a comparison takes every device
    (``devices_to_compare``).
    """
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {spec!r}", hint="use auto, cpu, cuda, cuda:N, mps or xpu") from None
    backend = BACKENDS.get(device.type)
    if backend is None:
        raise UserError(f"unsupported device {spec!r}", hint="use auto, cpu, cuda, cuda:N, mps or xpu")
    if device.type == "cpu":
        return torch.device("cpu")
    count = backend.count()
    if count == 0:
        raise UserError(
            f"device {spec!r} is not available: {why_unavailable(device.type)}", hint="or use --device cpu"
        )
    index = device.index if device.index is not None else 0
    if device.type != "mps" and index >= count:
        raise UserError(
            f"device {spec!r} does not exist: this machine has {count} {device.type} device(s), "
            f"{device.type}:0 to {device.type}:{count - 1}"
        )
    return torch.device(device.type, index) if device.type != "mps" else torch.device("mps")


def devices_to_compare(
    specs: Sequence[str] | None, *, available: Callable[[], list[torch.device]] = available_devices
) -> tuple[str, ...]:
    """The devices a comparison (``devicelab bench``) runs on, in order and each once.

    ``specs`` are the user's ``--device`` values, each a name or a comma-separated list; ``auto`` (also
    the default, when ``specs`` is None) means every device here, the CPU first: a benchmark compares
    them. (Training's ``auto`` means one device, the fastest for the workload:
    ``devicelab.training.device_choice.choose_device``.) Raises UserError for a device that is not here.
    ``available`` lists the devices here (injectable, to test without a GPU).
    """
    names = [p.strip() for spec in (specs or ["auto"]) for p in spec.split(",") if p.strip()]
    if not names:
        raise UserError("--device: no device given", hint="e.g. --device cpu or --device cpu,cuda:0")
    found: list[str] = []
    for name in names:
        found += [str(d) for d in available()] if name == "auto" else [str(resolve_device(name))]
    return tuple(dict.fromkeys(found))


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (a no-op on the CPU)."""
    BACKENDS[device.type].synchronize(device)


def sync_fn(device: torch.device) -> Callable[[], None]:
    """A zero-argument synchronize for ``device``, for devicelab.timing.measure."""
    return lambda: synchronize(device)
