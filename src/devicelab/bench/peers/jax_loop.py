"""The workload in JAX, two ways: a jitted step called from a Python loop (``run_jit_step``), and the whole
loop compiled as one ``lax.scan`` program (``run_scan``).

Both start from the torch model's initial weights (copied into JAX arrays), train on the same rows with
the same loss and SGD (momentum and weight decay as ``torch.optim.SGD`` applies them), so their final
loss can be compared with the lesson's. Compilation is done ahead of time (``jit(...).lower().compile()``)
and timed apart from the loop. Each loss goes into a preallocated buffer on the device; the host reads
it once, after the loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
from torch import nn

from devicelab.bench.speed_rows import Run, Setting

ACTIVATIONS = ("relu", "gelu", "tanh")


def unsupported(setting: Setting) -> str | None:
    """Why the JAX rows cannot train this setting, or None."""
    config = setting.config
    if config.optimizer != "sgd":
        return f"the JAX rows implement SGD only, not {config.optimizer}"
    if config.dropout > 0:
        return "the JAX rows have no dropout"
    if config.activation not in ACTIVATIONS:
        return f"the JAX rows have no {config.activation} activation"
    _no_preallocation()  # before jax first touches a GPU
    if setting.device.type != "cpu" and _jax_device(setting.import_module("jax"), setting) is None:
        return f"this jax has no device for {setting.device} (a CUDA build of jax is needed: pip install 'jax[cuda12]')"
    return None


def _no_preallocation() -> None:
    """JAX takes 75% of a GPU's memory when it first touches it; in devicelab's process that would
    starve torch's rows. Its own switch (read when jax initialises a GPU), unless the user set it."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _jax_device(jax, setting: Setting):
    """The JAX device for the setting's torch device (a CUDA one is JAX's "gpu"), or None."""
    if setting.device.type not in ("cpu", "cuda"):
        return None
    kind = "cpu" if setting.device.type == "cpu" else "gpu"
    try:
        devices = jax.devices(kind)
    except RuntimeError:
        devices = []
    index = setting.device.index or 0
    if len(devices) <= index:
        return None
    return devices[index]


def _pieces(setting: Setting):
    """(jax, device, initial state, x, y, update) for the setting: ``update(state, x, y) -> (loss, state)``."""
    _no_preallocation()
    jax = setting.import_module("jax")
    jnp = setting.import_module("jax.numpy")
    device = _jax_device(jax, setting)
    if device is None:
        raise RuntimeError(f"this jax has no device for {setting.device} (a CUDA build of jax is needed)")
    config, dataset = setting.config, setting.dataset
    model = setting.initial_model()
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    params = [
        (jax.device_put(m.weight.detach().numpy(), device), jax.device_put(m.bias.detach().numpy(), device))
        for m in layers
    ]
    momentum = [tuple(jnp.zeros_like(p) for p in pair) for pair in params]  # torch's first step: buf = grad
    x = jax.device_put(dataset.x_train, device)
    y = jax.device_put(dataset.y_train, device)
    act = {
        "relu": jax.nn.relu,
        "gelu": lambda v: jax.nn.gelu(v, approximate=False),  # nn.GELU() is the exact (erf) form
        "tanh": jnp.tanh,
    }[config.activation]
    classification = dataset.task == "classification"
    lr, mu, wd = config.lr, config.momentum, config.weight_decay

    def loss_fn(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = act(h @ w.T + b)
        w, b = params[-1]
        out = h @ w.T + b
        if classification:  # nn.CrossEntropyLoss, mean over rows
            picked = jnp.take_along_axis(out, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(out, axis=1) - picked)
        return jnp.mean((out[:, 0] - y) ** 2)

    def update(state, x, y):
        params, bufs = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if wd:
            grads = jax.tree_util.tree_map(lambda g, p: g + wd * p, grads, params)
        if mu:
            bufs = jax.tree_util.tree_map(lambda b, g: mu * b + g, bufs, grads)
            grads = bufs
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return loss, (params, bufs)

    return jax, device, (params, momentum), x, y, update


def _compile(jax, fn: Callable, *args, **jit_options):
    start = time.perf_counter()
    compiled = jax.jit(fn, **jit_options).lower(*args).compile()
    return compiled, time.perf_counter() - start


def run_jit_step(setting: Setting) -> Run:
    """One jitted step per epoch, called from Python: state, loss buffer and epoch index stay on the device."""
    jax, device, state, x, y, update = _pieces(setting)
    epochs = setting.epochs

    def step(state, losses, i, x, y):
        loss, state = update(state, x, y)
        return state, losses.at[i].set(loss), i + 1

    losses = jax.device_put(np.zeros(epochs, np.float32), device)
    i = jax.device_put(np.int32(0), device)
    compiled, setup_s = _compile(jax, step, state, losses, i, x, y, donate_argnums=(0, 1))
    jax.block_until_ready((state, losses))  # sync: the copies to the device are not the loop's time
    start = time.perf_counter()
    for _ in range(epochs):
        state, losses, i = compiled(state, losses, i, x, y)
    losses.block_until_ready()  # sync: the loop's work is queued; wait for it before reading the clock
    seconds = time.perf_counter() - start
    final = float(losses[-1])  # sync: one read, after the clock
    return Run(seconds, setup_s, final, "jax.jit step", f"jax {jax.__version__} on {device.platform}")


def run_scan(setting: Setting) -> Run:
    """The whole loop as one ``lax.scan`` program: one call trains every epoch."""
    jax, device, state, x, y, update = _pieces(setting)
    epochs = setting.epochs

    def train_all(state, x, y):
        def body(state, _):
            loss, state = update(state, x, y)
            return state, loss

        return jax.lax.scan(body, state, None, length=epochs)

    compiled, setup_s = _compile(jax, train_all, state, x, y)
    jax.block_until_ready(state)  # sync: the copies to the device are not the loop's time
    start = time.perf_counter()
    state, losses = compiled(state, x, y)
    losses.block_until_ready()  # sync: wait for the program before reading the clock
    seconds = time.perf_counter() - start
    final = float(losses[-1])  # sync: one read, after the clock
    return Run(seconds, setup_s, final, "jax lax.scan", f"jax {jax.__version__} on {device.platform}")
