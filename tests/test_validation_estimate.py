"""A run that keeps its validation split (1,000 training rows or more) reports the kept weights' metric on
the validation rows with its spread, in the summary text, summary.json and the HTML report; the spread is
the bootstrap standard error, checked against the binomial one (the closed form for an accuracy)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from conftest import run_cli
from devicelab import train
from devicelab.training.config import TrainConfig


def noisy_csv(path, n: int = 1400):
    """Two numbers and a label they predict about four times in five (so the accuracy is not 0 or 1)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 2))
    label = np.where(x[:, 0] + x[:, 1] + rng.normal(scale=0.8, size=n) > 0, "yes", "no")
    lines = ["a,b,label"] + [f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(x, label, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_estimate_is_the_kept_weights_validation_accuracy_with_its_bootstrap_spread(tmp_path):
    config = TrainConfig(data=str(noisy_csv(tmp_path / "n.csv")), target="label", epochs=300, log_every=50,
                         lr=0.5, device="cpu", threads=1, quiet=True)  # fmt: skip
    result = train(config)
    assert result.cross_validation is None  # 1,120 training rows: a validation split of 168
    v = result.validation
    assert v["metric"] == "val_accuracy" and v["rows"] == len(result.dataset.x_val) == 168
    with torch.inference_mode():  # the reference: the kept model, plain PyTorch, on the validation rows
        predicted = result.model(torch.from_numpy(result.dataset.x_val)).argmax(dim=1).numpy()
    p = float(np.mean(predicted == result.dataset.y_val))
    assert v["value"] == pytest.approx(p) and 0.6 < p < 0.95
    assert v["std"] == pytest.approx(math.sqrt(p * (1 - p) / v["rows"]), rel=0.15)  # binomial SE
    assert v["epoch"] == result.final["epoch"]


def test_the_summary_the_json_and_the_report_show_it(tmp_path):
    noisy_csv(tmp_path / "n.csv")
    run = run_cli("train", "--data", "n.csv", "--target", "label", "--epochs", "100", "--log-every", "50", "--lr", "0.5",
                  "--device", "cpu", "--threads", "1", "--quiet", "--name", "r", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    v = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())["validation"]
    line = re.search(
        r"^validation estimate: +val accuracy (\S+) ± (\S+) on 168 validation rows", run.stdout, re.M
    )
    assert line and float(line[1]) == pytest.approx(v["value"], abs=5e-5), run.stdout
    assert float(line[2]) == pytest.approx(v["std"], abs=5e-5)
    report = run_cli("report", "runs/r", "-o", "r.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "validation estimate" in html and f"{v['value']:.4f} ± {v['std']:.4f}" in html
