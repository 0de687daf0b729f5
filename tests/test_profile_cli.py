"""`devicelab profile` end to end, as a user runs it (a real subprocess)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import assert_user_error
from devicelab.profile import regime


def _row(stdout: str, name: str, kind: str) -> list[str]:
    """The layer-table row of ``name`` (the activation table has rows with the same names)."""
    (line,) = [line for line in stdout.splitlines() if line.split()[:2] == [name, kind]]
    return line.split()


def test_seed_workload_end_to_end(cli, tmp_path):
    result = cli("profile", "--plot", "out")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    fc1, relu, fc2 = _row(out, "fc1", "Linear"), _row(out, "relu", "ReLU"), _row(out, "fc2", "Linear")
    assert fc1[:6] == ["fc1", "Linear", "[120,", "10]", "50", "4,800"]
    assert relu[:6] == ["relu", "ReLU", "[120,", "10]", "0", "0"]
    assert fc2[:6] == ["fc2", "Linear", "[120,", "3]", "33", "3,600"]
    for phase in ("forward", "loss", "backward", "optimizer", "other"):
        assert any(line.split()[:1] == [phase] for line in out.splitlines()), phase
    assert "operators per step" in out
    assert "losses.append(loss.item())" in out  # the sync audit's lesson row
    png = (tmp_path / "out" / "profile.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    saved = json.loads((tmp_path / "out" / "profile.json").read_text())
    layers = saved["layers"]["layers"]
    assert [(x["name"], x["output_shape"], x["params"], x["macs"]) for x in layers] == [
        ("fc1", [120, 10], 50, 4800),
        ("relu", [120, 10], 0, 0),
        ("fc2", [120, 3], 33, 3600),
        ("CrossEntropyLoss", [], 0, 0),  # the step's loss: a top-level module the watch sees too
    ]
    # The verdict comes from timings taken on a shared machine, so it is not asserted: it must be the one
    # decide_regime gives for the timings the run saved, and the one the text prints.
    probe = saved["regime"]
    points = probe["points"]
    assert [p["label"] for p in points] == ["batch ×1", "batch ×4", "batch ×16", "batch ×64", "width ×4"]
    expected = regime.decide_regime([p["macs"] for p in points], [p["seconds"] for p in points])
    assert probe["verdict"] == expected.verdict
    assert f"Regime: {expected.verdict} — " in out
    lesson, ours = saved["sync_audit"]
    assert (lesson["loop"], sum(s["count"] for s in lesson["sites"])) == ("lesson", 20)
    assert ours["loop"] == "devicelab" and [(s["kind"], s["function"]) for s in ours["sites"]] == [
        (".cpu()", "_copy_to_host")
    ]


def test_json_output_is_valid_json(cli):
    result = cli("profile", "--json", "--steps", "3", "--no-regime", "--hidden", "16,8", "--threads", "1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # strict: NaN would fail to parse as standard JSON below
    json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert report["schema"] == "devicelab.profile/1"
    assert [x["name"] for x in report["layers"]["layers"]] == [
        "fc1",
        "relu1",
        "fc2",
        "relu2",
        "fc3",
        "CrossEntropyLoss",
    ]
    assert report["layers"]["total"]["params"] == (4 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3)
    assert report["workload"]["threads"] == 1
    assert report["regime"] is None
    assert result.stderr == ""  # --json keeps stderr quiet too


def test_plot_to_a_png_file(cli, tmp_path):
    result = cli("profile", "--steps", "2", "--no-regime", "--plot", "charts/p.png")
    assert result.returncode == 0, result.stderr
    assert "device and threads: cpu (" in result.stdout  # the header says what was chosen, and why
    assert (tmp_path / "charts" / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "charts" / "profile.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_auto_profiles_what_train_would_choose_here(cli):
    """``--device auto`` asks the trainer's policy (choose_device): on this CPU-only machine the CPU, with
    the thread count its timing picked; the JSON says which and why, and the two agree."""
    result = cli("profile", "--device", "auto", "--json", "--steps", "2", "--no-regime")
    assert result.returncode == 0, result.stderr
    workload = json.loads(result.stdout)["workload"]
    threads = workload["threads"]
    assert workload["device"] == "cpu"
    assert workload["device_reason"].startswith(f"cpu ({threads} thread{'s' if threads > 1 else ''}): ")


def test_bad_steps(cli):
    assert_user_error(cli("profile", "--steps", "0"), "--steps")


def test_bad_dataset(cli):
    assert_user_error(cli("profile", "--dataset", "irs"), "unknown dataset", "iris")


def test_plot_path_under_a_file(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    assert_user_error(cli("profile", "--plot", "afile/chart.png"), "is a file")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu(cli):
    assert_user_error(cli("profile", "--device", "cuda"), "not available")


def test_plot_into_a_folder_that_cannot_be_written_fails_before_profiling(cli):
    result = cli("profile", "--plot", "/proc/devicelab-chart.png")  # /proc takes no new files, even for root
    assert_user_error(result, "--plot", "cannot write in /proc")
    assert "timing layers" not in result.stderr and result.stdout == ""


SCRIPTS = __import__("pathlib").Path(__file__).parent / "data" / "scripts"


def test_the_lessons_script_end_to_end(cli, tmp_path):
    """``devicelab profile lesson.py`` as a user types it: the script's output, then the screen; the JSON
    file, and ``devicelab report`` of it."""
    import shutil

    shutil.copy(SCRIPTS / "lesson.py", tmp_path / "lesson.py")
    result = cli(
        "profile", "--warmup", "1", "--steps", "50", "--stop-after", "--json", "p.json", "lesson.py",
        env={"OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("Epoch [100/20000]") < out.index("devicelab profile: lesson.py")
    append = next(
        i for i, t in enumerate((SCRIPTS / "lesson.py").read_text().splitlines(), 1) if "losses.append" in t
    )
    assert f"1. defer the .item() at lesson.py:{append}" in out
    assert "syncs per step: 1 on 99 step(s), 2 on 1 step(s)" in out
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["schema"] == "devicelab.profile/2" and saved["profiled"]["kind"] == "script"
    assert saved["syncs"][0]["line"] == append
    html = cli("report", "p.json", "--out", "p.html")
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "p.html").read_text()
    assert "losses.append(loss.item())" in page and "lesson.py" in page


def test_json_alone_keeps_stdout_for_the_document_and_the_scripts_output_on_stderr(cli, tmp_path):
    """``devicelab profile --json train.py > profile.json``: stdout is the JSON document alone; what the
    script prints, and what a child process of it writes to file descriptor 1, is on stderr."""
    (tmp_path / "train.py").write_text(
        "import subprocess, sys, torch\n"
        "print('hello from the script')\n"
        "subprocess.run([sys.executable, '-c', 'print(\"from a child\")'], check=True)\n"
        "model = torch.nn.Linear(3, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "x = torch.randn(8, 3)\n"
        "for step in range(20):\n"
        "    loss = model(x).pow(2).mean()\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "print('done', step)\n"
    )
    result = cli(
        "profile", "--warmup", "1", "--steps", "2", "--json", "train.py", env={"OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing else on stdout
    assert report["schema"] == "devicelab.profile/2" and report["profiled"]["target"] == "train.py"
    err = result.stderr
    assert err.index("hello from the script") < err.index("done 19") and "from a child" in err


def test_bad_scripts_are_one_line(tmp_path, monkeypatch, capsys):
    """In this process (``cli.main``): a missing script, a syntax error, a script raising before it
    trains (its traceback, then devicelab's line), one that never trains, --steps 0, a missing -m."""
    from devicelab.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "raises.py").write_text((SCRIPTS / "raises.py").read_text())
    (tmp_path / "never.py").write_text((SCRIPTS / "never.py").read_text())
    cases = [
        (["profile", "nothere.py"], "nothere.py: no such file"),
        (["profile", "broken.py"], "broken.py:1: syntax error"),
        (["profile", "never.py"], "never.py ran without calling a module, backward() or an optimizer"),
        (["profile", "--steps", "0", "never.py"], "--steps must be at least 1"),
        (["profile", "-m", "no_such_module_here"], "-m no_such_module_here: no such module"),
        (["profile", "raises.py"], "raises.py raised RuntimeError"),
    ]
    for argv, line in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("devicelab: error: ") and line in err[-1], (argv, err)
        if argv[-1] == "raises.py":
            assert err[0] == "Traceback (most recent call last):" and "first_step()" in "\n".join(err)
            assert not any("devicelab" in e for e in err[:-1])
        else:
            assert len(err) == 1, err


def test_ctrl_c_prints_what_was_measured(tmp_path, monkeypatch, capsys):
    """A KeyboardInterrupt in the middle of the phase window: the steps measured so far are shown, the
    layers are said to be missing, and the exit status is 130 (Python's for Ctrl-C)."""
    from devicelab.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop.py").write_text(
        "import torch\n"
        "model = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "x = torch.randn(8, 3)\n"
        "for step in range(1000):\n"
        "    loss = model(x).pow(2).mean()\n"
        "    opt.zero_grad()\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "    if step == 14:\n"
        "        raise KeyboardInterrupt  # as Ctrl-C would, in the middle of the window\n"
    )
    assert main(["profile", "--warmup", "1", "--steps", "10", "loop.py"]) == 130
    captured = capsys.readouterr()
    assert "Phases (mean per step over 7 steps" in captured.out
    assert "Not measured: layers" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("devicelab: interrupted")
