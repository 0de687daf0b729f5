"""The profiler on scripts written in many styles (tests/data/scripts/), run unchanged in this process,
each checked against a reference measured beside it: a plain counter of the sync calls, the model's own
shapes and parameters, a count the script keeps itself."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
import torch

import devicelab
from devicelab.profile import api, script
from devicelab.profile.record import Profiled, build
from devicelab.profile.watch import Watch

SCRIPTS = Path(__file__).parent / "data" / "scripts"


def line_with(name: str, fragment: str) -> int:
    (line,) = [i for i, text in enumerate((SCRIPTS / name).read_text().splitlines(), 1) if fragment in text]
    return line


@pytest.fixture
def in_scripts(monkeypatch, one_thread):
    monkeypatch.chdir(SCRIPTS)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script's folder goes first, as python puts it


def profile(name: str, *args: str, warmup: int = 2, steps: int = 5, stop_after: bool = True):
    program = script.check("script", name, args)
    return api.profile_program(program, warmup=warmup, steps=steps, stop_after=stop_after)


def counted_syncs(name: str, n_steps: int, *args: str) -> collections.Counter:
    """The reference: a plain counter of ``Tensor.item`` calls by the script's line, over its first
    ``n_steps`` optimizer steps (a plain optimizer step hook stops it)."""
    counts: collections.Counter = collections.Counter()
    real_item = torch.Tensor.item
    steps = [0]

    def item(self):
        frame = sys._getframe(1)
        if frame.f_code.co_filename.endswith(name):
            counts[frame.f_lineno] += 1
        return real_item(self)

    class Enough(BaseException):
        pass

    def post(optimizer, args, kwargs):
        steps[0] += 1
        if steps[0] > n_steps:
            raise Enough

    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(post)
    torch.Tensor.item = item
    try:
        with pytest.raises(Enough):
            import runpy

            old = sys.argv
            sys.argv = [name, *args]
            try:
                runpy.run_path(name, run_name="__main__")
            finally:
                sys.argv = old
    finally:
        torch.Tensor.item = real_item
        handle.remove()
    return counts


def test_the_lessons_script_item_at_the_losses_append_line(in_scripts, capsys):
    """The lesson's script as written: one .item() a step at ``losses.append(loss.item())``, two on the
    steps that print; the advice names that line first. Windows: 2 warm-up steps, then 50 bare and 50
    watched steps in turn, in all of which the syncs are counted: steps 3 to 102, and step 100 prints."""
    report, outcome = profile("lesson.py", steps=50)
    assert outcome.stopped and outcome.exit_code == 0
    append = line_with("lesson.py", "losses.append(loss.item())")
    printing = line_with("lesson.py", 'print(f"Epoch')
    rows = {(s.line, s.kind): s for s in report.syncs}
    assert set(rows) == {(append, ".item()"), (printing, ".item()")}
    assert rows[append, ".item()"].per_step == 1 and rows[append, ".item()"].would_sync
    assert rows[printing, ".item()"].calls == 1
    assert report.syncs_per_step == {1: 99, 2: 1}
    assert report.advice[0].finding.startswith(f"defer the .item() at lesson.py:{append}")
    assert "1 sync a step" in report.advice[0].evidence
    # the reference: a plain counter over the script's first steps agrees, line by line
    reference = counted_syncs("lesson.py", 100)
    assert reference[append] == 100 and reference[printing] == 1
    out = capsys.readouterr().out
    assert "Epoch [100/20000]" in out  # the script's own output, where it was
    phases = {p.name: p.host_s for p in report.breakdown.phases}
    assert set(phases) == {"forward", "loss", "backward", "optimizer", "other"}
    assert all(v > 0 for v in phases.values())
    assert report.profiled.step_source == "optimizer" and report.profiled.optimizers == ("SGD",)
    layers = {x.name: x for x in report.layers.layers}
    assert [(n, x.output_shape, x.params, x.macs, x.calls) for n, x in layers.items()] == [
        ("fc1", (120, 10), 50, 4800, 1.0),
        ("relu", (120, 10), 0, 0, 1.0),
        ("fc2", (120, 3), 33, 3600, 1.0),
        ("CrossEntropyLoss", (), 0, 0, 1.0),
    ]
    # the hooks' own cost is taken off each call: a layer of a few µs can read 0, the model cannot
    assert all(x.forward_s >= 0 and x.backward_s >= 0 for x in layers.values())
    assert sum(x.forward_s for x in layers.values()) > 0 and sum(x.backward_s for x in layers.values()) > 0


def test_work_every_second_step_falls_on_bare_and_watched_steps_alike():
    """A 3 ms pause every second step (an epoch's end and its evaluation, every even number of steps): bare
    and watched steps taken in strict turns put it on one side only (the phase sum read ~0.1x or ~10x the
    uninstrumented step); in pairs of random order both sides get their share of it."""
    import time

    with Watch(warmup=2, steps=16, layers=False) as w:
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(8, 3)
        for i in range(60):
            if i % 2 == 0:
                time.sleep(0.003)  # in the step: between one optimizer step and the next
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    report = build(w, Profiled(kind="code", target="test"))
    paused = [t > 0.002 for t in w.baseline]
    assert 0 < sum(paused) < len(paused)  # the pause fell on some bare steps, not on all of them
    assert 0.5 < report.watched_step_s / report.step_s < 2


def test_phases_add_up_to_the_watched_steps(in_scripts):
    """Every moment of a watched step is in one phase: the phases' sum is the step's own wall time."""
    with Watch(warmup=1, steps=4, layers=False) as w:
        model, opt = torch.nn.Linear(3, 1), None
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(8, 3)
        for _ in range(12):
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    host, _ = w.meter.per_step()
    sums = w.meter.step_seconds()
    assert len(sums) == 4 and len(w.baseline) == 4
    assert sums == pytest.approx([sum(host[p][i] for p in host) for i in range(4)])
    assert all(
        host["loss"][i] > 0 for i in range(4)
    )  # the loss function: the code between forward and backward
    # the table, the headline and the ratio line take one statistic, the mean per step (the phases add up
    # to the watched step's; a periodic evaluation or print is part of the step's time)
    report = build(w, Profiled(kind="code", target="test"))
    assert report.watched_step_s == pytest.approx(sum(sums) / 4)
    assert sum(p.host_s for p in report.breakdown.phases) == pytest.approx(report.watched_step_s)
    assert report.step_s == pytest.approx(sum(w.baseline) / 4)
    screen = str(report)
    assert "Phases (mean per step over 4 steps" in screen and "(mean of the bare steps)" in screen


def test_dataloader_script_reads_its_argv(in_scripts, capsys):
    report, _outcome = profile("loader.py", "--epochs", "3")
    assert "argv: epochs=3 workers=0" in capsys.readouterr().out
    phases = {p.name: p.host_s for p in report.breakdown.phases}
    assert phases["data"] > 0
    assert report.profiled.args == ("--epochs", "3")
    (row,) = report.syncs
    assert (row.line, row.kind, row.per_step) == (
        line_with("loader.py", "total += loss.item()"),
        ".item()",
        1,
    )
    # the fix is the user's own line with the value kept on the device
    (tip,) = [a.finding for a in report.advice if a.finding.startswith("defer the .item()")]
    assert tip.endswith(
        "keep the value on the device (total += loss.detach() * len(xb)) and read it at log points"
    )
    # ReLU(inplace=True) ran out of place while its backward was timed, and got its flag back
    assert report.layers.layers[1].type == "ReLU"


def test_script_runs_to_its_end_without_stop_after(in_scripts, capsys):
    report, outcome = profile("loader.py", "--epochs", "4", stop_after=False)
    assert not outcome.stopped and outcome.exit_code == 0
    assert "epoch 0:" in capsys.readouterr().out
    assert report.measured == ("baseline", "phases", "layers")


def test_rnn_with_a_loss_function_and_a_bool_sync(in_scripts):
    report, _ = profile("rnn.py")
    phases = {p.name: p.host_s for p in report.breakdown.phases}
    assert phases["loss"] > 0  # F.cross_entropy: no module, found from backward()
    (row,) = report.syncs
    assert (row.line, row.kind, row.per_step) == (line_with("rnn.py", "if loss < 0.01"), "bool(tensor)", 1)
    gru = next(x for x in report.layers.layers if x.name == "gru")
    assert gru.output_shape == (64, 12, 32) and gru.params == sum(
        p.numel() for p in torch.nn.GRU(16, 32).parameters()
    )
    assert gru.macs == 64 * 12 * 3 * 32 * (16 + 32)


def test_transformer_with_no_grad_evaluation_inside_the_loop(in_scripts):
    report, _ = profile("transformer.py", steps=20)  # 8 evaluations in 40 steps: some in watched ones
    phases = {p.name: p.host_s for p in report.breakdown.phases}
    assert phases["eval"] > 0  # every 5th step evaluates under torch.no_grad
    names = [x.name for x in report.layers.layers]
    assert "Sequential.1.layers.0.self_attn" in names and "Sequential.1.layers.1.linear1" in names
    assert all(x.calls == 1 for x in report.layers.layers)  # evaluation forwards are not training calls
    assert report.syncs == ()


def test_lbfgs_closure_forwards_per_step(in_scripts, capsys):
    report, _ = profile("lbfgs.py", stop_after=False)
    (calls,) = eval(capsys.readouterr().out.split("closure calls per step: ")[1])  # the script's own count
    assert report.profiled.optimizers == ("LBFGS",)
    assert {x.calls for x in report.layers.layers} == {calls}


def test_two_models_two_optimizers_and_a_sync_in_a_helper_file(in_scripts):
    report, _ = profile("two_models.py")
    assert report.profiled.optimizers == ("SGD", "Adam")
    # each model by the name the script gave it (its globals), not "Sequential.0#2"
    assert [x.name for x in report.layers.layers] == ["encoder.0", "encoder.1", "decoder.0"]
    (row,) = report.syncs
    assert row.file.endswith("helpers.py") and row.line == line_with("helpers.py", "value.item()")


def test_weights_updated_by_hand_steps_at_backward(in_scripts):
    report, _ = profile("manual.py")
    assert report.profiled.step_source == "backward" and report.profiled.optimizers == ()
    assert {p.name for p in report.breakdown.phases} >= {"forward", "loss", "backward", "other"}


def test_inference_steps_at_each_call(in_scripts):
    report, _ = profile("inference.py")
    assert report.profiled.step_source == "forward"
    (row,) = report.syncs
    assert row.kind == ".tolist()" and row.per_step == 1


def test_a_script_that_never_trains(in_scripts):
    report, outcome = profile("never.py")
    assert report is None and outcome.exit_code == 0


def test_a_script_that_raises_is_shown_as_its_own_traceback(in_scripts):
    report, outcome = profile("raises.py")
    assert report is not None and report.breakdown is None
    assert outcome.exit_code == 1 and "RuntimeError" in outcome.error_line
    assert outcome.error.startswith("Traceback (most recent call last):")
    assert 'raises.py", line' in outcome.error and "first_step()" in outcome.error
    assert "runpy" not in outcome.error and "devicelab" not in outcome.error


def instrumented_state() -> tuple:
    """What the profiler patches or hooks: Tensor's methods, autograd's entry points, the global hooks."""
    from torch.nn.modules import module as nn_module
    from torch.optim import optimizer as optim_module

    return (
        dict(vars(torch.Tensor)),
        torch.autograd.backward,
        torch.autograd.grad,
        len(nn_module._global_forward_hooks),
        len(nn_module._global_forward_pre_hooks),
        len(optim_module._global_optimizer_post_hooks),
    )


def test_everything_is_put_back_when_the_program_raises(in_scripts):
    before = instrumented_state()
    profile("raises.py")
    profile("lesson.py", steps=3)
    assert instrumented_state() == before


def test_watch_and_profile_step_in_python():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    report = devicelab.profile_step(
        model, (x, y), torch.nn.functional.cross_entropy, optimizer, warmup=1, steps=3
    )
    assert report.profiled.kind == "model" and report.profiled.target == "Sequential"
    assert [x.name for x in report.layers.layers] == ["Sequential.0", "Sequential.1", "Sequential.2"]
    with devicelab.watch(warmup=1, steps=3) as w:
        for _ in range(10):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            float(loss.detach())
    screen = str(w.report())
    assert "Phases" in screen and "float(tensor)" in screen and "test_profile_script.py:" in screen
