"""A sweep on a small file says that its ranking rests on one small validation split (where train would
cross-validate), with the binomial standard error of an accuracy on those rows; a large file, a built-in
set or a run without validation rows gets no such line."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from devicelab.sweep.leaderboard import small_data_note
from devicelab.training.cv import CV_BELOW


def _data(train: int, val: int, task: str = "classification", kind: str = "file"):
    return SimpleNamespace(x_train=np.zeros((train, 2)), x_val=np.zeros((val, 2)) if val else None, task=task,
                           source={"kind": kind})  # fmt: skip


def test_a_small_file_says_its_ranking_is_on_few_rows_and_how_noisy():
    note = small_data_note(_data(53, 10))
    assert note.startswith(
        "ranked on 10 validation rows, where an accuracy has a standard error up to ±0.16;"
    )
    assert f"{math.sqrt(0.25 / 10):.2f}" == "0.16" and f"below {CV_BELOW} training rows" in note
    assert small_data_note(_data(53, 10, "regression")).startswith("ranked on 10 validation rows only;")


def test_no_line_where_the_split_is_what_train_uses_too():
    assert small_data_note(_data(CV_BELOW - 100, 100)) is None  # 1,000 rows: train keeps its split too
    assert small_data_note(_data(120, 0)) is None  # no validation rows: ranked by the test metric, said
    assert small_data_note(_data(100, 20, kind="builtin")) is None
