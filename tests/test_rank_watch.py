"""Under NCCL a dead rank ends the job within seconds (devicelab.training.rank_watch). The watch runs on
the job's store whatever the backend: here two ranks' watches share an in-memory store, and one rank
dies (its heartbeat stops without it saying it is done)."""

from __future__ import annotations

import threading
import time

import pytest

dist = pytest.importorskip("torch.distributed")

from devicelab.training.rank_watch import RankWatch  # noqa: E402


def watches(store, **timing):
    said, done = [], threading.Event()

    def on_stop(detail, who):
        said.append((detail, who))
        done.set()

    zero = RankWatch(store, 0, 2, on_stop, **timing).start()
    one = RankWatch(store, 1, 2, on_stop, **timing).start()
    return zero, one, said, done


def test_a_rank_that_stops_beating_is_seen_within_seconds():
    zero, one, said, done = watches(dist.HashStore(), heartbeat_s=0.05, silent_s=0.5)
    one._closing.set()  # rank 1 dies: its beats stop, and it never says it is done
    one._thread.join()
    began = time.monotonic()
    assert done.wait(5), "rank 0 did not notice"
    assert time.monotonic() - began < 2
    assert len(said) == 1 and said[0][1] == 1 and said[0][0].startswith("no sign of life from it")
    zero.close()


def test_ranks_that_finish_are_not_taken_for_dead():
    zero, one, said, _ = watches(dist.HashStore(), heartbeat_s=0.05, silent_s=0.3)
    time.sleep(0.3)
    one.close()  # rank 1 finished first: it says so
    time.sleep(0.8)  # longer than silent_s
    zero.close()
    assert said == []


def test_the_one_line_is_the_one_gloo_gives(tmp_path, capsys):
    from devicelab.training.distributed import rank_stopped

    line = rank_stopped(RuntimeError("no sign of life from it for 10 s"), tmp_path).one_line()
    assert "stopped: no sign of life from it for 10 s; the last checkpoint is in" in line


def test_a_torchrun_job_with_the_watch_on_runs_to_its_end(tmp_path):
    """The watch (forced on under Gloo) takes no live rank for dead: the job completes."""
    import subprocess

    from test_train_torchrun import ENV, torchrun_command

    args = ("--device=cpu", "--epochs=60", "--log-every=20", "--checkpoint-every=0", "--quiet")
    env = {**ENV, "DEVICELAB_RANK_WATCH": "1"}
    done = subprocess.run(
        torchrun_command(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run folder") == 1 and "stopped" not in done.stderr
