"""Under NCCL, a rank that dies ends the job within seconds, with the one line Gloo gives.

Why a side channel. Gloo runs its collectives on the host over TCP: when a rank dies, its closed socket
fails the next collective of every other rank at once, and rank 0 says so in one line
(``distributed.rank_stopped``). NCCL's collectives run on the GPU; the host only enqueues them. When a
peer on the same machine dies (NVLink or PCIe: no connection to close), NCCL's kernels wait for it, the
GPU stops, and each live rank's host blocks in its next launch or read, inside C code where no Python
signal handler runs (not even the SIGTERM torchrun sends when a worker dies); NCCL's watchdog aborts the
process only at the collective timeout (300 s), with SIGABRT. Of the ways out: NCCL's async error
handling acts only at that timeout; a monitored barrier at log points runs on the main thread, which
never reaches the log point once the GPU has stopped. A thread does not block with it.

So each rank writes a heartbeat (a counter) into the job's store (torchrun's TCP store) every
``HEARTBEAT_S``, and a thread in each rank reads the others'. A rank whose counter stands still for
``SILENT_S``, or a store that cannot be reached, has stopped: the thread says the one line (rank 0 names
the last checkpoint; the other ranks say nothing, as under Gloo) and ends the process with status 2
(``os._exit``: the main thread is blocked in CUDA and cannot unwind).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HEARTBEAT_S = 0.5
SILENT_S = 10.0  # a live rank's thread beats whatever its main thread does; 20 missed beats: it is gone
WATCH_ENV = "DEVICELAB_RANK_WATCH"  # "1": watch under Gloo too (tests on a CPU); "0": never


class RankWatch:
    """The heartbeat and the watch of one rank. ``on_stop(detail, who)`` is called once, from the thread,
    when another rank stopped (``who``: its number, or None when the store itself went away)."""

    def __init__(
        self,
        store,
        rank: int,
        world: int,
        on_stop: Callable[[str, int | None], None],
        *,
        heartbeat_s: float = HEARTBEAT_S,
        silent_s: float = SILENT_S,
    ) -> None:
        self.store, self.rank, self.world, self.on_stop = store, rank, world, on_stop
        self.heartbeat_s, self.silent_s = heartbeat_s, silent_s
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devicelab-rank-watch", daemon=True)

    def start(self) -> RankWatch:
        self._beat(0)
        self._thread.start()
        return self

    def close(self) -> None:
        """This rank is done: it stops beating, and says so, so that no other rank takes it for dead."""
        self._closing.set()
        self._thread.join()
        with contextlib.suppress(Exception):
            self.store.set(f"devicelab/done/{self.rank}", "1")

    def _beat(self, count: int) -> None:
        self.store.set(f"devicelab/beat/{self.rank}", str(count))

    def _run(self) -> None:
        others = [r for r in range(self.world) if r != self.rank]
        seen = {r: (None, time.monotonic()) for r in others}
        count = 0
        while not self._closing.wait(self.heartbeat_s):
            count += 1
            try:
                self._beat(count)
                for r in others:
                    value = (
                        self.store.get(f"devicelab/beat/{r}")
                        if self.store.check([f"devicelab/beat/{r}"])
                        else None
                    )
                    last, since = seen[r]
                    if value != last:
                        seen[r] = (value, time.monotonic())
                    elif time.monotonic() - since > self.silent_s and not self._done(r):
                        return self._stopped(f"no sign of life from it for {self.silent_s:.0f} s", r)
            except Exception as error:  # the store's host (torchrun's agent, or rank 0) is gone
                if not self._closing.is_set():
                    return self._stopped(f"the job's store cannot be reached ({type(error).__name__})", None)
                return None
        return None

    def _done(self, rank: int) -> bool:
        return self.store.check([f"devicelab/done/{rank}"])

    def _stopped(self, detail: str, who: int | None) -> None:
        if not self._closing.is_set():
            self.on_stop(detail, who)


def end_job(rank: int, world: int, folder: Callable[[], Path | None]) -> Callable[[str, int | None], None]:
    """What the watch does when a rank stopped: rank 0 prints the one line Gloo's error gives, then every
    rank ends with status 2."""

    def stop(detail: str, who: int | None) -> None:
        if rank == 0:
            from devicelab.training.distributed import rank_stopped

            error = rank_stopped(RuntimeError(detail), folder())
            print(f"devicelab: error: {error.one_line()}", file=sys.stderr, flush=True)
        os._exit(2)  # the main thread may be blocked in CUDA: no unwinding, the driver frees the GPU

    return stop


@contextlib.contextmanager
def watch_ranks(device_type: str, folder: Callable[[], Path | None]) -> Iterator[RankWatch | None]:
    """The watch for this torchrun job's run: on for NCCL (CUDA), off for Gloo, whose own errors are
    immediate (``DEVICELAB_RANK_WATCH``: 1 on, 0 off, for tests)."""
    import torch.distributed as dist

    asked = os.environ.get(WATCH_ENV)
    on = asked == "1" or (asked != "0" and device_type == "cuda")
    store = _store() if on and dist.is_initialized() else None
    if store is None:
        yield None
        return
    rank, world = dist.get_rank(), dist.get_world_size()
    watch = RankWatch(store, rank, world, end_job(rank, world, folder)).start()
    try:
        yield watch
    finally:
        watch.close()


def _store():
    """The default process group's store (torchrun's TCP store), or None where torch does not say."""
    from torch.distributed import distributed_c10d

    with contextlib.suppress(Exception):
        return distributed_c10d._get_default_store()
    return None
