"""devicelab.train against the lesson's own loop (tests/seed_lesson.py): same data, same initial
weights, the same loss history."""

from __future__ import annotations

import numpy as np
import torch

from devicelab import TrainConfig, train
from devicelab.data import load_dataset
from devicelab.training.setup import build_model
from seed_lesson import lesson_data, lesson_model, run_lesson


def test_seed_data_is_the_lessons_bit_for_bit():
    x_train, y_train, x_test, y_test = load_dataset(TrainConfig()).tensors("cpu")
    ref = lesson_data("cpu")
    for mine, theirs in zip((x_train, y_train, x_test, y_test), ref, strict=True):
        assert mine.dtype == theirs.dtype
        assert torch.equal(mine, theirs)


def test_seed_initial_weights_are_the_lessons():
    config = TrainConfig()
    mine = build_model(config, load_dataset(config)).state_dict()
    theirs = lesson_model("cpu", seed=config.seed).state_dict()
    assert list(mine) == list(theirs)
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key


def test_loss_history_equals_the_lessons_over_500_epochs_on_cpu():
    lesson_losses, lesson_net = run_lesson(500, "cpu", seed=42)
    result = train(TrainConfig(epochs=500, device="cpu", threads=1))
    assert result.status == "completed"
    assert result.losses.shape == (500,)
    np.testing.assert_allclose(result.losses, np.asarray(lesson_losses, dtype=np.float32), rtol=0, atol=1e-6)
    for key, value in lesson_net.state_dict().items():  # and the same weights at the end
        torch.testing.assert_close(result.model.state_dict()[key], value, rtol=0, atol=1e-6)


def test_optimizer_path_equals_a_plain_loop_with_the_same_optimizer():
    """Every optimizer but plain SGD goes through torch.optim (training/step.py make_step); with Adam the
    losses equal the lesson's loop run with Adam."""
    config = TrainConfig(epochs=200, device="cpu", threads=1, optimizer="adam", lr=0.01)
    result = train(config)
    x_train, y_train, _, _ = lesson_data("cpu")
    model = lesson_model("cpu", seed=42)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    expected = []
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    np.testing.assert_allclose(result.losses, np.asarray(expected, dtype=np.float32), rtol=0, atol=1e-6)
