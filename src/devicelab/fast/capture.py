"""Capturing a function's CUDA work into a graph, and leaving the process usable when that fails.

``capture_cuda_graph(fn, pool, stream)`` is ``torch.cuda.graph`` (PyTorch CUDA semantics notes, "CUDA
Graphs") plus what torch does not do when a capture fails part-way. Depending on the stage and the
torch version, a failed capture can leave: the stream still capturing (``fn`` raised, then
``capture_end`` raised too); the caching allocator still routing allocations to the graph's private pool
(``capture_end`` raises before it tells the allocator: the next capture or out-of-memory retry then
asserts ``captures_underway.empty()``, or freed memory is never reused); the default CUDA generator still
marked as capturing (eager dropout then raises). ``_clean_up`` undoes each of these, each step on its own,
ignoring a step that finds nothing to undo. The torch calls come in as ``cuda`` and ``allocator``
(default ``torch.cuda`` and ``torch._C``), so a test can make any stage fail on a machine without CUDA.

``run_uncaptured`` is the same contract without a graph: each "replay" runs the function again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import torch


class Graph(Protocol):
    def replay(self) -> None: ...

    def pool(self) -> Any: ...


Capture = Callable[[Callable[[], None], Any, Any], Graph]  # capture(fn, pool, stream) -> graph


def capture_cuda_graph(
    fn: Callable[[], None], pool: Any, stream: Any, *, cuda: Any = None, allocator: Any = None
) -> Graph:
    """``fn``'s CUDA work captured into a ``torch.cuda.CUDAGraph`` on ``stream`` (the warm-up stream),
    sharing the memory pool ``pool`` of an earlier capture (None: a new pool). A failure at any stage
    is raised after the process is put back as it was (``_clean_up``)."""
    cuda = cuda or torch.cuda
    before = cuda.current_stream()
    rng = cuda.get_rng_state()  # the default generator's state, put back if the capture fails
    graph = None
    try:
        graph = cuda.CUDAGraph()
        with cuda.graph(graph, pool=pool, stream=stream):  # (syncs the device on entry: setup only)
            fn()
    except BaseException:
        _clean_up(cuda, allocator or torch._C, graph, stream, rng)
        raise
    finally:  # a capture that CUDA refused raises in capture_end, before the context puts the stream back
        cuda.set_stream(before)
    return graph


def _clean_up(cuda: Any, allocator: Any, graph: Any, stream: Any, rng: Any) -> None:
    """Undo what a failed capture may have left, each step on its own (one that finds nothing raises,
    and is ignored)."""
    if graph is None:
        return
    with contextlib.suppress(Exception), cuda.stream(stream):
        if cuda.is_current_stream_capturing():  # fn raised and the capture is still open: end it
            graph.capture_end()
    device = getattr(stream, "device", None)
    index = device.index if device is not None and device.index is not None else cuda.current_device()
    ended = False
    with contextlib.suppress(Exception):
        pool = graph.pool()
        # the allocator still routes this stream's allocations to the graph's pool: stop that. If
        # capture_end got as far as doing it, this raises ("not currently recording") and the pool is
        # the graph's to release (reset below); if not, the pool is released here
        allocator._cuda_endAllocateToPool(index, pool)
        ended = True
    if ended:
        with contextlib.suppress(Exception):
            allocator._cuda_releasePool(index, pool)
    with contextlib.suppress(Exception):
        graph.reset()
    with contextlib.suppress(Exception):
        cuda.set_rng_state(rng)  # the default generator, out of its capture state


class _Uncaptured:
    """A stand-in for a graph: each replay runs the function again (same ops, eager)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def replay(self) -> None:
        self.fn()

    def pool(self) -> None:
        return None


def run_uncaptured(fn: Callable[[], None], pool: Any, stream: Any) -> Graph:
    """A ``Capture`` that captures nothing: the runner's arithmetic, op for op, run eagerly."""
    return _Uncaptured(fn)
