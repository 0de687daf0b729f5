"""devicelab train --model FILE.py:Class: the user's module through the CLI, its run folder, predict,
--resume, and its bad input (one line, exit 2)."""

from __future__ import annotations

import csv
import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error
from devicelab.cli import main
from seed_lesson import MLP, run_lesson

BAD = """
import torch.nn as nn


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("my own bug")


class TwoOut(nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)
"""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lesson_run(tmp_path_factory):
    """The lesson's MLP class, in a file of its own, trained by the real CLI for 200 epochs."""
    from conftest import run_cli

    folder = tmp_path_factory.mktemp("model")
    shutil.copy(inspect.getsourcefile(MLP), folder / "lesson.py")
    done = run_cli(
        "train", "--model", "lesson.py:MLP", "--epochs", "200", "--quiet", "--name", "mine", cwd=folder
    )
    assert done.returncode == 0, done.stderr
    return folder, done


def test_the_lessons_class_trains_on_the_fused_kernel_as_the_lesson_does(lesson_run):
    folder, done = lesson_run
    assert "fused numba kernel (MLP 4-10-3" in done.stdout
    run = folder / "runs" / "mine"
    expected, _ = run_lesson(200)  # the lesson's loop with its seed (42, devicelab's default --seed)
    np.testing.assert_allclose(np.load(run / "losses.npy"), expected, atol=1e-5)
    assert (run / "model_source.py").read_text() == (folder / "lesson.py").read_text()


def test_resume_refuses_another_model(lesson_run, capsys, monkeypatch, tmp_path):
    folder, _ = lesson_run
    (tmp_path / "bad.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    run = Path(folder / "runs" / "mine")
    assert main(["train", "--resume", str(run), "--model", "bad.py:TwoOut", "--epochs", "400"]) == 2
    assert "not --model bad.py:TwoOut" in capsys.readouterr().err


def test_predict_and_resume_build_the_class_again(lesson_run, capsys, monkeypatch):
    from sklearn.datasets import load_iris

    from conftest import run_cli

    folder, _ = lesson_run
    iris = load_iris()
    rows = folder / "rows.csv"
    with open(rows, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*iris.feature_names, "target"])
        writer.writerows([*row, label] for row, label in zip(iris.data[::10], iris.target[::10], strict=True))
    monkeypatch.chdir(folder)
    assert main(["predict", "runs/mine", "--data", str(rows), "--out", "out.csv"]) == 0
    assert "15 predictions" in capsys.readouterr().err

    (folder / "lesson.py").write_text(
        "raise SystemError('changed')\n"
    )  # edited since: the saved copy is used
    done = run_cli("train", "--resume", "runs/mine", "--epochs", "300", "--quiet", cwd=folder)
    assert done.returncode == 0, done.stderr
    expected, _ = run_lesson(300)
    np.testing.assert_allclose(np.load(folder / "runs" / "mine-resumed" / "losses.npy"), expected, atol=1e-5)

    (folder / "runs" / "mine" / "model_source.py").unlink()  # and with no copy: the edited file, which fails
    assert main(["predict", "runs/mine", "--data", str(rows)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "SystemError: changed" in err
    assert err.strip().splitlines()[-1].startswith("devicelab: error: importing")


@pytest.mark.parametrize(
    ("argv", "fragments", "traceback"),
    [
        (["--model", "bad.py:Broken"], ["constructing Broken", "RuntimeError: my own bug"], True),
        (["--model", "bad.py:TwoOut"], ["expected (2, 3)", "3 classes"], False),
        (
            ["--model", "bad.py:TwoOut", "--model-args", '{"width": 3}', "--dataset", "wine"],
            ["13 features"],
            False,
        ),
        (["--model", "bad.py:Nope"], ["has no Nope", "Broken, TwoOut"], False),
        (["--model", "missing.py:MLP"], ["there is no file missing.py"], False),
        (["--model", "bad.py:TwoOut", "--model-args", "[1]"], ["JSON object"], False),
    ],
    ids=["ctor-raises", "output-shape", "input-shape", "no-class", "no-file", "args-not-object"],
)
def test_bad_models_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, fragments, traceback):
    (tmp_path / "bad.py").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv, "--epochs", "5", "--quiet"]) == 2
    err = capsys.readouterr().err
    if traceback:  # the user's own traceback, then devicelab's one line
        assert 'raise RuntimeError("my own bug")' in err
        err = err.strip().splitlines()[-1] + "\n"
    assert_user_error(_Done(err), *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no empty folder left


class _Done:
    returncode, stdout = 2, ""

    def __init__(self, stderr: str) -> None:
        self.stderr = stderr


def test_a_factory_in_a_package_of_the_current_folder(tmp_path, monkeypatch, capsys):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "import torch.nn as nn\n\n\ndef make(width=10):\n"
        "    return nn.Sequential(nn.Linear(4, width), nn.Tanh(), nn.Linear(width, 3))\n"
    )
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--model", "mypkg.models:make", "--model-args", '{"width": 6}', "--epochs", "50"]
    assert main([*argv, "--log-every", "50", "--quiet", "--name", "pkg"]) == 0
    assert "fused numba kernel (MLP 4-6-3" in capsys.readouterr().out
    assert (tmp_path / "runs" / "pkg" / "model_source.py").read_text() == (package / "models.py").read_text()
