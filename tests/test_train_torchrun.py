"""devicelab train under torchrun (2 processes, Gloo on the CPU, rendezvous on 127.0.0.1): the loss history
of one process, one run folder written by rank 0, a rank that dies ends the job with one line from
rank 0 and a checkpoint that resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from devicelab.training.config import TrainConfig
from devicelab.training.loop import train

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="torchrun's Gloo rendezvous, on POSIX")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(*args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
        "--master-addr=127.0.0.1", f"--master-port={free_port()}", "-m", "devicelab", "train", *args,
    ]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "DEVICELAB_DIST_TIMEOUT": "60"}


def torchrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        torchrun_command(*args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )


def one_process(**options) -> np.ndarray:
    """The reference: the same run in this process, on the eager step."""
    config = TrainConfig(device="cpu", fast="off", threads=1, quiet=True, **options)
    return train(config).losses


def only_folder(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if not p.name.startswith(".")]  # rank 0 alone writes: one folder
    return folder


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"epochs": 200}, id="full-batch"),
        # 120 rows in batches of 15: each rank takes 7 or 8 rows of each (unequal shares, weighted); Adam
        pytest.param(
            {"epochs": 60, "batch_size": 15, "optimizer": "adam", "lr": 0.005}, id="mini-batch-adam"
        ),
    ],
)
def test_two_processes_give_the_one_process_loss_history(tmp_path, options):
    args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    done = torchrun(tmp_path, *args, "--device=cpu", "--log-every=20", "--quiet")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    folder = only_folder(tmp_path / "runs")
    assert done.stdout.count("run folder") == 1  # rank 0 alone prints
    losses = np.load(folder / "losses.npy")
    np.testing.assert_allclose(losses, one_process(log_every=20, **options), rtol=0, atol=1e-5)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["distributed"] == {"world_size": 2}
    assert summary["step"]["reason"].startswith("DDP:")
    assert summary["data"]["mode"] == "device"
    assert summary["host_syncs"] == options["epochs"] // 20  # one per log point, none per step


def test_a_rank_that_dies_ends_the_job_with_one_line_and_a_checkpoint_that_resumes(tmp_path):
    psutil = pytest.importorskip("psutil")
    args = ("--device=cpu", "--epochs=1000000", "--log-every=20", "--checkpoint-every=0", "--quiet")
    job = subprocess.Popen(
        torchrun_command(*args),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "runs").glob("*/last.ckpt")) and time.monotonic() < deadline:
            assert job.poll() is None, job.communicate()
            time.sleep(0.2)
        ranks = {
            p.environ().get("RANK"): p
            for p in psutil.Process(job.pid).children(recursive=True)
            if p.is_running()
        }
        ranks["1"].send_signal(signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    folder = only_folder(tmp_path / "runs")
    lines = [line for line in stderr.splitlines() if line.startswith("devicelab: error:")]
    assert len(lines) == 1, stderr[-3000:]  # rank 0's; rank 1 was killed
    assert (
        "rank 1 stopped" in lines[0]
        and f"the last checkpoint is in {folder.relative_to(tmp_path)}" in lines[0]
    )
    assert "Traceback" not in stderr.split("devicelab: error:")[0][-2000:]  # ours is one line, not a trace

    from devicelab.training.resume import load_checkpoint

    saved = load_checkpoint(folder)  # the last log point's checkpoint is readable
    assert saved.epochs_done % 20 == 0 and saved.epochs_done > 0
    more = saved.epochs_done + 40
    resumed = torchrun(tmp_path, "--resume", str(folder), f"--epochs={more}", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (new,) = [p for p in (tmp_path / "runs").iterdir() if p != folder and not p.name.startswith(".")]
    losses = np.load(new / "losses.npy")
    assert losses.shape == (more,) and np.isfinite(losses).all()
    np.testing.assert_array_equal(losses[: saved.epochs_done], saved.losses)


def test_nproc_runs_the_same_under_torchrun_on_this_machine(cli, tmp_path):
    done = cli("train", "--nproc", "2", "--device", "cpu", "--epochs", "40", "--log-every", "20", "--quiet",
               env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    assert "processes:" in done.stdout and done.stdout.count("run folder") == 1
    losses = np.load(only_folder(tmp_path / "runs") / "losses.npy")
    np.testing.assert_allclose(losses, one_process(epochs=40, log_every=20), rtol=0, atol=1e-5)


def test_max_restarts_continues_from_the_last_checkpoint_without_a_person(tmp_path):
    """torchrun --max-restarts 1: the worker is killed after a checkpoint; torchrun starts the same command
    again, which continues that checkpoint; the losses are those of a run that was never killed."""
    import psutil

    # 1500 epochs of 8 steps: the worker is still training when it is killed after its first checkpoint
    args = ("--device", "cpu", "--epochs", "1500", "--log-every", "100", "--checkpoint-every", "0")
    args += ("--optimizer", "adam", "--lr", "0.005", "--batch-size", "16", "--quiet", "--name", "job")
    command = torchrun_command(*args, nproc=1)
    command.insert(3, "--max-restarts=1")
    agent = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first = tmp_path / "runs" / "job"
    deadline = time.monotonic() + 120
    while not (first / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [
        p for p in psutil.Process(agent.pid).children(recursive=True) if "devicelab" in " ".join(p.cmdline())
    ]
    assert workers and (first / "last.ckpt").exists()
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
    _, err = agent.communicate(timeout=300)
    assert agent.returncode == 0, err
    resumed = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("job") and p != first]
    (second,) = resumed
    summary = json.loads((second / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from"] == str(first.resolve())
    expected = one_process(epochs=1500, optimizer="adam", lr=0.005, batch_size=16)
    np.testing.assert_allclose(np.load(second / "losses.npy"), expected, rtol=1e-5, atol=1e-7)


def test_a_torchrun_attempt_notes_its_folder_before_its_first_checkpoint(tmp_path, monkeypatch):
    """The note a restart reads is written when the folder is made: an attempt killed right after its
    first checkpoint (before, the note came after it: a kill in between started the job afresh) is
    continued; a later attempt that died before any checkpoint leaves the one before it to continue."""
    from devicelab.cli import main
    from devicelab.training import elastic

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job 1")
    runs = tmp_path / "runs"
    # 20 epochs, no checkpoint due (the default interval is seconds): the folder is noted all the same
    assert (
        main(["train", "--epochs", "20", "--quiet", "--runs-dir", str(runs), "--name", "a", "--threads", "1"])
        == 0
    )
    note = runs / elastic.NOTES / "job-1"
    assert note.read_text().splitlines() == [str((runs / "a").resolve())]
    assert elastic.folder_to_continue(runs) is None  # a first attempt never continues anything
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    assert elastic.folder_to_continue(runs) == (runs / "a").resolve()  # its saved state
    later = runs / "b"
    later.mkdir()
    elastic.remember(runs, later)  # an attempt that died before its first checkpoint
    assert elastic.folder_to_continue(runs) == (runs / "a").resolve()
    (later / "last.ckpt").write_bytes(b"")
    assert elastic.folder_to_continue(runs) == later.resolve()
