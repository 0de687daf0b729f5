"""The sync audit finds each sync-causing call at its source line, and leaves torch as it found it."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import replace

import pytest
import torch

from conftest import line_of
from devicelab.profile import loops, sync_audit
from devicelab.profile.run import audit_loops
from devicelab.syncs import SYNC_WARNING
from devicelab.training import recorder
from devicelab.training.loop import train
from devicelab.training.recorder import Recorder
from devicelab.training.workload import build_workload
from sync_fakes import FakeSyncDebugMode

CPU = torch.device("cpu")


def _fresh(seed):
    config, dataset = seed
    return build_workload(config, dataset, CPU)


def test_lesson_loop_item_every_step_is_found_at_its_line(seed):
    w = _fresh(seed)
    result = sync_audit.audit(
        "lesson", lambda: loops.lesson_loop(w.model, w.loss_fn, w.torch_optimizer(), w.x, w.y, 20), CPU, 20
    )
    assert result.total() == 20
    (site,) = result.sites
    assert site.count == 20
    assert site.kind == ".item()"
    assert site.file == inspect.getsourcefile(loops.lesson_loop)
    assert site.line == line_of(loops.lesson_loop, "losses.append(loss.item())")
    assert site.function == "lesson_loop"
    assert "losses.append(loss.item())" in site.code


def test_lesson_loop_progress_line_counts_every_100_epochs(seed):
    w = _fresh(seed)
    lines = []
    result = sync_audit.audit(
        "lesson",
        lambda: loops.lesson_loop(w.model, w.loss_fn, w.torch_optimizer(), w.x, w.y, 200, log=lines.append),
        CPU,
        200,
    )
    by_line = {site.line: site.count for site in result.sites}
    assert by_line[line_of(loops.lesson_loop, "losses.append(loss.item())")] == 200
    assert by_line[line_of(loops.lesson_loop, "log(f")] == 2  # epochs 100 and 200
    assert len(lines) == 2 and lines[0].startswith("Epoch [100/200], Loss: ")


def test_devicelab_training_syncs_only_at_log_points(seed):
    """The real training loop (``devicelab.train``), not a copy: one read per log point, nothing else."""
    config, dataset = seed
    run = replace(config, epochs=20, log_every=5, device="cpu", threads=1, quiet=True)
    # the fast step's self-check (3 epochs against the eager step, before training, once per process and shape)
    # reads its figures back; run it first, whichever test ran before, so the audit sees the training loop alone
    train(run, dataset=dataset)
    result = sync_audit.audit("devicelab", lambda: train(run, dataset=dataset), CPU, 20)
    read_line = line_of(recorder._copy_to_host, ".cpu()")  # the log point's one read (Recorder.read)
    assert [(site.file, site.line, site.kind, site.count) for site in result.sites] == [
        (inspect.getsourcefile(Recorder), read_line, ".cpu()", 4)  # epochs 5, 10, 15 and 20
    ]


def test_audit_of_both_loops_for_a_config(seed):
    config, dataset = seed
    lesson, ours = audit_loops(config, dataset, CPU, steps=20)
    assert (lesson.loop, lesson.total(), lesson.steps) == ("lesson", 20, 20)
    # log points every 100 epochs: in 20 epochs only the read at the end
    assert ours.loop == "devicelab" and ours.total() == 1
    assert ours.sites[0].kind == ".cpu()" and ours.sites[0].function == "_copy_to_host"


def test_user_code_syncs_are_found_with_their_lines(capsys):
    loss = torch.tensor(0.25)
    line = inspect.currentframe().f_lineno

    def user_loop():
        if loss < 0.5:  # bool(tensor)
            print(loss)  # print/repr(tensor)
        print(f"{loss:.3f}")  # format(tensor): the nested .item() is not counted twice
        float(loss)
        loss.cpu().numpy()

    result = sync_audit.audit("user", user_loop, CPU, 1)
    kinds = {(site.line - line, site.kind): site.count for site in result.sites}
    assert kinds == {
        (3, "bool(tensor)"): 1,
        (4, "print/repr(tensor)"): 1,
        (5, "format(tensor)"): 1,
        (6, "float(tensor)"): 1,
        (7, ".cpu()"): 1,  # .numpy() is no sync: it only works on a tensor already on the host
    }
    assert capsys.readouterr().out == "tensor(0.2500)\n0.250\n"


def test_torch_internal_reads_of_host_tensors_are_not_syncs():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([param])  # keeps its step count in a host tensor and reads it

    def loop():
        for _ in range(3):
            param.grad = torch.ones(3)
            optimizer.step()

    assert sync_audit.audit("adam", loop, CPU, 3).sites == ()


def test_tensor_methods_are_restored_even_when_the_loop_raises():
    before = {name: torch.Tensor.__dict__.get(name) for name in sync_audit.SYNC_CALLS}

    def broken():
        torch.ones(1).item()
        raise ValueError("loop failed")

    with pytest.raises(ValueError, match="loop failed"):
        sync_audit.audit("broken", broken, CPU, 1)
    after = {name: torch.Tensor.__dict__.get(name) for name in sync_audit.SYNC_CALLS}
    assert after == before
    assert torch.tensor(2.0).item() == 2.0


def test_a_sync_cuda_also_reports_is_counted_once(monkeypatch):
    """On a GPU the audit also turns on CUDA's sync debug mode, which warns for the sync inside ``.item()``
    too: that is one sync, counted once as ``.item()``; a sync no wrapped call covers (boolean-mask indexing)
    is counted from CUDA's warning. No GPU here: a fake debug mode is passed in, and a stand-in ``.item()``
    syncs through it as the CUDA one would."""
    fake = FakeSyncDebugMode()
    real_item = torch.Tensor.item

    def item_as_on_cuda(self):
        fake.sync()  # warns: the debug mode is "warn" during the audit
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", item_as_on_cuda)
    x = torch.ones(3)
    line = inspect.currentframe().f_lineno

    def loop():
        x.sum().item()
        warnings.warn(SYNC_WARNING, UserWarning, stacklevel=1)  # what CUDA reports for x[x > 0]

    result = sync_audit.audit("fake cuda", loop, CPU, 1, debug_mode=fake.debug_mode)
    counted = {(site.line - line, site.kind): site.count for site in result.sites}
    assert counted == {(3, ".item()"): 1, (4, sync_audit.CUDA_KIND): 1}
    assert len(result.detectors) == 2  # the calls and the (fake) device detector both ran


@pytest.mark.parametrize("user_mode", [0, 1, "error"])
def test_the_audit_puts_back_the_users_debug_mode_also_when_the_loop_raises(user_mode):
    fake = FakeSyncDebugMode(user_mode)
    result = sync_audit.audit("ok", lambda: fake.sync(), CPU, 1, debug_mode=fake.debug_mode)
    assert result.total(sync_audit.CUDA_KIND) == 1
    assert fake.history == [user_mode, "warn", user_mode]

    def broken():
        raise ValueError("loop failed")

    with pytest.raises(ValueError, match="loop failed"):
        sync_audit.audit("broken", broken, CPU, 1, debug_mode=fake.debug_mode)
    assert fake.history == [user_mode, "warn", user_mode, "warn", user_mode]


def test_on_the_cpu_the_device_detector_is_off():
    """The CPU has no sync debug mode: only the calls detector runs, and warnings are left alone."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = sync_audit.audit(
            "cpu", lambda: warnings.warn(SYNC_WARNING, UserWarning, stacklevel=1), CPU, 1
        )
    assert result.detectors == ("calls",) and result.sites == ()
    assert [str(w.message) for w in shown] == [SYNC_WARNING]
