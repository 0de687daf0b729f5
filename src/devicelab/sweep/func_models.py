"""A sweep of the user's own module (``devicelab sweep --model FILE.py:Class``): the models of every seed
trained together with ``torch.func`` (the PyTorch ensembling recipe: ``stack_module_state``, then
``vmap`` over ``functional_call``), or one after another where the module does
not allow it (a forward that updates buffers in place, as batch norm does in training, or reads a value
to the host), and the sweep says which.

Both keep the layouts' contract (``devicelab.sweep.layouts``): an ``(M, epochs)`` loss buffer on the
device, nothing read back between log points, the same per-model learning rates and optimizer formulas,
the same row order from the split-seeded generator.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from devicelab.errors import one_line
from devicelab.sweep.layouts import BmmModels, Buffers, _adam, _sgd
from devicelab.training.config import TrainConfig
from devicelab.training.outputs import BinaryLogitLoss, prediction, single_logit
from devicelab.training.setup import make_loss

# a vmapped step's group of models on the CPU: their largest layer output about this size (chunks())
CHUNK_BYTES = 4 << 20


class FuncModels(BmmModels):
    """Every model's step in one vmapped call: one model's loss vmapped over the stacked parameters (the
    data shared), their sum differentiated by autograd (each model's gradient is its own loss's)."""

    name = "vmap"

    def __init__(self, models, lrs, config: TrainConfig, x, y, task, generator, n_epochs) -> None:
        super().__init__(models, lrs, config, x, y, task, generator, n_epochs)  # stacked params, lrs, buffers
        self._params = [p.detach() for p in self._params]
        self._call, self._buffers = functional(models, x.device)
        self._frozen = frozen(models[0])
        self._grad = _vmapped_grad(self._call, user_loss(task, models[0], x), self._frozen)
        self.chunks = chunks(len(models), self.batch, x, models[0])

    def _step(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        self.steps += 1
        update = _adam if self.config.optimizer in ("adam", "adamw") else _sgd
        losses = []
        for part in self.chunks:  # views of the stacked tensors: the updates land in them
            params = tuple(p[part] for p in self._params)
            grads, loss = self._grad(params, {k: v[part] for k, v in self._buffers.items()}, x, y)
            with torch.no_grad():
                for p, g, lr, first, second, fixed in zip(
                    params, grads, self.lr, self.first, self.second, self._frozen, strict=True
                ):
                    # a frozen parameter (requires_grad=False), or one the forward did not use (no gradient),
                    # stays as it is, as torch.optim leaves it
                    if not fixed and g is not None:
                        update(self.config, p, g, lr[part], first[part], second[part], self.steps)
            losses.append(loss.detach())
        return torch.cat(losses)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, n, outputs)``: every model on ``x`` in eval mode (for the log points' metrics)."""
        return _eval_forward(self._call, tuple(self._params), self._buffers, x)


class LoopModels(BmmModels):
    """The fallback: each model its own module, trained one after another on the same batches."""

    name = "one-by-one"

    def __init__(self, models, lrs, config: TrainConfig, x, y, task, generator, n_epochs) -> None:
        super().__init__(models, lrs, config, x, y, task, generator, n_epochs)
        device = x.device
        self.models = [m.to(device) for m in models]
        self._loss = user_loss(task, self.models[0], x)
        self._per_model = [[p for p in m.parameters()] for m in self.models]
        self._frozen = frozen(models[0])
        # optimizer state per model, viewed from the stacked buffers so that buffers() needs no copy
        self._first = [[b[i] for b in self.first] for i in range(len(models))]
        self._second = [[b[i] for b in self.second] for i in range(len(models))]
        self._lrs = [[lr[i] for lr in self.lr] for i in range(len(models))]

    def _step(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        self.steps += 1
        update = _adam if self.config.optimizer in ("adam", "adamw") else _sgd
        losses = []
        for model, params, lrs, first, second in zip(
            self.models, self._per_model, self._lrs, self._first, self._second, strict=True
        ):
            loss = self._loss(prediction(model(x)), y)
            trained = [p for p, fixed in zip(params, self._frozen, strict=True) if not fixed]
            grads = iter(torch.autograd.grad(loss, trained, allow_unused=True))
            with torch.no_grad():
                for p, lr, a, b, fixed in zip(params, lrs, first, second, self._frozen, strict=True):
                    grad = None if fixed else next(grads)
                    if grad is not None:  # frozen, or a layer the forward did not use: left as it is
                        update(self.config, p, grad, lr, a, b, self.steps)
            losses.append(loss.detach())
        return torch.stack(losses)

    def params(self) -> list[torch.Tensor]:
        return [
            torch.stack([ps[i].detach() for ps in self._per_model]) for i in range(len(self._per_model[0]))
        ]

    def buffers(self) -> Buffers:
        return Buffers(self.first, self.second, self.steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        with torch.inference_mode():
            for model in self.models:
                was = model.training
                model.eval()
                outs.append(prediction(model(x)))
                model.train(was)
        return torch.stack(outs)


def chunks(n_models: int, rows: int, x: torch.Tensor, model: nn.Module) -> list[slice]:
    """The models in groups whose activations stay in the CPU's caches: the vmapped step makes every layer's
    output for all models at once, and 64 small CNNs on 256 rows (16 MB a layer) ran at 1.2x one by one
    where groups of 16 ran at 1.6x (benchmarks/fit.py, sweep part). On a GPU: all together."""
    if x.device.type != "cpu":
        return [slice(0, n_models)]
    size = max(1, min(n_models, CHUNK_BYTES // max(1, rows * activation_bytes(model, x))))
    return [slice(i, min(i + size, n_models)) for i in range(0, n_models, size)]


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """The largest output of any of ``model``'s layers, in bytes a row (one forward of a copy, hooked)."""
    largest = 0

    def hook(_module, _inputs, out) -> None:
        nonlocal largest
        if isinstance(out, torch.Tensor):
            largest = max(largest, out.numel() * out.element_size())

    probe = copy.deepcopy(model).to(x.device)
    for module in probe.modules():
        module.register_forward_hook(hook)
    rows = min(2, len(x))
    with torch.no_grad():
        probe(x[:rows])
    return largest // max(1, rows)


def user_loss(task: str, model: nn.Module, x: torch.Tensor):
    """``loss(out, y)`` as ``devicelab.fit`` trains the user's module, chosen once from its output on two
    rows: cross-entropy over a score per class, binary cross-entropy where the module gives one logit a row
    (two classes), the squared error."""
    loss = make_loss(task)
    if task != "classification":
        return loss
    probe = copy.deepcopy(model).to(x.device).eval()  # no dropout draw, no batch-norm statistics changed
    with torch.no_grad():
        shape = tuple(prediction(probe(x[:2])).shape)
    # a module with one logit a row reached here only on a two-class target (check_user_model)
    return BinaryLogitLoss() if single_logit(shape, 2) else loss


def frozen(model: nn.Module) -> list[bool]:
    """For each parameter: the user froze it (``requires_grad=False``), so no step changes it."""
    return [not p.requires_grad for p in model.parameters()]


def functional(models: list[nn.Module], device: torch.device):
    """``(call, buffers)``: ``call(params, buffers, x)`` runs one model (a stateless copy of the first,
    on the meta device) with the given tensors; the buffers stacked per model."""
    from torch.func import functional_call, stack_module_state

    _, buffers = stack_module_state(models)
    buffers = {k: v.to(device) for k, v in buffers.items()}
    base = copy.deepcopy(models[0]).to("meta")
    names = [name for name, _ in models[0].named_parameters()]

    def call(params, model_buffers, x):
        tensors = {**dict(zip(names, params, strict=True)), **model_buffers}
        return prediction(functional_call(base, tensors, (x,)))

    call.base = base  # type: ignore[attr-defined]
    return call, buffers


def _vmapped_grad(call, loss_fn, fixed: list[bool]):
    """``step(params, buffers, x, y) -> (grads, losses)``: every model's loss in one vmapped forward, then one
    ordinary backward of their sum. Each model's loss depends on its own slice of the stacked parameters
    only, so the sum's gradient is each model's own; this runs the batched kernels' own derivatives where
    ``vmap(grad_and_value(...))`` runs functorch's nested transform (1.1-1.4x slower a step, measured on
    64 small CNNs, benchmarks/fit.py sweep part). A frozen parameter gets no gradient (``None``)."""
    from torch.func import vmap

    def one(params, model_buffers, x, y):
        return loss_fn(call(params, model_buffers, x), y)

    forward = vmap(one, in_dims=(0, 0, None, None))

    def step(params, model_buffers, x, y):
        params = tuple(p.detach().requires_grad_(not f) for p, f in zip(params, fixed, strict=True))
        losses = forward(params, model_buffers, x, y)
        trained = [p for p in params if p.requires_grad]
        grads = iter(torch.autograd.grad(losses.sum(), trained, allow_unused=True) if trained else ())
        return [None if f else next(grads) for f in fixed], losses.detach()

    return step


def _eval_forward(call, params, buffers, x):
    from torch.func import vmap

    base = call.base
    was = base.training
    base.eval()
    try:
        with torch.inference_mode():
            return vmap(call, in_dims=(0, 0, None))(params, buffers, x)
    finally:
        base.train(was)


def vmap_reason(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, task: str) -> str:
    """Why the models cannot train together under vmap ("" when they can), tried on copies of two of
    them, on two rows, where the data is."""
    copies = [copy.deepcopy(m) for m in models[:2]]
    try:
        call, buffers = functional(copies, x.device)
        params = tuple(
            torch.stack([p.detach() for p in ps]).to(x.device)
            for ps in zip(*(m.parameters() for m in copies), strict=True)
        )
        _vmapped_grad(call, user_loss(task, copies[0], x), frozen(copies[0]))(params, buffers, x[:2], y[:2])
        _eval_forward(call, params, buffers, x[:2])
    except Exception as error:  # an in-place buffer update, a host read, an op vmap has no rule for
        return f"torch.func cannot vmap the module ({one_line(error, 100)})"
    return ""


def user_models(models, lrs, config: TrainConfig, x, y, task, generator, n_epochs):
    """``(trained, (layout, why))``: together under vmap where the module allows it, else one by one."""
    import numpy as np

    why = vmap_reason(models, x, y, task)
    lrs = np.asarray(lrs, np.float64)
    if why:
        return LoopModels(models, lrs, config, x, y, task, generator, n_epochs), (
            "one-by-one",
            f"one by one: {why}",
        )
    together = "together with torch.func (stack_module_state + vmap over functional_call)"
    return FuncModels(models, lrs, config, x, y, task, generator, n_epochs), ("vmap", together)


def seeded_user_model(source: dict, seed: int, rows: torch.Tensor | None = None) -> nn.Module:
    """The user's module built as ``devicelab train --model ... --seed SEED`` builds it; ``rows``: lazy
    layers shaped by a forward on them, as train's probe of two rows shapes them."""
    from devicelab.training.user_model import build, materialize

    torch.manual_seed(seed)
    return materialize(build(source), rows)
