"""The one table of codes the fused kernels take for an activation, a loss and an optimizer
(``devicelab.fast.kernel``, ``devicelab.sweep.kernel``, the plans that feed them). Plain Python, so that
a plan can be made without importing numba or torch."""

from __future__ import annotations

RELU, GELU, TANH = 0, 1, 2
CROSS_ENTROPY, MSE = 0, 1
SGD, ADAM, ADAMW = 0, 1, 2

ACTIVATIONS = {"relu": RELU, "gelu": GELU, "tanh": TANH}  # by devicelab's activation name
LOSSES = {"classification": CROSS_ENTROPY, "regression": MSE}  # by task
OPTIMIZERS = {"sgd": SGD, "adam": ADAM, "adamw": ADAMW}  # by --optimizer
