"""Weights, optimizer state and RNG state in safetensors files: tensors plus JSON metadata, loaded
without unpickling anything. A damaged file is a UserError, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from devicelab.errors import UserError
from devicelab.fsutil import atomic_write_bytes


def _to_host(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # sync: copying device tensors to the host waits for the device; done once, when a run is saved
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, object]) -> None:
    from safetensors.torch import save

    text_metadata = {k: json.dumps(v) for k, v in metadata.items()}
    atomic_write_bytes(path, save(_to_host(tensors), metadata=text_metadata))


def load_tensors(path: Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """``(tensors, metadata)`` from a safetensors file written by ``save_tensors``."""
    from safetensors import safe_open

    if not path.is_file():
        raise UserError(f"{what} {path} is missing", hint="the run folder is incomplete; train again")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as error:  # any parse failure of an untrusted file means it is damaged
        raise UserError(
            f"{what} {path} is corrupt ({type(error).__name__}: {str(error)[:80]})",
            hint="the file was damaged or truncated; use another run or train again",
        ) from None
    return tensors, metadata


def save_model(path: Path, model: torch.nn.Module) -> None:
    save_tensors(path, model.state_dict(), {"model_spec": getattr(model, "spec", {})})


def load_model(path: Path, spec: dict) -> torch.nn.Module:
    """The MLP described by ``spec`` with the weights in ``path``; a UserError if they do not fit."""
    tensors, _ = load_tensors(path, "weight file")
    return build_checked_model(path, spec, tensors)


def build_checked_model(path: Path, spec: dict, tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The MLP described by ``spec`` holding ``tensors`` (read from ``path``); a UserError if they do not
    fit."""
    from devicelab.models import build_mlp

    if "user_model" in spec:  # the user's own module: imported and constructed again (or a UserError why not)
        from devicelab.training.user_model import build, materialize

        model = materialize(build(spec["user_model"], path.parent), saved=tensors)  # lazy layers: as saved
    else:
        model = None
    try:
        model = build_mlp(spec) if model is None else model
    except (KeyError, TypeError, ValueError) as error:  # an edited or damaged record, not our bug
        raise UserError(
            f"the model shape saved beside {path} is unusable ({type(error).__name__}: {str(error)[:80]})",
            hint="the run folder was damaged; use another run or train again",
        ) from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        raise UserError(
            f"weight file {path} does not fit the model saved with it (expected {expected}, found {found})",
            hint="the run folder was mixed up or damaged; train again",
        )
    floats = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(floats) == 1:  # a module built in float32 and trained as model.double(): back in its dtype
        model = model.to(floats.pop())
    model.load_state_dict(tensors)
    return model


def optimizer_tensors(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """An optimizer ``state_dict`` as flat tensors (``optimizer/<param>/<key>``) and JSON metadata."""
    tensors, scalars = {}, {}
    for index, state in state_dict["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "optimizer_scalars": scalars}


def optimizer_state(tensors: dict[str, torch.Tensor], metadata: dict) -> dict:
    """The inverse of ``optimizer_tensors``."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        kind, index, key = [*name.split("/", 2), "", ""][:3]
        if kind == "optimizer":
            state.setdefault(int(index), {})[key] = value
    for index, values in metadata.get("optimizer_scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": metadata["param_groups"]}
