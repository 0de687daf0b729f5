"""The sweep's CPU kernel: many MLPs of one shape trained together in one numba function, the models
side by side in the innermost (SIMD) dimension.

Layout (the one measured fastest on a small CPU: see docs/sweep.md):
  * ``theta``: ``(P, M)`` float32, row ``i`` the ``i``-th number of ``model.parameters()`` flattened
    (the order of ``torch.nn.utils.parameters_to_vector``) and column ``m`` model ``m``;
  * models are trained a tile of ``tile`` columns at a time (copied into a contiguous block that stays
    in the core's cache), all the epochs of a call for one tile before the next: the models are independent;
  * rows of the batch one at a time: every multiply-add is ``a[k] * w[j, k, :]`` over the tile's models,
    a contiguous loop of the tile's width that LLVM turns into vector FMAs. The data rows are the same
    for every model (the same split, the same mini-batch order), so ``x[r, k]`` is one broadcast scalar.

The arithmetic is torch's in float32 (sums in another order, so equal to about 1e-7, not bit for bit):
softmax cross-entropy with the max subtracted, MSE, and torch.optim's SGD (momentum, weight decay), Adam
and AdamW with each model's own hyper-parameters. The activations and optimizer codes are devicelab's
single-model fused kernel's (devicelab.fast.kernel), and so are the codes (devicelab.fast.codes).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from devicelab.fast.kernel import _FASTMATH, _activate, _derivative

# Models per tile, at most: the loops over a tile must have a run-time length for LLVM to vectorise them (a
# constant one is unrolled into scalar code), and longer ones pay their set-up less often. Measured on the
# seed workload (one core): 32 models 3.6 µs per model-epoch, 64 2.6, 128 2.3, 256 2.1.
TILE = 256


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _row(th, g, widths, offsets, acts, pres, delta, delta_in, col, col2, logs, bits, floats, total, x, r,
         y_class, y_value, activation, loss_kind, winv, wr, nt):  # fmt: skip
    """Forward, loss and backward of training row ``r`` for the tile's models; gradients add into ``g``
    (already divided by the batch size, as the mean loss's are), the row's loss into ``total``. ``winv``:
    each model's weight of the row over its batch's total weight (1/m when every row counts), ``wr`` the
    row's weight (a cross-validation fold's held-out rows weigh 0)."""
    n_layers = widths.shape[0] - 1
    for k in range(widths[0]):
        xk = x[r, k]
        for t in range(nt):
            acts[0, k, t] = xk
    for layer in range(n_layers):
        fan_in, fan_out, off = widths[layer], widths[layer + 1], offsets[layer]
        for j in range(fan_out):
            bias = off + fan_out * fan_in + j
            for t in range(nt):
                pres[layer + 1, j, t] = th[bias, t]
            for k in range(fan_in):
                w = off + j * fan_in + k
                for t in range(nt):
                    pres[layer + 1, j, t] += th[w, t] * acts[layer, k, t]
            if layer < n_layers - 1:
                for t in range(nt):
                    acts[layer + 1, j, t] = _activate(pres[layer + 1, j, t], activation)
    n_out = widths[n_layers]
    if loss_kind == 0:  # cross-entropy: log-sum-exp with the max subtracted; delta = (softmax - onehot) / m
        target = y_class[r]
        for t in range(nt):
            col[t] = pres[n_layers, 0, t]
        for j in range(1, n_out):
            for t in range(nt):
                col[t] = max(col[t], pres[n_layers, j, t])
        col2[:nt] = 0.0
        for j in range(n_out):
            for t in range(nt):
                delta[j, t] = pres[n_layers, j, t] - col[t]
            _exp(delta[j], bits, floats, nt)
            for t in range(nt):
                col2[t] += delta[j, t]
        _log(col2, logs, bits, floats, nt)
        for t in range(nt):
            total[t] += np.float64(wr[t]) * ((col[t] + logs[t]) - pres[n_layers, target, t])
            col2[t] = winv[t] / col2[t]
        for j in range(n_out):
            for t in range(nt):
                delta[j, t] *= col2[t]
        for t in range(nt):
            delta[target, t] -= winv[t]
    else:  # mean squared error of the single output
        target = y_value[r]
        for t in range(nt):
            diff = pres[n_layers, 0, t] - target
            total[t] += np.float64(wr[t]) * (np.float64(diff) * np.float64(diff))
            delta[0, t] = (np.float32(2.0) * winv[t]) * diff
    for layer in range(n_layers - 1, -1, -1):
        fan_in, fan_out, off = widths[layer], widths[layer + 1], offsets[layer]
        for j in range(fan_out):
            bias = off + fan_out * fan_in + j
            for t in range(nt):
                g[bias, t] += delta[j, t]
            for k in range(fan_in):
                w = off + j * fan_in + k
                for t in range(nt):
                    g[w, t] += delta[j, t] * acts[layer, k, t]
        if layer > 0:  # the delta of the layer below, through its activation
            for k in range(fan_in):
                delta_in[k, :nt] = 0.0
            for j in range(fan_out):
                for k in range(fan_in):
                    w = off + j * fan_in + k
                    for t in range(nt):
                        delta_in[k, t] += th[w, t] * delta[j, t]
            for k in range(fan_in):
                for t in range(nt):
                    delta[k, t] = delta_in[k, t] * _derivative(
                        pres[layer, k, t], acts[layer, k, t], activation
                    )


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _update(th, b1, b2, g, optimizer, hyper, h, t0, step, nt):
    """torch.optim's update of the tile's models (``step``: this update's number, 1 for the first), with
    each model's Python-float hyper-parameters cast to float32 as torch's CPU kernels do."""
    n_params = th.shape[0]
    if optimizer == 0:  # SGD: g += wd * p; buf = momentum * buf + g (= g at first); p -= lr * buf
        momentum = False
        for t in range(nt):
            h[0, t] = np.float32(-hyper[t0 + t, 0])
            h[1, t] = np.float32(hyper[t0 + t, 1])
            h[2, t] = np.float32(hyper[t0 + t, 2])
            momentum = momentum or hyper[t0 + t, 1] != 0.0
        for i in range(n_params):
            for t in range(nt):
                grad = g[i, t] + h[2, t] * th[i, t]
                if momentum:
                    grad = b1[i, t] * h[1, t] + grad
                    b1[i, t] = grad
                th[i, t] += h[0, t] * grad
        return
    for t in range(nt):  # Adam / AdamW: torch's bias correction in float64, as its Python code does
        lr, wd, beta1, beta2, eps = (
            hyper[t0 + t, 0],
            hyper[t0 + t, 2],
            hyper[t0 + t, 3],
            hyper[t0 + t, 4],
            hyper[t0 + t, 5],
        )
        h[0, t] = np.float32(-(lr / (1.0 - beta1 ** np.float64(step))))
        h[1, t] = np.float32((1.0 - beta2 ** np.float64(step)) ** 0.5)
        h[2, t] = np.float32(eps)
        h[3, t] = np.float32(1.0 - beta1)
        h[4, t] = np.float32(beta2)
        h[5, t] = np.float32(1.0 - beta2)
        h[6, t] = np.float32(wd) if optimizer == 1 else np.float32(0.0)
        h[7, t] = np.float32(1.0 - lr * wd) if optimizer == 2 else np.float32(1.0)
    for i in range(n_params):
        for t in range(nt):
            p = th[i, t] * h[7, t]
            grad = g[i, t] + h[6, t] * p
            mean = b1[i, t] + h[3, t] * (grad - b1[i, t])  # exp_avg.lerp_(grad, 1 - beta1)
            var = b2[i, t] * h[4, t] + h[5, t] * grad * grad  # exp_avg_sq.mul_(beta2).addcmul_(...)
            b1[i, t] = mean
            b2[i, t] = var
            th[i, t] = p + h[0, t] * mean / (math.sqrt(var) / h[1, t] + h[2, t])


# exp and log as straight-line float32 code over a tile (cephes' expf/logf: within 1e-7 relative, as
# torch's own vectorised exp), so LLVM vectorises them: there is no vector math library behind numba here,
# and a libm call per element cost as much as all the multiply-adds of the seed workload's step.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _exp(values, bits, floats, nt):
    """``values[:] = exp(values)`` for values <= 0 (below -87: e^-87, a probability that adds nothing)."""
    for t in range(nt):
        v = max(values[t], np.float32(-87.0))
        n = math.floor(v * _LOG2E + np.float32(0.5))
        r = (v - n * _LN2_HI) - n * _LN2_LO
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        values[t] = p * r * r + r + np.float32(1.0)
        bits[t] = (np.int32(n) + np.int32(127)) << np.int32(23)  # 2**n
    for t in range(nt):
        values[t] *= floats[t]


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _log(values, out, bits, floats, nt):
    """``out[:] = log(values)`` for positive, finite, normal values (a softmax's sum is in [1, classes])."""
    for t in range(nt):
        floats[t] = values[t]
    for t in range(nt):
        word = bits[t]
        out[t] = np.float32((word >> np.int32(23)) - np.int32(127))  # the exponent
        bits[t] = (word & np.int32(0x7FFFFF)) | np.int32(0x3F800000)  # the mantissa, in [1, 2)
    for t in range(nt):
        m, e = floats[t], out[t]
        big = m > np.float32(1.41421356)
        m = m * np.float32(0.5) if big else m
        e = e + np.float32(1.0) if big else e
        x = m - np.float32(1.0)
        z = x * x
        y = np.float32(7.0376836292e-2)
        y = y * x - np.float32(1.1514610310e-1)
        y = y * x + np.float32(1.1676998740e-1)
        y = y * x - np.float32(1.2420140846e-1)
        y = y * x + np.float32(1.4249322787e-1)
        y = y * x - np.float32(1.6668057665e-1)
        y = y * x + np.float32(2.0000714765e-1)
        y = y * x - np.float32(2.4999993993e-1)
        y = y * x + np.float32(3.3333331174e-1)
        y = y * x * z + e * _LN2_LO - np.float32(0.5) * z
        out[t] = x + y + e * _LN2_HI


_SIGNATURE = (
    "void(float32[:, ::1], float32[:, ::1], float32[:, ::1], int64[::1], float32[:, ::1], int64[::1], "
    "float32[::1], int64[:, ::1], int64, float32[:, :], int64, int64, int64, float64[:, ::1], int64, int64, "
    "float32[:, ::1])"
)


# compiled when this module is first imported (~20 s), then loaded from numba's disk cache (well under 1 s)
@numba.njit(_SIGNATURE, cache=True, fastmath=_FASTMATH, nogil=True)
def train_models(
    theta,  # (P, M) parameters, updated in place
    buf1,  # (P, M) SGD momentum buffer / Adam exp_avg (zeros = no buffer yet)
    buf2,  # (P, M) Adam exp_avg_sq
    widths,  # int64 [n_inputs, hidden..., n_outputs]
    x,  # (n, n_inputs) float32 training rows
    y_class,  # (n,) int64 class ids (cross-entropy), else empty
    y_value,  # (n,) float32 targets (MSE), else empty
    perms,  # (epochs, n) int64 row order of each epoch (mini-batch), else (0, 0)
    batch_size,  # rows per step; >= n: full batch
    losses,  # (M, epochs) float32: each model's epoch losses, written here
    activation,
    loss_kind,
    optimizer,
    hyper,  # (M, 6) float64: lr, momentum, weight_decay, beta1, beta2, eps of each model
    step0,  # optimizer steps already taken (Adam's bias correction)
    tile,  # models per tile (M must be a multiple of it: pad with copies)
    weights,  # (n, M) float32: each row's weight in each model's loss (1; cross-validation folds: 0 or 1)
):
    """Train every model for ``losses.shape[1]`` epochs, ``tile`` models at a time."""
    nt = tile
    n_params, n_models = theta.shape
    n = x.shape[0]
    n_layers = widths.shape[0] - 1
    n_epochs = losses.shape[1]
    bsz = min(batch_size, n)
    n_batches = (n + bsz - 1) // bsz
    full = bsz >= n
    max_w = 0
    for w in widths:
        max_w = max(max_w, w)
    offsets = np.zeros(n_layers + 1, np.int64)  # start of each layer's weight in theta's rows
    for layer in range(n_layers):
        offsets[layer + 1] = offsets[layer] + widths[layer + 1] * widths[layer] + widths[layer + 1]
    th = np.empty((n_params, tile), np.float32)
    b1 = np.empty((n_params, tile), np.float32)
    b2 = np.empty((n_params, tile), np.float32)
    g = np.empty((n_params, tile), np.float32)
    acts = np.empty((n_layers + 1, max_w, tile), np.float32)  # one row's activations, layer by layer
    pres = np.empty((n_layers + 1, max_w, tile), np.float32)  # and pre-activations
    delta = np.empty((max_w, tile), np.float32)
    delta_in = np.empty((max_w, tile), np.float32)
    col = np.empty(tile, np.float32)
    col2 = np.empty(tile, np.float32)
    logs = np.empty(tile, np.float32)
    bits = np.empty(tile, np.int32)  # _exp and _log build and take apart floats through these two views
    floats = bits.view(np.float32)
    total = np.empty(tile, np.float64)
    count = np.empty(tile, np.float64)  # each model's total row weight in the batch
    winv = np.empty(tile, np.float32)
    wr = np.empty(tile, np.float32)
    batch_losses = np.empty((n_batches, tile), np.float64)
    h = np.empty((8, tile), np.float32)  # this tile's hyper-parameters as float32 (see _update)
    for t0 in range(0, n_models - tile + 1, tile):
        for i in range(n_params):
            for t in range(nt):
                th[i, t] = theta[i, t0 + t]
                b1[i, t] = buf1[i, t0 + t]
                b2[i, t] = buf2[i, t0 + t]
        step = step0
        for e in range(n_epochs):
            for bi in range(n_batches):
                start = bi * bsz
                m = min(bsz, n - start)
                g[:, :nt] = 0.0
                total[:nt] = 0.0
                count[:nt] = 0.0
                for c in range(m):
                    r = start + c if full else perms[e, start + c]
                    for t in range(nt):
                        count[t] += weights[r, t0 + t]
                for c in range(m):
                    r = start + c if full else perms[e, start + c]
                    for t in range(nt):  # all rows weigh 1: winv is 1/m exactly, as the eager mean's
                        wr[t] = weights[r, t0 + t]
                        winv[t] = wr[t] * np.float32(1.0 / count[t]) if count[t] > 0 else np.float32(0.0)
                    _row(th, g, widths, offsets, acts, pres, delta, delta_in, col, col2, logs, bits, floats,
                         total, x, r, y_class, y_value, activation, loss_kind, winv, wr, nt)  # fmt: skip
                for t in range(nt):
                    batch_losses[bi, t] = total[t] / count[t] if count[t] > 0 else 0.0
                step += 1
                _update(th, b1, b2, g, optimizer, hyper, h, t0, step, nt)
            for t in range(nt):
                if full:
                    losses[t0 + t, e] = np.float32(batch_losses[0, t])
                else:  # dot(batch_losses, weights), as the eager epoch: each batch by its share of n
                    s = 0.0
                    for bi in range(n_batches):
                        weight = np.float32(min(bsz, n - bi * bsz) / n)
                        s += np.float32(batch_losses[bi, t]) * weight
                    losses[t0 + t, e] = np.float32(s)
        for i in range(n_params):
            for t in range(nt):
                theta[i, t0 + t] = th[i, t]
                buf1[i, t0 + t] = b1[i, t]
                buf2[i, t0 + t] = b2[i, t]


def tiling(n_models: int) -> tuple[int, int]:
    """``(tile, padded)``: models per tile (a multiple of 16, at most TILE, the tiles about equal) and the
    model count padded to whole tiles (the padding columns train copies whose results are dropped)."""
    n_tiles = -(-n_models // TILE)
    tile = -(-n_models // n_tiles)
    tile = -(-tile // 16) * 16
    return tile, tile * n_tiles
