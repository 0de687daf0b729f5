"""The fused CPU training kernel: many epochs of an MLP's forward, loss, backward and optimizer step in
one numba function, compiled once and cached on disk (importing this module compiles or loads it).

Layout, chosen so the inner loops run over the batch and vectorise:
  * ``theta``: every parameter in ``model.parameters()`` order, flattened (``fc1.weight`` (out, in) row
    major, ``fc1.bias``, ``fc2.weight``, ...): the layout of ``torch.nn.utils.parameters_to_vector``;
  * activations feature-major, ``(width, batch)``, so ``z[j, :] += w[j, k] * a[k, :]`` is a long
    contiguous loop; the input batch is transposed (full batch: once a call) or gathered (mini-batch).

The arithmetic is torch's, in float32 (sums in a different order, so not bit for bit): softmax
cross-entropy with the max subtracted, MSE, and torch.optim's SGD (momentum, weight decay), Adam and
AdamW formulas. ``fastmath`` is limited to reassociation and contraction; it never assumes finite
values, so a NaN or infinite loss still reaches the loss buffer and the run's NaN stop.

Nothing here touches torch; on the CPU there is no device to wait for.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "devicelab" / "numba")


# numba reads NUMBA_CACHE_DIR when it is imported; the default (__pycache__ next to this file) may be a
# read-only install. A directory the user chose is kept.
os.environ.setdefault("NUMBA_CACHE_DIR", _cache_dir())

import numba  # noqa: E402 (after the cache directory is set)
import numpy as np  # noqa: E402

if not numba.config.CACHE_DIR:  # numba was imported before us without a cache directory
    numba.config.CACHE_DIR = _cache_dir()


# activation, loss and optimizer arguments are devicelab.fast.codes' numbers (0/1/2 below)

# everything but "nnan"/"ninf": a diverging run must still produce NaN/inf losses
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_SIGNATURE = (
    "void(float32[::1], float32[::1], float32[::1], float32[::1], int64[::1], float32[:, ::1], "
    "int64[::1], float32[::1], int64[:, ::1], int64, float32[::1], int64, int64, int64, float64[::1], "
    "int64)"
)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _step(
    theta, buf1, buf2, grad, widths, acts, pres, delta, delta_in, col, col2, perms, e, start, m, full,
    y_class, y_value, activation, loss_kind, optimizer, hyper, step,
):  # fmt: skip
    """One forward/backward/update on the batch in ``acts[0][:, :m]``; returns its mean loss."""
    n_layers = widths.shape[0] - 1
    # forward
    offset = 0
    for layer in range(n_layers):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        weight = theta[offset : offset + fan_out * fan_in].reshape((fan_out, fan_in))
        bias = theta[offset + fan_out * fan_in : offset + fan_out * fan_in + fan_out]
        offset += fan_out * fan_in + fan_out
        a_in, z = acts[layer], pres[layer + 1]
        for j in range(fan_out):
            b = bias[j]
            for c in range(m):
                z[j, c] = b
            for k in range(fan_in):
                w = weight[j, k]
                for c in range(m):
                    z[j, c] += w * a_in[k, c]
        if layer < n_layers - 1:
            a_out = acts[layer + 1]
            for j in range(fan_out):
                for c in range(m):
                    a_out[j, c] = _activate(z[j, c], activation)
    # loss and its gradient w.r.t. the output (into delta)
    out = pres[n_layers]
    n_out = widths[n_layers]
    inv_m = np.float32(1.0 / m)
    total = np.float32(0.0)  # float32 sums as torch's: a diverging loss overflows at the same epoch
    if loss_kind == 0:  # cross-entropy: log-sum-exp with the column max subtracted
        for c in range(m):
            col[c] = out[0, c]
        for j in range(1, n_out):
            for c in range(m):
                col[c] = max(col[c], out[j, c])
        for c in range(m):
            col2[c] = 0.0
        for j in range(n_out):
            for c in range(m):
                p = math.exp(out[j, c] - col[c])
                delta[j, c] = p
                col2[c] += p
        for c in range(m):
            target = y_class[perms[e, start + c]] if not full else y_class[c]
            total += (col[c] + math.log(col2[c])) - out[target, c]
            col2[c] = np.float32(1.0) / col2[c]
        for j in range(n_out):
            for c in range(m):
                delta[j, c] = delta[j, c] * col2[c] * inv_m
        for c in range(m):
            target = y_class[perms[e, start + c]] if not full else y_class[c]
            delta[target, c] -= inv_m
    else:  # mean squared error of the single output
        two_inv_m = np.float32(2.0 / m)
        for c in range(m):
            target = y_value[perms[e, start + c]] if not full else y_value[c]
            diff = out[0, c] - target
            total += diff * diff
            delta[0, c] = two_inv_m * diff
    loss = total / np.float32(m)
    # backward, last layer first
    for layer in range(n_layers - 1, -1, -1):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        offset -= fan_out * fan_in + fan_out
        weight = theta[offset : offset + fan_out * fan_in].reshape((fan_out, fan_in))
        g_weight = grad[offset : offset + fan_out * fan_in].reshape((fan_out, fan_in))
        g_bias = grad[offset + fan_out * fan_in : offset + fan_out * fan_in + fan_out]
        a_in = acts[layer]
        for j in range(fan_out):
            s = np.float32(0.0)
            for c in range(m):
                s += delta[j, c]
            g_bias[j] = s
            for k in range(fan_in):
                s = np.float32(0.0)
                for c in range(m):
                    s += delta[j, c] * a_in[k, c]
                g_weight[j, k] = s
        if layer > 0:  # the delta of the layer below, through its activation
            z_in = pres[layer]
            for k in range(fan_in):
                for c in range(m):
                    delta_in[k, c] = 0.0
            for j in range(fan_out):
                for k in range(fan_in):
                    w = weight[j, k]
                    for c in range(m):
                        delta_in[k, c] += w * delta[j, c]
            for k in range(fan_in):
                for c in range(m):
                    delta[k, c] = delta_in[k, c] * _derivative(z_in[k, c], acts[layer][k, c], activation)
    _update(theta, buf1, buf2, grad, optimizer, hyper, step + 1)
    return loss


@numba.njit(cache=True, fastmath=_FASTMATH)
def _activate(z, activation):
    if activation == 0:
        return max(z, np.float32(0.0))
    if activation == 1:  # torch's exact GELU: x * Phi(x)
        return np.float32(0.5) * z * (np.float32(1.0) + math.erf(z * np.float32(_SQRT_HALF)))
    return math.tanh(z)


@numba.njit(cache=True, fastmath=_FASTMATH)
def _derivative(z, a, activation):
    """d activation / dz at pre-activation ``z`` (output ``a``)."""
    if activation == 0:
        return np.float32(1.0) if z > 0 else np.float32(0.0)
    if activation == 1:
        cdf = np.float32(0.5) * (np.float32(1.0) + math.erf(z * np.float32(_SQRT_HALF)))
        return cdf + z * math.exp(np.float32(-0.5) * z * z) * np.float32(_INV_SQRT_2PI)
    return np.float32(1.0) - a * a


@numba.njit(cache=True, fastmath=_FASTMATH)
def _update(theta, buf1, buf2, grad, optimizer, hyper, step):
    """torch.optim's single-tensor update, with its Python-float scalars cast to float32 as torch's CPU
    kernels do; ``step`` counts this update (1 for the first)."""
    lr, momentum, weight_decay, beta1, beta2, eps = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5]
    # SGD: grad += wd * p; buf = momentum * buf + grad (a zero buf: buf = grad, as torch's first step)
    if optimizer == 0:
        neg_lr, wd, mom = np.float32(-lr), np.float32(weight_decay), np.float32(momentum)
        if momentum != 0.0:
            for i in range(theta.shape[0]):
                g = grad[i] + wd * theta[i]
                b = buf1[i] * mom + g
                buf1[i] = b
                theta[i] += neg_lr * b
        else:
            for i in range(theta.shape[0]):
                theta[i] += neg_lr * (grad[i] + wd * theta[i])
        return
    # Adam / AdamW, torch's bias correction computed in float64 as its Python code does
    t = np.float64(step)  # torch's step is a float
    bias1 = 1.0 - beta1**t
    bias2_sqrt = (1.0 - beta2**t) ** 0.5
    neg_step = np.float32(-(lr / bias1))
    b2sqrt, eps32 = np.float32(bias2_sqrt), np.float32(eps)
    w1, b2, w2 = np.float32(1.0 - beta1), np.float32(beta2), np.float32(1.0 - beta2)
    coupled = np.float32(weight_decay) if optimizer == 1 else np.float32(0.0)
    decay = np.float32(1.0 - lr * weight_decay) if optimizer == 2 else np.float32(1.0)
    for i in range(theta.shape[0]):
        p = theta[i] * decay
        g = grad[i] + coupled * p
        mean = buf1[i] + w1 * (g - buf1[i])  # exp_avg.lerp_(grad, 1 - beta1)
        var = buf2[i] * b2 + w2 * g * g  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
        buf1[i], buf2[i] = mean, var
        theta[i] = p + neg_step * mean / (math.sqrt(var) / b2sqrt + eps32)


@numba.njit(_SIGNATURE, cache=True, fastmath=_FASTMATH, nogil=True)
def train_epochs(
    theta,  # parameters, flat (updated in place)
    buf1,  # SGD momentum buffer / Adam exp_avg, flat (zeros = no buffer yet)
    buf2,  # Adam exp_avg_sq, flat
    grad,  # workspace for the gradient, flat
    widths,  # [n_inputs, hidden..., n_outputs]
    x,  # (n, n_inputs) training rows
    y_class,  # (n,) class indices (cross-entropy), else empty
    y_value,  # (n,) targets (MSE), else empty
    perms,  # (epochs, n) row order per epoch (mini-batch), else (0, 0)
    batch_size,  # rows per step; >= n: full batch
    losses,  # (epochs,) each epoch's training loss, written here
    activation,
    loss_kind,
    optimizer,
    hyper,  # lr, momentum, weight_decay, beta1, beta2, eps (float64, as torch's Python floats)
    step0,  # optimizer steps already taken (Adam's bias correction)
):
    n = x.shape[0]
    n_layers = widths.shape[0] - 1
    bsz = min(batch_size, n)
    n_batches = (n + bsz - 1) // bsz
    full = bsz >= n
    # activations a[0..L-1] (a[0] the input batch), pre-activations z[1..L], and two delta buffers
    max_w = 0
    for w in widths:
        max_w = max(max_w, w)
    acts = [np.empty((widths[i], bsz), np.float32) for i in range(n_layers + 1)]
    pres = [np.empty((widths[i], bsz), np.float32) for i in range(n_layers + 1)]
    delta = np.empty((max_w, bsz), np.float32)
    delta_in = np.empty((max_w, bsz), np.float32)
    col = np.empty(bsz, np.float32)
    col2 = np.empty(bsz, np.float32)
    batch_losses = np.empty(n_batches, np.float64)
    if full:
        a0 = acts[0]
        for r in range(n):
            for k in range(widths[0]):
                a0[k, r] = x[r, k]
    step = step0
    for e in range(losses.shape[0]):
        for bi in range(n_batches):
            start = bi * bsz
            m = min(bsz, n - start)
            if not full:  # gather this batch's rows, feature-major
                a0 = acts[0]
                for c in range(m):
                    r = perms[e, start + c]
                    for k in range(widths[0]):
                        a0[k, c] = x[r, k]
            batch_losses[bi] = _step(
                theta, buf1, buf2, grad, widths, acts, pres, delta, delta_in, col, col2, perms, e, start, m,
                full, y_class, y_value, activation, loss_kind, optimizer, hyper, step,
            )  # fmt: skip
            step += 1
        if full:
            losses[e] = np.float32(batch_losses[0])
        else:
            # dot(batch_losses, weights) as the eager epoch does: each batch weighted by its share of n
            total = 0.0
            for bi in range(n_batches):
                weight = np.float32(min(bsz, n - bi * bsz) / n)
                total += np.float32(batch_losses[bi]) * weight
            losses[e] = np.float32(total)
