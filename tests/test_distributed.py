"""devicelab.training.distributed without processes: the ranks' shares of every batch make up the
one-process batch, their loss scales make up its mean, and torchrun's environment is read in one place."""

from __future__ import annotations

import itertools

import pytest
import torch

from devicelab.errors import UserError
from devicelab.training import distributed
from devicelab.training.config import TrainConfig
from devicelab.training.epoch import make_epoch
from devicelab.training.interrupt import StopFlag


class Loss:
    scale = 1.0


def recording_step(seen: list, loss: Loss):
    def step(x, y, losses, i):
        seen.append((y.clone(), loss.scale))
        losses[i] = 0.0

    return step


@pytest.mark.parametrize(
    ("n", "batch", "world"), [(120, None, 2), (121, None, 3), (120, 15, 2), (106, 10, 4)]
)
def test_the_ranks_shares_make_up_every_one_process_batch(n, batch, world):
    x, y = torch.randn(n, 3), torch.arange(n)
    expected: list = []
    make_epoch(
        recording_step(expected, Loss()), x, y, torch.zeros(1), batch, torch.Generator().manual_seed(5)
    )(0)
    shares = []
    for rank in range(world):
        seen: list = []
        loss = Loss()
        epoch = distributed.make_ddp_epoch(
            recording_step(seen, loss), loss, x, y, torch.zeros(1), batch, torch.Generator().manual_seed(5),
            rank, world,
        )  # fmt: skip
        epoch(0)
        shares.append(seen)
    for j, (rows, _) in enumerate(expected):
        parts = [share[j] for share in shares]
        assert torch.equal(torch.cat([p[0] for p in parts]), rows)  # rank order, contiguous slices
        # DDP averages the gradients: sum_r(scale_r * mean over rank r's rows) / world is the batch mean
        # exactly when scale_r = rows_r * world / rows
        for p_rows, scale in parts:
            assert scale == pytest.approx(len(p_rows) * world / len(rows))
        if len(rows) % world == 0:
            assert all(scale == 1.0 for _, scale in parts)  # equal shares: the loss is not touched


def test_a_batch_too_small_for_the_ranks_is_one_clear_error():
    x, y = torch.randn(9, 2), torch.arange(9)
    with pytest.raises(UserError, match="last mini-batch"):
        distributed.make_ddp_epoch(
            lambda *a: None, Loss(), x, y, torch.zeros(1), 4, torch.Generator(), 0, 2
        )  # 9 rows in 4s: a last batch of 1 for 2 ranks


def test_shards_and_splits_cover_everything_once():
    for n, world in [(10, 3), (2, 2), (7, 1)]:
        bounds = [distributed.shard(n, r, world) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    items = list(range(11))
    assert sorted(i for r in range(3) for i in distributed.split(items, r, 3)) == items


def test_torchruns_environment_is_read_in_one_place(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and distributed.rank_world() == (0, 1) and distributed.is_main()
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]  # no process group: this process's
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launched() and distributed.rank_world() == (3, 4) and not distributed.is_main()
    assert distributed.split(list(range(10))) == [3, 7]
    choice = distributed.device_choice(TrainConfig(device="cpu"))
    assert (choice.device, choice.threads) == ("cpu", 1) and "rank 3 of 4" in choice.reason
    with pytest.raises(UserError, match=r"cpu \(Gloo\) or cuda \(NCCL\)"):
        distributed.device_choice(TrainConfig(device="mps"))


def test_a_rank_that_stopped_is_named_with_the_checkpoint(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    error = RuntimeError("[gloo/transport/tcp/pair.cc:538] Connection closed by peer [127.0.0.1]:4242")
    assert distributed.is_rank_failure(error)
    assert not distributed.is_rank_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    line = distributed.rank_stopped(error, "runs/x").one_line()
    assert line.startswith("rank 1 stopped: ") and "the last checkpoint is in runs/x" in line


def test_a_stop_asked_on_one_rank_stops_every_rank(monkeypatch):
    """LogReduce carries the stop request in its one all_reduce (here a stand-in that adds a rank that
    was asked to stop and has the same values)."""

    def all_reduce(tensor):
        other = tensor.clone()
        other[-1] = 1.0  # the other rank was asked to stop
        tensor += other

    monkeypatch.setattr(distributed.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(distributed.dist, "all_reduce", all_reduce)
    flag = StopFlag()
    host = distributed.LogReduce(flag)(torch.tensor([0.5, 0.25, 0.75]))
    assert host.tolist() == [0.5, 0.25, 0.75]  # the same values on both ranks: their mean
    assert flag.requested
