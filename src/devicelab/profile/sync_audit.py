"""Find every host-device sync a loop makes, with the source line that made it and how often.

Two detectors, used together where they exist:

- **Calls** (every device): while the audit runs, the tensor methods that force a sync on an accelerator
  (``SYNC_CALLS``: ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``, ``bool(t)``/``if t:``,
  ``float(t)``, ``int(t)``, ``f"{t:.4f}"``, ``print(t)``, ``.nonzero()``) are wrapped so each call records
  the caller's file and line. On the CPU nothing really waits, so these are the calls that *would* sync on
  a GPU (``.numpy()`` there: on a GPU the script needs a copy to the host first, the one sync; a
  ``.numpy()`` on the same line as a counted ``.cpu()``, as in ``t.cpu().numpy()``, is that copy's). Calls made
  by torch itself on host tensors (an optimizer's step counter) are not counted; calls torch makes on device
  tensors are charged to the first line outside torch that led to them (on the CPU, where every tensor is a host
  tensor, a library's call counts when its tensor is in the autograd graph: ``ReduceLROnPlateau.step(loss)``'s
  ``float(loss)``).
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
import sysconfig
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch

from devicelab.syncs import DebugMode, watch_device_syncs

SYNC_CALLS: dict[str, str] = {
    # Tensor attribute -> what the report calls it
    "item": ".item()",
    "tolist": ".tolist()",
    "cpu": ".cpu()",
    "numpy": ".numpy()",
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
_LIBRARY_DIRS = tuple(
    {
        os.path.realpath(sysconfig.get_paths()[k]) + os.sep
        for k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
)
# devicelab's own instrumentation: a sync it makes (or passes on) is charged to the code that called it
INSTRUMENTATION_FILES: set[str] = {__file__, watch_device_syncs.__code__.co_filename}
# devicelab's CPU-only fast path (the fused kernel's runner and its plan): its tensors never live on a
# device, so its reads of them (``.numpy()`` views) are no syncs anywhere, as torch's own host reads are not
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_ONLY_FILES: set[str] = {os.path.join(_PACKAGE_DIR, "fast", f) for f in ("cpu_runner.py", "plan.py")}


def library_file(filename: str) -> bool:
    """True for code that is not the user's: the standard library, site-packages, torch, devicelab's
    instrumentation and frozen modules. Everything else (a script, a notebook cell, a helper module in
    the user's folder, devicelab's own training when it is what is profiled) is the user's."""
    return (
        filename.startswith((_TORCH_DIR, "<frozen"))
        or filename in INSTRUMENTATION_FILES
        or "site-packages" in filename
        or "dist-packages" in filename
        or filename.startswith(_LIBRARY_DIRS)
    )


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


def user_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame at or above ``frame`` in the user's code (``library_file``), or None."""
    while frame is not None and library_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


SiteKey = tuple[str, int, str, str]  # file, line, function, kind


class Recorder:
    """Counts syncs by user site, the host's wait in each, and the counts per ``step`` (set by the caller).

    ``device_type`` is the device whose tensors sync: "cpu" counts the calls that would sync on a GPU
    (only where the user's code makes them: torch's own reads of host tensors are no syncs anywhere)."""

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type
        self.enabled = True
        self.counts: Counter[SiteKey] = Counter()
        self.wait_s: defaultdict[SiteKey, float] = defaultdict(float)
        self.per_step: defaultdict[SiteKey, Counter[int]] = defaultdict(Counter)
        self.step = 0
        self.last_copy: tuple[int, int] | None = None  # (id of the frame, line) of the last counted .cpu()
        self._local = threading.local()

    @property
    def depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @depth.setter
    def depth(self, value: int) -> None:
        self._local.depth = value

    def record(self, kind: str, frame: FrameType | None, wait_s: float = 0.0) -> SiteKey | None:
        site = user_frame(frame)
        if site is None:
            return None
        key = (site.f_code.co_filename, site.f_lineno, site.f_code.co_name, kind)
        self.counts[key] += 1
        self.per_step[key][self.step] += 1
        self.wait_s[key] += wait_s
        return key

    def counts_call(self, tensor: torch.Tensor, caller: FrameType | None, kind: str = "") -> bool:
        if not self.enabled or self.depth > 0 or tensor.device.type != self.device_type:
            return False  # off, inside another watched call, or a host tensor during a GPU watch
        # torch's own reads of host tensors (an optimizer's step counter) sync nothing, nor do devicelab's
        # CPU-only fast path's; a library's read of a tensor in the graph (a scheduler's float(loss), tqdm
        # formatting a loss) is one, at the user's call
        file = caller.f_code.co_filename if caller else ""
        if self.device_type == "cpu" and file in HOST_ONLY_FILES:
            return False
        if self.device_type == "cpu" and library_file(file) and not tensor.requires_grad:
            return False
        here = (id(caller), caller.f_lineno) if caller is not None else None
        if kind == ".numpy()" and here is not None and self.last_copy == here:
            return False  # t.cpu().numpy(): one copy to the host, counted at its .cpu()
        if kind == ".cpu()":
            self.last_copy = here
        return True

    def sites(self) -> tuple[SyncSite, ...]:
        return tuple(
            SyncSite(file, line, function, linecache.getline(file, line).strip(), kind, count)
            for (file, line, function, kind), count in sorted(self.counts.items())
        )


def _at_callers_line(original: Callable) -> Callable:
    """``float(t)``/``int(t)`` of a tensor that requires grad: torch's warning about it (raised in C++, at
    the innermost Python frame: the wrapper) is shown at the caller's line, as without the wrapper."""

    def call(self, *args, **kwargs):
        if not self.requires_grad:
            return original(self, *args, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = original(self, *args, **kwargs)
        caller = sys._getframe(2)
        for w in caught:
            registry = caller.f_globals.setdefault("__warningregistry__", {})
            warnings.warn_explicit(w.message, w.category, caller.f_code.co_filename, caller.f_lineno,
                                   module=caller.f_globals.get("__name__"), registry=registry)  # fmt: skip
        return result

    return call


def _wrapped(original: Callable, kind: str, recorder: Recorder) -> Callable:
    if kind in ("float(tensor)", "int(tensor)"):
        original = _at_callers_line(original)

    def watched(self, *args, **kwargs):
        caller = sys._getframe(1)
        if not recorder.counts_call(self, caller, kind):
            recorder.depth += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                recorder.depth -= 1
        start = time.perf_counter()
        recorder.depth += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            recorder.depth -= 1
            recorder.record(kind, caller, time.perf_counter() - start)

    return watched


@contextlib.contextmanager
def watch_calls(recorder: Recorder) -> Iterator[None]:
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
    recorder = Recorder(device.type)

    def on_sync(frame: FrameType | None) -> None:
        if recorder.depth == 0:  # inside a watched call (the sync in .item()) it is that call's, counted
            recorder.record(CUDA_KIND, frame)

    with contextlib.ExitStack() as stack:
        stack.enter_context(watch_calls(recorder))
        watched = stack.enter_context(watch_device_syncs(device, on_sync, debug_mode=debug_mode))
        run()
    sites = recorder.sites()
    detectors = ("calls", device.type) if watched else ("calls",)
    return SyncAudit(loop, steps, str(device), detectors, sites)


def short_path(file: str) -> str:
    """``devicelab/...`` inside the package, relative to the working folder when below it, else as is."""
    import devicelab

    package = Path(devicelab.__file__).resolve().parent
    path = Path(file)
    if path.is_absolute():
        resolved = path.resolve()
        if resolved.is_relative_to(package):
            return str(Path("devicelab") / resolved.relative_to(package))
        if resolved.is_relative_to(Path.cwd()):
            return os.path.relpath(resolved)
    return file
