"""`devicelab profile` on CUDA: event timing without syncs, the CUDA sync audit, GPU busy time."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from conftest import line_of
from devicelab.profile import hooks, loops, phases, sync_audit
from devicelab.profile.clocks import EventClock, clock_for
from devicelab.profile.layers import profile_layers
from devicelab.training import epoch as train_epoch
from devicelab.training import loop as train_loop
from devicelab.training import step as train_step
from devicelab.training.loop import train
from devicelab.training.workload import build_workload

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def test_event_timing_in_hooks_never_syncs():
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 8)).to(CUDA)
    x = torch.randn(512, 64, device=CUDA, requires_grad=True)
    clock = clock_for(CUDA)
    assert isinstance(clock, EventClock)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any sync inside the block raises
    try:
        with hooks.attach(model, clock=clock, forward=True, backward=True) as tapes:
            for _ in range(3):
                model(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(len(t.forward) == 3 and len(t.backward) == 3 for t in tapes.values())
    times = [clock.seconds(a, b) for t in tapes.values() for a, b in t.forward + t.backward]
    assert all(t > 0 for t in times)


def test_layer_table_on_cuda(seed):
    config, dataset = seed
    work = build_workload(config, dataset, CUDA)
    profile = profile_layers(work.model, work.x, loss=lambda out: work.loss_fn(out, work.y), steps=5)
    assert profile.clock == "cuda_events"
    rows = {layer.name: layer for layer in profile.layers}
    assert [(n, r.output_shape, r.params, r.macs) for n, r in rows.items()] == [
        ("fc1", (120, 10), 50, 4800),
        ("relu", (120, 10), 0, 0),
        ("fc2", (120, 3), 33, 3600),
    ]
    assert all(r.forward_s > 0 and r.backward_s > 0 for r in (*profile.layers, profile.total))
    for module in work.model.modules():
        assert not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)


def test_cuda_audit_of_the_lesson_loop(seed):
    config, dataset = seed
    warm = build_workload(config, dataset, CUDA)
    loops.lesson_loop(
        warm.model, warm.loss_fn, warm.torch_optimizer(), warm.x, warm.y, 2
    )  # first-call allocations
    w = build_workload(config, dataset, CUDA)
    result = sync_audit.audit(
        "lesson", lambda: loops.lesson_loop(w.model, w.loss_fn, w.torch_optimizer(), w.x, w.y, 20), CUDA, 20
    )
    assert result.detectors == ("calls", "cuda")
    item_line = line_of(loops.lesson_loop, "losses.append(loss.item())")
    by_kind = {(s.line, s.kind): s.count for s in result.sites}
    assert by_kind == {(item_line, ".item()"): 20}  # CUDA reports each too, but one sync is counted once
    assert result.total() == 20


def test_cuda_audit_of_devicelab_training_finds_no_sync_in_the_epoch_loop(seed):
    """The real ``devicelab.train`` on CUDA: one read per log point; any other sync (the one-time copies
    of the data to the device) does not grow with the number of epochs."""
    config, dataset = seed
    run = replace(config, log_every=5, device="cuda:0", threads=1, quiet=True)
    train(replace(run, epochs=2), dataset=dataset)  # first-call allocations
    audits = {
        n: sync_audit.audit("devicelab", lambda n=n: train(replace(run, epochs=n), dataset=dataset), CUDA, n)
        for n in (20, 40)
    }
    loop_files = {inspect.getsourcefile(m) for m in (train_step, train_epoch, train_loop)}
    others = {}
    for n, result in audits.items():
        read = [s for s in result.sites if s.function == "_copy_to_host" and s.kind == ".cpu()"]
        assert len(read) == 1 and read[0].count == n // 5  # one per log point
        assert not [s for s in result.sites if s.file in loop_files]
        others[n] = sorted((s.file, s.line, s.kind, s.count) for s in result.sites if s not in read)
    assert others[20] == others[40]


def test_cuda_audit_sees_syncs_no_wrapped_call_makes():
    x = torch.randn(1000, device=CUDA)
    line = inspect.currentframe().f_lineno

    def masked():
        return x[x > 0]  # boolean-mask indexing: the result's size needs the data

    result = sync_audit.audit("mask", masked, CUDA, 1)
    assert [(s.line - line, s.kind) for s in result.sites if s.count] == [(3, sync_audit.CUDA_KIND)]
    assert torch.cuda.get_sync_debug_mode() == 0  # put back


def test_step_breakdown_on_cuda(seed):
    config, dataset = seed
    result = phases.step_breakdown(build_workload(config, dataset, CUDA), steps=10)
    assert all(p.device_s is not None and p.device_s > 0 for p in result.phases if p.name != "other")
    assert result.launches.kernels > 0
    # busy time and step time are timed in different runs: no bound on their ratio (no timed asserts)
    assert result.launches.gpu_busy_s > 0 and result.gpu_busy_fraction > 0


def test_cli_on_cuda(cli, tmp_path):
    result = cli("profile", "--device", "cuda", "--steps", "5", "--plot", "out")
    assert result.returncode == 0, result.stderr
    assert "GPU:" in result.stdout and "CUDA events" in result.stdout
    report = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert report["step"]["kernels_per_step"] > 0
    assert report["sync_audit"][0]["detectors"] == ["calls", "cuda"]


def test_a_watched_training_on_cuda_times_every_layers_backward():
    """The autograd engine runs a CUDA device's backward nodes (the module hooks' among them) on a thread
    of its own: the layer table still has every layer's backward, the first layer's included."""
    import devicelab

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)).to(CUDA)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(256, 16, device=CUDA), torch.randint(0, 4, (256,), device=CUDA)
    with devicelab.watch(warmup=1, steps=3) as w:
        for _ in range(15):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    layers = w.report().layers
    assert layers.clock == "cuda_events"
    assert all(r.backward_s is not None and r.backward_s > 0 for r in layers.layers), layers.layers
