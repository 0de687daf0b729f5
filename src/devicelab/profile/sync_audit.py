"""Find every host-device sync a loop makes, with the source line that made it and how often.

Two detectors, used together where they exist:

- **Calls** (every device): while the audit runs, the tensor methods that force a sync on an accelerator
  (``SYNC_CALLS``: ``.item()``, ``.cpu()``, ``.tolist()``, ``bool(t)``/``if t:``,
  ``float(t)``, ``int(t)``, ``f"{t:.4f}"``, ``print(t)``, ``.nonzero()``) are wrapped so each call records
  the caller's file and line. On the CPU nothing really waits, so these are the calls that *would* sync on
  a GPU. Calls made by torch itself on host tensors (an optimizer's step counter) are not counted; calls
  torch makes on device tensors are charged to the first line outside torch that led to them.
- **CUDA** (``devicelab.syncs.watch_device_syncs``, the watcher ``bench`` counts with too):
  ``torch.cuda.set_sync_debug_mode("warn")`` makes CUDA report every synchronizing operation it knows of
  (also ones no wrapped call covers, such as boolean-mask indexing); each report is charged to the first
  line outside torch on the Python stack.

Everything patched is put back when the audit ends, also on error: the tensor methods, the warning
filters and the user's sync debug mode.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

import torch

from devicelab.syncs import DebugMode, watch_device_syncs

SYNC_CALLS: dict[str, str] = {
    # Tensor attribute -> what the report calls it
    "item": ".item()",
    "tolist": ".tolist()",
    "cpu": ".cpu()",
    "nonzero": ".nonzero()",
    "__bool__": "bool(tensor)",
    "__float__": "float(tensor)",
    "__int__": "int(tensor)",
    "__index__": "tensor as index",
    "__format__": "format(tensor)",
    "__repr__": "print/repr(tensor)",
}
CUDA_KIND = "CUDA sync"  # a sync the device itself reported (CUDA is the one that can)

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_SKIPPED = (_TORCH_DIR, __file__)


@dataclass(frozen=True)
class SyncSite:
    file: str
    line: int
    function: str
    code: str  # the source line, stripped
    kind: str  # a SYNC_CALLS label, or CUDA_KIND
    count: int


@dataclass(frozen=True)
class SyncAudit:
    loop: str
    steps: int
    device: str
    detectors: tuple[str, ...]  # "calls", "cuda"
    sites: tuple[SyncSite, ...]

    def total(self, kind: str | None = None) -> int:
        return sum(s.count for s in self.sites if kind is None or s.kind == kind)

    def to_dict(self) -> dict:
        return {
            "loop": self.loop,
            "steps": self.steps,
            "device": self.device,
            "detectors": list(self.detectors),
            "sites": [s.__dict__ for s in self.sites],
        }


def _outside_torch(frame: FrameType | None) -> FrameType | None:
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        frame = frame.f_back
    return frame


def _in_torch(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR)


class _Recorder:
    def __init__(self, device_type: str) -> None:
        self.device_type = device_type
        self.counts: Counter[tuple[str, int, str, str]] = Counter()
        self._local = threading.local()

    @property
    def depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @depth.setter
    def depth(self, value: int) -> None:
        self._local.depth = value

    def record(self, kind: str, frame: FrameType | None) -> None:
        site = _outside_torch(frame)
        if site is not None:
            self.counts[(site.f_code.co_filename, site.f_lineno, site.f_code.co_name, kind)] += 1

    def call(self, kind: str, tensor: torch.Tensor, caller: FrameType | None) -> None:
        if self.depth > 0 or tensor.device.type != self.device_type:
            return  # inside another watched call, or a host tensor during a GPU audit: not a device sync
        if self.device_type == "cpu" and _in_torch(caller):
            return  # torch's own reads of host tensors (an optimizer's step counter) sync nothing
        self.record(kind, caller)


def _wrapped(original: Callable, kind: str, recorder: _Recorder) -> Callable:
    def watched(self, *args, **kwargs):
        recorder.call(kind, self, sys._getframe(1))
        recorder.depth += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            recorder.depth -= 1

    return watched


@contextlib.contextmanager
def _watch_calls(recorder: _Recorder) -> Iterator[None]:
    saved = {name: torch.Tensor.__dict__.get(name) for name in SYNC_CALLS}
    try:
        for name, kind in SYNC_CALLS.items():
            setattr(torch.Tensor, name, _wrapped(getattr(torch.Tensor, name), kind, recorder))
        yield
    finally:
        for name, original in saved.items():
            if original is None:
                if name in torch.Tensor.__dict__:
                    delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)


def audit(
    loop: str,
    run: Callable[[], object],
    device: torch.device,
    steps: int,
    *,
    debug_mode: DebugMode | None = None,
) -> SyncAudit:
    """Run ``run()`` (a loop of ``steps`` steps on ``device``) and return every sync it made.

    ``debug_mode`` defaults to the device type's sync debug mode (CUDA; see ``devicelab.syncs``); pass a
    fake to test the device detector without a GPU. The user's debug mode is put back afterwards."""
    device = torch.device(device)
    recorder = _Recorder(device.type)

    def on_sync(frame: FrameType | None) -> None:
        if recorder.depth == 0:  # inside a watched call (the sync in .item()) it is that call's, counted
            recorder.record(CUDA_KIND, frame)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_watch_calls(recorder))
        watched = stack.enter_context(watch_device_syncs(device, on_sync, debug_mode=debug_mode))
        run()
    sites = tuple(
        SyncSite(file, line, function, linecache.getline(file, line).strip(), kind, count)
        for (file, line, function, kind), count in sorted(recorder.counts.items())
    )
    detectors = ("calls", device.type) if watched else ("calls",)
    return SyncAudit(loop, steps, str(device), detectors, sites)
