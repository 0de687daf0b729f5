"""``.numpy()`` is a sync site (on the CPU: one that would sync on a GPU), counted against a plain counter
of the same calls; ``t.cpu().numpy()`` is one copy to the host, counted once at its ``.cpu()``."""

from __future__ import annotations

import collections
import inspect
import sys

import torch

import devicelab
from devicelab.profile import sync_audit


def _loop(steps: int, losses: list) -> None:
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(8, 4)
    for step in range(steps):
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().numpy())  # NUMPY: a sync a step
        if step % 2 == 0:
            losses.append(loss.detach().cpu().numpy())  # COPY: one sync every other step


def _line(marker: str) -> int:
    lines, start = inspect.getsourcelines(_loop)
    (offset,) = [i for i, text in enumerate(lines) if marker in text]
    return start + offset


def _plain_counts(steps: int) -> collections.Counter:
    """The reference: ``Tensor.numpy`` and ``Tensor.cpu`` calls counted by this file's line."""
    counts: collections.Counter = collections.Counter()
    real = {name: getattr(torch.Tensor, name) for name in ("numpy", "cpu")}

    def counting(name):
        def call(self, *args, **kwargs):
            frame = sys._getframe(1)
            if frame.f_code.co_filename == __file__:
                counts[frame.f_lineno, name] += 1
            return real[name](self, *args, **kwargs)

        return call

    for name in real:
        setattr(torch.Tensor, name, counting(name))
    try:
        _loop(steps, [])
    finally:
        for name, original in real.items():
            setattr(torch.Tensor, name, original)
    return counts


def test_numpy_is_a_sync_site_counted_as_a_plain_counter_counts_it():
    steps = 6
    reference = _plain_counts(steps)
    numpy_line, copy_line = _line("# NUMPY"), _line("# COPY")
    assert reference == {(numpy_line, "numpy"): 6, (copy_line, "cpu"): 3, (copy_line, "numpy"): 3}
    found = sync_audit.audit("numpy", lambda: _loop(steps, []), torch.device("cpu"), steps)
    kinds = {(s.line, s.kind): s.count for s in found.sites}
    # each line's syncs as the counter counts the calls: .numpy() at its line; .cpu().numpy() once
    assert kinds == {
        (numpy_line, ".numpy()"): reference[numpy_line, "numpy"],
        (copy_line, ".cpu()"): reference[copy_line, "cpu"],
    }


def test_the_watch_reports_numpy_per_step_as_would_sync():
    torch.set_num_threads(1)
    losses: list = []
    with devicelab.watch(warmup=1, steps=4, layers=False) as w:
        _loop(20, losses)
    rows = {(s.line, s.kind): s for s in w.report().syncs}
    numpy_row = rows[_line("# NUMPY"), ".numpy()"]
    assert numpy_row.per_step == 1 and numpy_row.would_sync
    assert rows[_line("# COPY"), ".cpu()"].per_step == 0.5
    assert len(losses) == 30  # the loop's own results, unchanged
    assert ".numpy()" in str(w.report())
