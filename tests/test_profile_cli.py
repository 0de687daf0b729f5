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
    assert [x["name"] for x in report["layers"]["layers"]] == ["fc1", "relu1", "fc2", "relu2", "fc3"]
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
