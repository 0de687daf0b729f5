"""What the tensors of a module call tell the watcher: the device a program runs on, which module's
output a loss is (the loss phase), and the modules whose layers no hook sees (compiled, TorchScript)."""

from __future__ import annotations

import torch

from devicelab.profile.macs import first_tensor


def device_of(module, args) -> torch.device:
    for p in module.parameters():
        return p.device
    tensor = first_tensor(args)
    return tensor.device if tensor is not None else torch.device("cpu")


def in_transform() -> bool:
    """A ``torch.func`` transform (``grad``, ``vmap``) runs: its tensors are wrapped, a ``backward()`` raises,
    and a value kept from inside it cannot be read once it has ended."""
    return torch._C._functorch.maybe_current_level() is not None


def loss_module(loss: torch.Tensor | None, outputs: dict) -> int | None:
    """id() of the parameter-free top-level module whose output ``loss`` is (or is a few operations
    from); None when the loss came from a function."""
    if loss is None or loss.grad_fn is None:
        return None
    frontier, seen = [loss.grad_fn], 0
    while frontier and seen < 32:
        fn = frontier.pop(0)
        seen += 1
        found = outputs.get(id(fn))
        if found is not None and found[0] is fn:
            module = found[1]
            if not any(p.requires_grad for p in module.parameters()):
                return id(module)
            return None
        frontier.extend(f for f, _ in getattr(fn, "next_functions", ()) if f is not None)
    return None


def block_note(module: torch.nn.Module) -> str | None:
    """What the report says about a top-level module whose layers the hooks cannot see."""
    if type(module).__name__ == "OptimizedModule":
        return (
            f"{type(module._orig_mod).__name__} is torch.compile'd: timed as one block, its layers unseen "
            "(the watcher's hooks stay out of its graph; it may compile once more in the warm-up, as the "
            "hooks that look for the first step come off)"
        )
    if isinstance(module, torch.jit.ScriptModule):
        return f"{module.original_name} is TorchScript: timed as one block, forward only, its layers unseen"
    return None
