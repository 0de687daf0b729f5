"""The profiler on training scripts as other people write them (tests/data/scripts/), each defect found on
such a script kept here: a loss module made anew each step, a scheduler reading the loss, a second
optimizer for fine-tuning, TorchScript trained in a worker thread, a script that changes folder, and
``--json`` given right before the script. In this process (no subprocess): ``devicelab.cli.main``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from devicelab import cli
from devicelab.profile import api, script
from devicelab.profile.watch import Watch

SCRIPTS = Path(__file__).parent / "data" / "scripts"


def line_with(name: str, fragment: str) -> int:
    (line,) = [i for i, text in enumerate((SCRIPTS / name).read_text().splitlines(), 1) if fragment in text]
    return line


@pytest.fixture
def in_scripts(monkeypatch):
    monkeypatch.chdir(SCRIPTS)
    monkeypatch.setattr(sys, "path", list(sys.path))
    torch.set_num_threads(1)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A copy of a script in a fresh folder, run from there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    torch.set_num_threads(1)

    def copy(name: str) -> Path:
        return Path(shutil.copy(SCRIPTS / name, tmp_path / name))

    return copy


def profile(name: str, *, warmup: int, steps: int, stop_after: bool = False):
    return api.profile_program(
        script.check("script", name), warmup=warmup, steps=steps, stop_after=stop_after
    )


def test_a_loss_made_each_step_is_one_row_and_a_schedulers_read_of_the_loss_a_sync(
    in_scripts, capsys, recwarn
):
    """13 steps: warm-up 1, phases 10, layers 2, then one forward of an unfinished step: every module once
    a step (the reference: the loop calls each once), the loss one row, not one per instance; the
    scheduler's ``float(loss)`` inside torch is a sync at the user's ``plateau.step(loss)``, once a step."""
    report, outcome = profile("fresh_loss.py", warmup=1, steps=5)
    assert outcome.exit_code == 0 and capsys.readouterr().out.startswith("steps 13")
    rows = [(x.name, x.type, x.calls) for x in report.layers.layers]
    assert rows == [
        ("0", "Linear", 1.0),
        ("1", "ReLU", 1.0),
        ("2", "Linear", 1.0),
        ("CrossEntropyLoss", "CrossEntropyLoss", 1.0),
    ] or rows == [
        ("Sequential.0", "Linear", 1.0),
        ("Sequential.1", "ReLU", 1.0),
        ("Sequential.2", "Linear", 1.0),
        ("CrossEntropyLoss", "CrossEntropyLoss", 1.0),
    ]
    assert report.layers.steps == 2
    (sync,) = report.syncs
    assert (sync.line, sync.kind, sync.per_step) == (
        line_with("fresh_loss.py", "plateau.step(loss)"),
        "float(tensor)",
        1,
    )
    # torch's warning about float() of a tensor that requires grad (once a process: none if an earlier
    # test made it) where python shows it: in torch's scheduler, not in devicelab's wrapper of float
    grad_warnings = [w for w in recwarn if "requires_grad=True to a scalar" in str(w.message)]
    assert {Path(w.filename).name for w in grad_warnings} <= {"lr_scheduler.py"}


def test_a_new_optimizer_for_fine_tuning_ends_the_steps_from_then_on(in_scripts):
    """3 Adam steps, then 30 SGD steps: the windows (2 + 2 × 5 + 5 steps) are measured on SGD's steps."""
    report, outcome = profile("finetune.py", warmup=2, steps=5)
    assert outcome.exit_code == 0
    assert report.profiled.optimizers == ("Adam", "SGD")
    assert set(report.measured) == {"baseline", "phases", "layers"}
    assert report.layers.steps == 5
    assert {x.type: x.calls for x in report.layers.layers} == {"Linear": 1.0, "Tanh": 1.0}
    head = [x for x in report.layers.layers if x.params == 18]
    assert len(head) == 1 and head[0].backward_s > 0  # the head trains; the frozen backbone has no backward


def test_torchscript_trained_in_a_thread(in_scripts, capsys):
    """The steps are the worker thread's; a TorchScript module is one block, forward only (torch refuses
    backward hooks on it: without care the layer window would raise in the user's thread); --stop-after
    cannot end a program from another thread, so it runs to its end and says so."""
    report, outcome = profile("threaded_jit.py", warmup=1, steps=3, stop_after=True)
    assert outcome.exit_code == 0 and not outcome.stopped
    assert capsys.readouterr().out.startswith("steps 20")
    assert report.profiled.step_source == "optimizer"
    (row,) = report.layers.layers
    assert row.type == "RecursiveScriptModule" and row.forward_s > 0 and row.backward_s is None
    assert any("TorchScript" in note for note in report.notes)
    assert any("--stop-after" in note for note in report.notes)


def test_json_right_before_the_script_prints_it_and_keeps_the_script(in_tmp, capsys):
    """``--json train.py`` would make argparse take the script for the JSON file (and write over it)."""
    path = in_tmp("chdir.py")
    source = path.read_text()
    assert cli.main(["profile", "--warmup", "1", "--steps", "2", "--json", "chdir.py", "12"]) == 0
    assert path.read_text() == source
    report = json.loads(capsys.readouterr().out)
    assert report["profiled"]["target"] == "chdir.py" and report["profiled"]["args"] == ["12"]
    assert cli.main(["profile", "--json=chdir.py", "chdir.py"]) == 2
    assert "that is a Python file" in capsys.readouterr().err and path.read_text() == source


def test_json_file_lands_where_it_was_asked_though_the_script_changes_folder(in_tmp, capsys):
    in_tmp("chdir.py")
    args = ["profile", "--warmup", "1", "--steps", "2", "--stop-after", "--json", "r.json", "chdir.py"]
    assert cli.main(args) == 0
    assert json.loads((in_tmp("chdir.py").parent / "r.json").read_text())["profiled"]["target"] == "chdir.py"
    assert not (Path("work") / "r.json").exists()
    assert "stopped chdir.py once measured (--stop-after)" in capsys.readouterr().err


def test_a_script_that_exits_before_training_is_said_with_its_status(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "cli_only.py").write_text("import sys\nprint('usage: cli_only.py N')\nsys.exit(2)\n")
    assert cli.main(["profile", "cli_only.py"]) == 2
    out, err = capsys.readouterr()
    assert out == "usage: cli_only.py N\n"
    assert err.strip() == (
        "devicelab: error: cli_only.py exited with status 2 before it trained or called a module "
        "(check its arguments: everything after the script is its own)"
    )


def test_an_update_by_hand_in_no_grad_is_the_optimizer_phase(in_scripts):
    """No module and no optimizer: the ``torch.no_grad`` update is "optimizer" (it was "loss", with the
    forward written in tensors, before)."""
    with Watch(warmup=1, steps=4, layers=False) as w:
        assert script.run(script.check("script", "tensors_by_hand.py")).exit_code == 0
    assert w.mode == "backward"
    host, _ = w.meter.per_step()
    assert len(host["optimizer"]) == 4
    assert all(host["optimizer"][i] > 0 and host["loss"][i] > 0 for i in range(4))
    assert host["forward"] == host["eval"] == [0.0] * 4


def test_a_weight_normed_layer_is_one_row_and_a_dict_output_warns_nothing(in_scripts, recwarn):
    """The parametrization (called when the layer reads its weight) is no row of its own and the layer is
    not lost behind it; its parameters are the layer's (reference: the module's own count); torch's
    warning about the watcher's backward hooks on a dict output is not the program's."""
    report, outcome = profile("parametrized.py", warmup=1, steps=3)
    assert outcome.exit_code == 0
    model = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(6, 16))
    rows = {x.name: (x.params, x.calls) for x in report.layers.layers}
    assert rows == {
        "trunk": (sum(p.numel() for p in model.parameters()), 1.0),
        "cls": (51, 1.0),
        "reg": (17, 1.0),
    }
    assert not [w for w in recwarn if "backward hooks" in str(w.message)]


def test_a_tee_logger_and_warnings_as_errors(in_tmp, capsys):
    """The script's warnings-as-errors filter would turn torch's warning about the watcher's own hooks
    into the script's crash; its logger in place of sys.stdout would have taken devicelab's report."""
    in_tmp("strict_tee.py")
    assert cli.main(["profile", "--warmup", "1", "--steps", "3", "strict_tee.py"]) == 0
    assert Path("train.log").read_text() == "trained\n"
    out = capsys.readouterr().out
    assert out.startswith("trained\n") and "devicelab profile: strict_tee.py" in out


def test_the_script_sees_what_python_gives_it(tmp_path, monkeypatch, capsys):
    """Reference: the same script under ``python sub/show.py`` (no torch: one quick subprocess)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "show.py").write_text(
        '"""its doc"""\nimport os, sys\n\n\ndef f(x: int) -> int:\n    return x\n\n\n'
        "print(sys.argv, __name__, __doc__, f.__annotations__, __package__, __spec__,\n"
        "      os.path.relpath(__file__), os.path.isabs(__file__), os.path.basename(sys.path[0]))\n"
    )
    python = subprocess.run(
        [sys.executable, "sub/show.py", "a"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert script.run(script.check("script", "sub/show.py", ("a",))).exit_code == 0
    assert capsys.readouterr().out == python.stdout


def test_loose_layers_are_named_as_the_script_holds_them(in_scripts):
    """Two ``Linear`` layers held by a plain object and a list of two more, all built in ``main()``: each
    row is named by the variable path that holds it (the function's locals), not ``Linear#2``; the
    reference is the script's own source."""
    report, outcome = profile("loose_modules.py", warmup=1, steps=2)
    assert outcome.exit_code == 0
    assert [x.name for x in report.layers.layers] == ["net.a", "net.b", "heads[0]", "heads[1]"]
    assert [x.params for x in report.layers.layers] == [40, 18, 6, 6]


HARD_EXIT = """
import os
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rows = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
model = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    for x, y in DataLoader(rows, batch_size=8, num_workers=1):  # a forked worker ends with os._exit
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
print("trained", flush=True)
os._exit(3)  # skips atexit and the interpreter's cleanup
"""


def test_a_script_ending_with_os_exit_is_reported_and_keeps_its_status(tmp_path):
    """A real ``python -m devicelab profile`` (os._exit ends a process: not in this one): the profile of
    the steps is printed, then the process ends with the program's status; the DataLoader worker's own
    ``os._exit`` (another process) is untouched."""
    (tmp_path / "hard.py").write_text(HARD_EXIT)
    done = subprocess.run(
        [sys.executable, "-m", "devicelab", "profile", "--warmup", "2", "--steps", "5", "hard.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.startswith("trained\n")
    assert "Phases (mean per step over 5 steps" in done.stdout and "Layers" in done.stdout
