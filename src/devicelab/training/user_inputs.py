"""The rows a user's module trains on, in the dtype it takes and on one device it is on, decided before
training: ``devicelab.fit(model, X, y)`` is the user's own loop, so the rows meet the model as the user's
loop would hand them over.

- Floating rows take the model's floating dtype (a ``model.double()`` trains on float64 rows, as the
  user's loop with ``torch.tensor(X, dtype=torch.float64)`` does; float32 is the default). bfloat16 is
  refused in one line: the rows are held as numpy arrays, which have no bfloat16.
- Integer rows (a numpy int array or an int tensor: category codes, token ids) stay integers where the
  module takes them, found by trying it on two rows: an ``nn.Embedding`` first layer gets its indices as
  given (never cast to float32, which would also round ids above 2**24). A module that cannot take
  integers (its first layer a ``Linear``) gets them as floats, as before.
- A model whose tensors are on the meta device (shapes without values) or on several devices is refused
  in one line naming the devices and the fix.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.errors import UserError, one_line

CHECK_ROWS = 65536  # integer rows checked at a time (check_codes)
NUMPY_FLOATS = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def float_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of the module's first floating parameter (or buffer); float32 when it has none."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def check_devices(module: nn.Module, device: str) -> torch.device | None:
    """The one device ``module``'s tensors are on (None: it has none); a UserError for the meta device
    or for several devices, and for a model on another device than ``device`` asks."""
    first: dict[torch.device, str] = {}  # each device and the first tensor found on it
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        first.setdefault(tensor.device, name)
    meta = next((d for d in first if d.type == "meta"), None)
    several = ", ".join(f"{name} on {d}" for d, name in first.items())
    if len(first) > 1 and meta is not None:
        raise UserError(
            f"the model's tensors are on {len(first)} devices ({several}); devicelab trains a model on one",
            hint="give the meta ones values first: model.to_empty(device='cpu'), then model.load_state_dict(...)",
        )
    if len(first) > 1:
        raise UserError(
            f"the model's tensors are on {len(first)} devices ({several}); devicelab trains a model on one",
            hint="move it to one device first (model.to('cpu')); devicelab moves it to the device it trains on",
        )
    if meta is not None:
        raise UserError(
            f"the model is on the meta device (its tensors have shapes but no values, {first[meta]} for one) "
            f"and device={device!r} was asked for",
            hint="build the model on the CPU (devicelab moves it to the device it trains on), or give it values "
            "first: model.to_empty(device='cpu'), then model.load_state_dict(...)",
        )
    where = next(iter(first), None)
    if where is not None and where.type != "cpu" and device != "auto" and torch.device(device) != where:
        raise UserError(
            f"the model is on {where} but device={device!r} was asked for",
            hint=f"leave the model on the CPU (devicelab moves it), or pass device={str(where)!r}",
        )
    return where


def rows_for(module: nn.Module, dataset: Dataset, where: torch.device | None, asked: bool = False) -> Dataset:
    """``dataset`` with its feature rows in the dtype ``module`` takes (see the module's docstring);
    ``asked``: integer rows were asked for (``--model-inputs int``), so they stay integers (the probe
    after says why when the module cannot take them)."""
    x, dtype = dataset.x_train, float_dtype(module)
    floats = NUMPY_FLOATS.get(dtype, np.float32)
    if x.dtype.kind in "iu" and (
        asked
        or _runs(module, x[:2].astype(np.int64), where)
        or not _runs(module, x[:2].astype(floats), where)
    ):  # integers unless the module takes floats and not integers (a code out of range: said, as integers)
        return _as(dataset, np.int64)  # indices as torch wants them (int64), whatever int width came
    if dtype not in NUMPY_FLOATS:
        raise UserError(
            f"the model's parameters are {dtype}, and devicelab holds the rows as numpy arrays, which have "
            "no such dtype",
            hint="pass model.float(); for bfloat16 arithmetic, use torch.autocast inside its forward",
        )
    return _as(dataset, NUMPY_FLOATS[dtype])


def integer_rows(dataset: Dataset) -> Dataset:
    """A file's encoded rows as int64 (``--model-inputs int``); a UserError naming the first column
    with a cell that is not a whole number."""
    for x in (dataset.x_train, dataset.x_test, dataset.x_val):
        bad = ~(np.isfinite(x) & (x == np.round(x)))
        if bad.any():
            column = dataset.encoded_names[int(np.argwhere(bad)[0][1])] if x.ndim == 2 else "?"
            value = x[tuple(np.argwhere(bad)[0])]
            raise UserError(
                f"--model-inputs int: the column {column} has a cell {value:g} that is not a whole number",
                hint="pass --scaler none (scaling makes fractions), or leave --model-inputs out for float rows",
            )
    return _as(dataset, np.int64)


def input_rows(x: np.ndarray, module: nn.Module, saved_dtype: str | None) -> np.ndarray:
    """Rows read for ``predict`` in the dtype the run trained on: integer codes as integers, else the
    model's floating dtype."""
    if saved_dtype and np.dtype(saved_dtype).kind in "iu":
        return x.astype(saved_dtype)
    return x.astype(NUMPY_FLOATS.get(float_dtype(module), np.float32), copy=False)


def check_codes(module: nn.Module, dataset: Dataset, where: torch.device | None) -> None:
    """Integer rows (codes, ids) through the module once, all of them, in chunks (eval mode, no gradients):
    a code beyond an embedding's rows is one line before training, not an IndexError at a log point."""
    was_training = module.training
    module.eval()
    try:
        for part, x in (("X", dataset.x_train), ("X_val", dataset.x_val), ("X_test", dataset.x_test)):
            for start in range(0, len(x), CHECK_ROWS):
                rows = x[start : start + CHECK_ROWS]
                try:
                    with torch.no_grad():
                        module(torch.from_numpy(rows).to(where or "cpu"))
                except Exception as error:
                    raise UserError(
                        f"model(x) on the integer rows {start}-{start + len(rows) - 1} of {part} raised "
                        f"{one_line(error)}; the codes there run from {rows.min()} to {rows.max()}",
                        hint="an embedding takes codes from 0 to num_embeddings - 1: make it larger, or map the codes",
                    ) from None
    finally:
        module.train(was_training)


def _runs(module: nn.Module, rows: np.ndarray, where: torch.device | None) -> bool:
    """The module runs on these rows as they are (tried once, in eval mode, without gradients)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.from_numpy(rows).to(where or "cpu"))
    except Exception:  # the probe after this choice says what, where it matters
        return False
    finally:
        module.train(was_training)
    return True


def _as(dataset: Dataset, dtype) -> Dataset:
    if dataset.x_train.dtype == dtype and dataset.x_test.dtype == dtype and dataset.x_val.dtype == dtype:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train.astype(dtype),
        x_test=dataset.x_test.astype(dtype),
        x_val=dataset.x_val.astype(dtype),
    )
