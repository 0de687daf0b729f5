"""Rows streamed from host memory (devicelab.training.stream) give the in-memory epoch's batches and
losses; the mode is decided from the device's free memory and said."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.epoch import make_epoch
from devicelab.training.runner import select_runner
from devicelab.training.stream import choose_data_mode, make_stream_epoch
from devicelab.training.workload import build_workload


def recording_step(seen: list):
    def step(x, y, losses, i):
        seen.append((x.clone(), y.clone()))
        losses[i] = x.sum()

    return step


@pytest.mark.parametrize(("n", "batch", "chunk"), [(103, 10, 3), (100, 10, 5), (7, 10, 1), (120, 16, 1)])
def test_streamed_chunks_cut_the_in_memory_batches(n, batch, chunk):
    x = torch.randn(n, 4)
    y = torch.arange(n)
    expected, got = [], []
    runs = (
        make_epoch(recording_step(expected), x, y, torch.zeros(3), batch, torch.Generator().manual_seed(7)),
        make_stream_epoch(
            recording_step(got),
            x,
            y,
            torch.zeros(3),
            batch,
            torch.Generator().manual_seed(7),
            x.device,
            chunk,
        ),
    )
    for run in runs:
        for i in range(3):
            run(i)
    assert len(got) == len(expected) == 3 * -(-n // batch)
    for (xe, ye), (xg, yg) in zip(expected, got, strict=True):
        assert torch.equal(xe, xg) and torch.equal(ye, yg)


def test_streamed_training_gives_the_in_memory_losses(seed):
    _, dataset = seed
    config = TrainConfig(epochs=60, batch_size=16)
    device = torch.device("cpu")
    in_memory = build_workload(config, dataset, device)
    streamed = build_workload(config, dataset, device, data="stream")
    assert (in_memory.data_mode, streamed.data_mode) == ("device", "streamed")
    many = build_workload(config, dataset, device, data="stream")  # 16-row batches in 2-batch chunks
    many = dataclasses.replace(
        many,
        run_epoch=make_stream_epoch(many.step, many.x_train, many.y_train, many.losses, 16, many.generator,
                                    device, chunk_batches=2),
    )  # fmt: skip
    for work in (in_memory, streamed, many):
        for i in range(config.epochs):
            work.run_epoch(i)
    torch.testing.assert_close(streamed.losses, in_memory.losses, rtol=0, atol=1e-6)
    torch.testing.assert_close(many.losses, in_memory.losses, rtol=0, atol=1e-6)
    assert len(set(in_memory.losses.tolist())) > 50  # it trained


def test_streamed_rows_take_the_eager_step_and_say_why(seed):
    _, dataset = seed
    config = TrainConfig(epochs=5, batch_size=16, fast="on")
    work = build_workload(config, dataset, torch.device("cpu"), data="stream")
    runner, why = select_runner(work, config)
    assert runner.name == "eager"
    assert "streamed from host memory" in why


GB = 10**9


def fake_free(n_bytes: int):
    return lambda device: n_bytes


def test_the_mode_follows_the_free_memory():
    cuda = torch.device("cuda", 0)
    fits = choose_data_mode(3 * GB, cuda, 1024, free_bytes=fake_free(8 * GB))
    assert fits.mode == "device" and "fit" in fits.reason
    big = choose_data_mode(5 * GB, cuda, 1024, free_bytes=fake_free(8 * GB))
    assert big.streamed and "5.00 GB" in big.reason and "8.00 GB" in big.reason
    assert choose_data_mode(5 * GB, torch.device("cpu"), 1024).mode == "device"  # nothing to stream
    assert choose_data_mode(5 * GB, cuda, 1024, "device", free_bytes=fake_free(1)).mode == "device"
    assert choose_data_mode(1, torch.device("cpu"), 16, "stream").streamed


def test_streaming_needs_mini_batches():
    with pytest.raises(UserError, match="--batch-size"):
        choose_data_mode(5 * GB, torch.device("cuda", 0), None, free_bytes=fake_free(8 * GB))


@pytest.mark.gpu
def test_the_pinned_side_stream_path_gives_the_device_epochs_batches():
    """On a GPU: chunks gathered into pinned memory and copied on a side stream train exactly as the
    same permutation's batches taken from device-resident rows."""
    device = torch.device("cuda", 0)
    torch.manual_seed(0)
    x, y = torch.randn(1000, 8), torch.randint(0, 3, (1000,))
    results = []
    for streamed in (False, True):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).to(
            device
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(xb, yb, losses, i, model=model, opt=opt, loss_fn=loss_fn):
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[i] = loss.detach()

        losses = torch.zeros(5, device=device)
        generator = torch.Generator().manual_seed(3)  # the shuffle on the host in both
        if streamed:
            epoch = make_stream_epoch(step, x, y, losses, 64, generator, device, chunk_batches=3)
        else:
            xd, yd = x.to(device), y.to(device)
            batch_losses = torch.zeros(16, device=device)
            weights = torch.tensor([min(64, 1000 - s) / 1000 for s in range(0, 1000, 64)], device=device)

            def epoch(i, xd=xd, yd=yd, bl=batch_losses, w=weights, losses=losses, g=generator):
                order = torch.randperm(1000, generator=g).to(device)
                for j, s in enumerate(range(0, 1000, 64)):
                    rows = order[s : s + 64]
                    step(xd.index_select(0, rows), yd.index_select(0, rows), bl, j)
                losses[i] = torch.dot(bl, w)

        for i in range(5):
            epoch(i)
        results.append(losses.cpu())  # sync: read once at the end
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_chunks_are_copied_from_pinned_memory_on_a_side_stream(monkeypatch):
    from devicelab.training.stream import HostToDevice

    device = torch.device("cuda", 0)
    copier = HostToDevice(device)
    assert copier.stream != torch.cuda.current_stream(device)
    pinned = []
    original = torch.Tensor.to

    def spy(self, *args, **kwargs):
        if self.device.type == "cpu":
            pinned.append((self.is_pinned(), kwargs.get("non_blocking"), torch.cuda.current_stream(device)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    x, y = torch.randn(50, 4), torch.arange(50)
    rows = torch.randperm(50)[:20]
    xd, yd = copier.ready(copier.start(x, y, rows))
    assert pinned and all(p and nb and s == copier.stream for p, nb, s in pinned)
    torch.testing.assert_close(xd.cpu(), x[rows])
    assert torch.equal(yd.cpu(), y[rows])
