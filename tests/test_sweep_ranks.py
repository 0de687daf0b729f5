"""A sweep split across ranks (devicelab.sweep.ranks): the ranks' shares of a group merge back into the
one-process group, in model-index order."""

from __future__ import annotations

import csv
import dataclasses
import subprocess

import numpy as np
import pytest
import torch

from devicelab.sweep import Grid, run_sweep
from devicelab.sweep.ranks import gather_groups, merge_groups
from devicelab.training import distributed
from devicelab.training.config import TrainConfig


def rank_part(group, rank: int, world: int):
    """Rank ``rank``'s share of ``group``, as that rank would have trained it."""
    rows = list(range(rank, len(group.specs), world))
    return dataclasses.replace(
        group,
        specs=tuple(group.specs[i] for i in rows),
        losses=group.losses[rows],
        log_metrics=group.log_metrics[:, rows],
        params=[p[rows] for p in group.params],
        first_buffers=[b[rows] for b in group.first_buffers],
        second_buffers=[b[rows] for b in group.second_buffers],
    )


def test_the_ranks_shares_merge_back_into_the_group():
    base = TrainConfig(epochs=40, device="cpu", threads=1, quiet=True, log_every=10, optimizer="adam")
    grid = Grid(lrs=(0.01, 0.1), seeds=(1, 2, 3), hiddens=((6,),))
    (group,) = run_sweep(base, grid, layout="bmm").groups
    specs = [s.index for s in group.specs]
    assert [s.index for s in distributed.split(group.specs, 1, 2)] == specs[1::2]
    for world in (2, 4):
        merged = merge_groups([rank_part(group, r, world) for r in range(world)][::-1])  # any order
        assert [s.index for s in merged.specs] == specs
        np.testing.assert_array_equal(merged.losses, group.losses)
        np.testing.assert_array_equal(merged.log_metrics, group.log_metrics)
        for a, b in zip(
            merged.params + merged.first_buffers, group.params + group.first_buffers, strict=True
        ):
            assert torch.equal(a, b)
        assert merged.status == "completed" and merged.log_epochs == group.log_epochs


def test_a_rank_stopped_earlier_keeps_the_log_points_all_reached():
    base = TrainConfig(epochs=30, device="cpu", threads=1, quiet=True, log_every=10)
    (group,) = run_sweep(base, Grid(lrs=(0.01,), seeds=(1, 2), hiddens=((4,),)), layout="bmm").groups
    first, second = rank_part(group, 0, 2), rank_part(group, 1, 2)
    cut = dataclasses.replace(
        second, status="interrupted", epochs_done=20, log_epochs=(10, 20), log_metrics=second.log_metrics[:2]
    )
    merged = merge_groups([first, cut])
    assert merged.status == "interrupted" and merged.epochs_done == 20 and merged.log_epochs == (10, 20)
    assert merged.log_metrics.shape[:2] == (2, 2) and np.isnan(merged.losses[:, 20:]).all()


def test_outside_torchrun_the_groups_are_this_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert gather_groups(["g0", None, "g2"]) == ["g0", "g2"]


def test_two_processes_give_the_one_process_results_csv(tmp_path):
    """`devicelab sweep` under torchrun (2 Gloo processes on 127.0.0.1): each rank trains half of every
    shape's models, rank 0 gathers them and writes the one folder, whose results.csv and losses are the
    one-process sweep's."""
    from conftest import run_cli
    from test_train_torchrun import ENV, torchrun_command

    args = ["--lr", "0.01,0.1", "--seeds", "1-3", "--hidden", "6", "4,4", "--epochs", "100", "--log-every", "25",
            "--device", "cpu", "--layout", "bmm", "--quiet"]  # fmt: skip
    one = run_cli("sweep", *args, "--runs-dir", "one", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr[-2000:]
    command = torchrun_command(*args, "--runs-dir", "two")
    command[command.index("train")] = "sweep"
    two = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    (folder_one,), (folder_two,) = (list((tmp_path / d).iterdir()) for d in ("one", "two"))  # rank 0's only
    rows_one, rows_two = (
        list(csv.DictReader((f / "results.csv").read_text().splitlines())) for f in (folder_one, folder_two)
    )
    assert len(rows_one) == len(rows_two) == 12
    for a, b in zip(rows_one, rows_two, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            try:
                assert float(b[key]) == pytest.approx(float(a[key]), abs=1e-5), key
            except ValueError:  # a text column (hidden, status) or an empty cell
                assert a[key] == b[key], key
    np.testing.assert_allclose(
        np.load(folder_two / "losses.npy"), np.load(folder_one / "losses.npy"), rtol=0, atol=1e-5
    )
