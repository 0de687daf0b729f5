"""Is this module an MLP? Decided by tracing it (``torch.fx.symbolic_trace``), not by its type.

A module whose traced graph is one input through a chain of ``nn.Linear`` layers with one of the
activations the fast paths know between them (as modules, ``F.relu``/``torch.relu`` calls or
``x.relu()`` methods) is an MLP, whatever its class: the lesson's own ``class MLP(nn.Module)``, an
``nn.Sequential``, devicelab's ``MLP``. ``match_mlp(model)`` returns the layers (``MlpMatch``) or the one
reason it is not one (a convolution, a normalisation, dropout, branching on data that fx cannot trace).
Tracing also proves the forward has no data-dependent control flow, which a captured step needs.
Both fast paths (the fused CPU kernel, the captured CUDA step) ask this one function; FLOPs a step are
counted here too (``step_flops``), for every caller that needs them.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.i18n import N_

# activation name -> the module types, functions and tensor methods that compute it
_MODULES: dict[type[nn.Module], str] = {nn.ReLU: "relu", nn.GELU: "gelu", nn.Tanh: "tanh"}
_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", F.gelu: "gelu", torch.tanh: "tanh", F.tanh: "tanh"}
_METHODS = {"relu": "relu", "tanh": "tanh"}
# layers that are no MLP, named in the reason (the first one found)
_NAMED = {
    nn.modules.dropout._DropoutNd: N_("dropout (the fused step draws no random numbers)"),
    nn.modules.conv._ConvNd: N_("a convolution"),
    nn.modules.batchnorm._BatchNorm: N_("batch normalisation"),
    nn.LayerNorm: N_("layer normalisation"),
    nn.Embedding: N_("an embedding"),
    nn.RNNBase: N_("a recurrent layer"),
}


@dataclass(frozen=True)
class MlpMatch:
    """The chain a traced module computes: ``Linear → activation → ... → Linear``."""

    widths: tuple[int, ...]  # n_inputs, hidden..., n_outputs
    activations: tuple[str, ...]  # one per hidden layer: "relu", "gelu" or "tanh"
    biases: tuple[bool, ...]  # one per Linear: it has a bias
    linears: tuple[nn.Linear, ...]  # in the order the forward calls them

    @property
    def activation(self) -> str | None:
        """The one activation of every hidden layer, or None when they differ (or there is none)."""
        return self.activations[0] if len(set(self.activations)) == 1 else None

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates a row."""
        return sum(i * o for i, o in itertools.pairwise(self.widths))


def linear_macs(model: nn.Module) -> int:
    """Forward multiply-accumulates a row of any module's ``nn.Linear`` layers."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def step_flops(macs: int, batch: int) -> float:
    """FLOPs of one training step on ``batch`` rows: forward and backward are about 3 matmuls a layer,
    2 FLOPs a multiply-accumulate."""
    return 6.0 * batch * macs


def has_hooks(model: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(m, h, None) for m in model.modules() for h in hooks):
        return True
    return any(getattr(p, "_backward_hooks", None) for p in model.parameters())


def match_mlp(model: nn.Module) -> MlpMatch | str:
    """The MLP ``model`` computes, or why it is not one (a short phrase for the ``step:`` line)."""
    if isinstance(
        getattr(model, "_orig_mod", None), nn.Module
    ):  # torch.compile's wrapper: fx cannot trace it
        return "it is torch.compile'd (pass the module itself, before torch.compile, to have it traced)"
    named = _named_layer(model)
    if named:
        return f"the model has {named}"
    frozen = next((name for name, p in model.named_parameters() if not p.requires_grad), None)
    if frozen:  # the fused step updates every weight it holds
        return f"its parameter {frozen} is frozen (requires_grad=False)"
    try:
        graph = torch.fx.symbolic_trace(model, concrete_args=_defaults(model)).graph
    except Exception as error:  # TraceError, a Proxy in an if, a call fx cannot follow
        first = (str(error).strip().splitlines() or [""])[0][:90]
        return f"torch.fx cannot trace its forward, which may branch on the data ({type(error).__name__}: {first})"
    return _chain(model, list(graph.nodes))


def _defaults(model: nn.Module) -> dict | None:
    """The forward's arguments after the first that have defaults (``mask=None``), traced as those values:
    devicelab calls ``model(x)`` alone, so a branch on them is decided."""
    import inspect

    try:
        params = list(inspect.signature(model.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    found = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return found or None


def _named_layer(model: nn.Module) -> str:
    for module in model.modules():
        for kind, what in _NAMED.items():
            if isinstance(module, kind):
                return what
    return ""


def _chain(model: nn.Module, nodes: list[torch.fx.Node]) -> MlpMatch | str:
    """Walk the graph: every node must consume the one before it, as a Linear or an activation."""
    # an argument traced as its default (``mask=None``) is a placeholder used only by fx's guard on it
    guards = {n for n in nodes if getattr(n.target, "__name__", "") == "_assert_is_none"}
    nodes = [n for n in nodes if n not in guards]
    inputs = [n for n in nodes if n.op == "placeholder" and set(n.users) - guards]
    if len(inputs) != 1:
        return f"its forward takes {len(inputs)} inputs, not one tensor"
    for node in nodes:  # a parameter or buffer the forward reads itself, outside its layers
        if node.op == "get_attr":
            params = dict(model.named_parameters())
            what = "parameter" if str(node.target) in params else "buffer"
            return f"its forward reads the {what} {node.target} outside a Linear layer"
    linears: list[nn.Linear] = []
    activations: list[str] = []
    pending: str | None = None  # the activation after the last Linear, not yet followed by one
    previous = inputs[0]
    for node in nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            if isinstance(node.args[0], tuple | list | dict):  # (logits, hidden): trained on the prediction
                kind = "a dict" if isinstance(node.args[0], dict) else f"a {type(node.args[0]).__name__}"
                return f"its forward returns {kind} of outputs, not one tensor"
            if node.args[0] is not previous:
                return "its output is not the last layer's"
            break
        if node.args[:1] != (previous,) or any(isinstance(a, torch.fx.Node) for a in _rest(node)):
            return "its forward is not one chain of layers (a branch, a skip connection or a reshape)"
        kind = _kind(model, node)
        if isinstance(kind, nn.Linear):
            if linears and pending is None:
                return "two Linear layers follow each other without an activation"
            if pending is not None:
                activations.append(pending)
            linears.append(kind)
            pending = None
        elif kind in ("relu", "gelu", "tanh"):
            if not linears or pending is not None:
                return "an activation that does not follow a Linear layer"
            pending = kind
        else:
            return kind  # the reason
        previous = node
    if not linears or pending is not None:
        return "it does not end in a Linear layer"
    widths = (linears[0].in_features, *(m.out_features for m in linears))
    if any(a.out_features != b.in_features for a, b in itertools.pairwise(linears)):
        return "its Linear layers' widths do not chain"
    return MlpMatch(widths, tuple(activations), tuple(m.bias is not None for m in linears), tuple(linears))


def _rest(node: torch.fx.Node) -> list:
    return [*node.args[1:], *node.kwargs.values()]


def _kind(model: nn.Module, node: torch.fx.Node) -> nn.Linear | str:
    """A Linear module, an activation's name, or the reason the node is neither."""
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        if type(module) is nn.Linear:
            return module
        if type(module) is nn.GELU and module.approximate != "none":
            return "only the exact (erf) GELU is fused"
        name = _MODULES.get(type(module))
        return name or f"{type(module).__name__} is not a layer the fused step knows"
    if node.op == "call_function":
        name = _FUNCTIONS.get(node.target)
        if name == "gelu" and node.kwargs.get("approximate", "none") != "none":
            return "only the exact (erf) GELU is fused"
        if name:
            return name
        if node.target in (operator.getitem, torch.flatten):
            return "its forward indexes or reshapes the data"
        return f"its forward calls {getattr(node.target, '__name__', node.target)}, which the fused step does not know"
    if node.op == "call_method" and node.target in _METHODS:
        return _METHODS[str(node.target)]
    return f"its forward does {node.op} {node.target}, which the fused step does not know"
