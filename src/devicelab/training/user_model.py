"""A user's own ``nn.Module`` in devicelab's trainer: where its class came from, and getting it back.

``devicelab train --model FILE.py:Class`` (or ``package.module:factory``) with ``--model-args JSON``
constructs the module here; ``devicelab.fit(model, ...)`` brings one already built. Either way the run
records where the class came from (``ModelSource``: the file or module, the name, the constructor's
arguments, the source's sha256) and the run folder keeps a copy of the source (``model_source.py``), so
that ``predict``, ``--resume``, ``report`` and ``sweep`` can build the module again, or say clearly why not.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from devicelab.errors import UserError

SOURCE_COPY = "model_source.py"  # the copy of the model's source in a run folder


@dataclass
class UserModel:
    """A module brought by the user, with what trains it (None: devicelab's, from the config)."""

    module: nn.Module
    loss_fn: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None  # over ``module``'s parameters
    source: dict = field(default_factory=dict)  # ``record()``: where the class came from

    def copy(self) -> UserModel:
        """A deep copy (module, loss, an optimizer of the same kind and settings) to time on a device
        without touching the user's own module."""
        module = copy.deepcopy(self.module)
        optimizer = None
        if self.optimizer is not None:
            settings = {k: v for k, v in self.optimizer.param_groups[0].items() if k != "params"}
            optimizer = type(self.optimizer)(module.parameters(), **settings)
        return UserModel(module, copy.deepcopy(self.loss_fn), optimizer, self.source)


def with_default_loss(user: UserModel, dataset, out_shape: tuple[int, ...]) -> UserModel:
    """``user`` with the loss devicelab chooses when the user gave none: binary cross-entropy for one
    logit a row on a two-class target (``devicelab.training.outputs``); else None (the task's own,
    cross-entropy or MSE, which the fused kernel knows)."""
    from devicelab.training.outputs import BinaryLogitLoss, single_logit

    classes = len(dataset.classes) if dataset.classes is not None else 0
    if user.loss_fn is None and dataset.task == "classification" and single_logit(out_shape, classes):
        return dataclasses.replace(user, loss_fn=BinaryLogitLoss())
    return user


def parse_spec(spec: str) -> tuple[str, str]:
    """``"FILE.py:Class"`` or ``"package.module:factory"`` → (where, name); a UserError when malformed."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise UserError(
            f"--model {spec!r} is not FILE.py:ClassName or package.module:factory",
            hint="e.g. --model model.py:MLP",
        )
    return where, name


def record(spec: str, args: dict) -> dict:
    """Where ``spec`` points, as saved with a run (the file's absolute path and its sha256)."""
    where, name = parse_spec(spec)
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise UserError(f"--model {spec}: there is no file {where}", hint="give the path of a .py file")
        return {"kind": "file", "path": str(path), "name": name, "args": args, "sha256": _sha(path)}
    found = {"kind": "module", "module": where, "name": name, "args": args}
    try:  # the module's file, to keep a copy of it in the run folder (the import itself happens later)
        origin = _import_module(where).__file__
    except Exception:  # not importable: build() says so in one line
        origin = None
    if origin and Path(origin).is_file():
        found |= {"path": str(Path(origin).resolve()), "sha256": _sha(Path(origin))}
    return found


def record_of(module: nn.Module, args: dict | None = None) -> dict:
    """Where an already built module's class is defined (``devicelab.fit``); ``args``: its constructor's
    arguments when known (None: not known, so the run cannot rebuild it by itself)."""
    cls = type(module)
    try:
        path = inspect.getsourcefile(cls) if cls.__module__ != "builtins" else None
    except (OSError, TypeError):  # a class from a notebook cell, `python -c` or exec: no file to keep
        path = None
    found = {"kind": "class", "module": cls.__module__, "name": cls.__qualname__, "args": args}
    if path and Path(path).is_file():
        found |= {"path": str(Path(path).resolve()), "sha256": _sha(Path(path))}
    return found


def parse_args(text: str | None) -> dict:
    if not text:
        return {}
    try:
        args = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"--model-args is not JSON ({error})", hint="e.g. --model-args '{\"hidden\": 16}'"
        ) from None
    if not isinstance(args, dict):
        raise UserError(
            "--model-args must be a JSON object of keyword arguments", hint="e.g. '{\"hidden\": 16}'"
        )
    return args


def build(source: dict, run_dir: Path | None = None) -> nn.Module:
    """Construct the module ``source`` describes. From a run folder (``run_dir``) the saved copy of the
    source is used when the original file has changed or gone."""
    target = _load_attr(source, run_dir)
    args = source.get("args")
    if args is None:
        raise UserError(
            f"the model {source.get('name')} of this run was passed to devicelab.fit already built, so its "
            "constructor's arguments are unknown",
            hint="pass model_args= to devicelab.fit (or train with --model FILE.py:Class --model-args JSON)",
        )
    missing = _missing_arguments(target, args)
    if missing:
        example = json.dumps(dict.fromkeys(missing, 8) | args)
        raise UserError(
            f"{source['name']} from {_where(source)} needs the argument(s) {', '.join(missing)}, and the "
            f"model's arguments ({json.dumps(args)}) do not give them",
            hint=f"pass them as --model-args '{example}' (the value yours), or model_args= to devicelab.fit",
        )
    try:
        module = target(**args)
    except Exception as error:
        _show_user_traceback(error)
        raise UserError(
            f"constructing {source['name']}(**{json.dumps(args)}) from {_where(source)} raised "
            f"{type(error).__name__}: {str(error)[:120]}",
            hint="see your code's traceback above, if any; fix it or pass other --model-args",
        ) from None
    if not isinstance(module, nn.Module):
        raise UserError(
            f"{source['name']} from {_where(source)} returned a {type(module).__name__}, not an nn.Module",
            hint="--model names a torch.nn.Module class or a function that returns one",
        )
    return module


def materialize(module: nn.Module, rows: torch.Tensor | None = None, saved: dict | None = None) -> nn.Module:
    """``module`` with its lazy layers (``nn.LazyLinear`` & co., parameters without a shape until the
    first forward) given their shapes: by one forward on ``rows`` (eval mode, no gradients; the first
    forward of a run, the probe, does the same, so a seed draws the same weights), or from the ``saved``
    tensors of a run folder (then loaded over them). A module without lazy layers is left as it is."""
    from torch.nn.parameter import is_lazy

    lazy = [(n, t) for n, t in (*module.named_parameters(), *module.named_buffers()) if is_lazy(t)]
    if not lazy:
        return module
    if saved is not None:
        for name, tensor in lazy:
            if name in saved:  # (a name not saved: the shape check after says which)
                tensor.materialize(saved[name].shape, dtype=saved[name].dtype)
    elif rows is not None:
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                module(rows)
        finally:
            module.train(was_training)
    return module


def copy_source(source: dict, folder: Path) -> None:
    """Keep a copy of the model's source file in the run folder (once; atomic)."""
    from devicelab.fsutil import atomic_write_bytes

    path = source.get("path")
    if path and Path(path).is_file() and not (folder / SOURCE_COPY).exists():
        atomic_write_bytes(folder / SOURCE_COPY, Path(path).read_bytes())


def _load_attr(source: dict, run_dir: Path | None):
    name = source.get("name", "")
    if source.get("kind") == "file" or (source.get("module") == "__main__" and source.get("path")):
        module = _import_file(source, run_dir)
    else:
        try:
            module = _import_module(source["module"])
        except Exception as error:
            raise UserError(
                f"cannot import {source['module']} for the model {name} ({type(error).__name__}: {error})",
                hint="run from the folder the model was trained from, or make the package importable",
            ) from None
    target = module
    for part in name.split("."):
        target = getattr(target, part, None)
    if target is None:
        found = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)]
        raise UserError(
            f"{_where(source)} has no {name}",
            hint=f"the nn.Module classes there: {', '.join(found) or 'none'}",
        )
    return target


def _import_module(name: str):
    """``importlib.import_module``, finding packages in the current folder as ``python -m`` does (the
    ``devicelab`` console script does not put it on ``sys.path``)."""
    added = "" not in sys.path and str(Path.cwd()) not in sys.path
    if added:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(str(Path.cwd()))


def _import_file(source: dict, run_dir: Path | None):
    path = Path(source["path"])
    saved = run_dir / SOURCE_COPY if run_dir else None
    if saved and saved.is_file() and (not path.is_file() or _sha(path) != source.get("sha256")):
        path = saved  # the source as it was trained: the original changed or is gone
    if source.get("module") == "__main__":  # a script: importing it again would run it again
        raise UserError(
            f"the model {source['name']} was defined in the script {source['path']}, which devicelab cannot "
            "import without running it",
            hint="define the class in a module file of its own and import it from your script",
        )
    if not path.is_file():
        raise UserError(
            f"the model's source {source['path']} is gone and the run folder has no copy of it",
            hint="put the file back, or train again",
        )
    key = f"devicelab_user_model_{_sha(path)[:16]}"
    if key in sys.modules:  # loaded once: every model built from it is of one class (vmap needs that)
        return sys.modules[key]
    _warn_top_level_code(path)
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(source["path"]).parent))  # its own imports, as `python FILE.py` finds them
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        _show_user_traceback(error)
        raise UserError(
            f"importing {path} raised {type(error).__name__}: {str(error)[:120]}",
            hint="the traceback above is from your code",
        ) from None
    finally:
        sys.path.remove(str(Path(source["path"]).parent))
    sys.modules[key] = module  # (also what pickling and torch.func's deep copies look the class up by)
    return module


def _missing_arguments(target, args: dict) -> list[str]:
    """The parameters of ``target`` (a class or a factory) that have no default and are not in ``args``."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): the call itself says
        return []
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword and p.default is p.empty and p.name not in args]


def _warn_top_level_code(path: Path) -> None:
    """A warning, before the import, when ``path`` loops at its top level (``for``, ``while``, a ``with``
    block) outside ``if __name__ == "__main__":``: a training script with the model class in it (the lesson's)
    would train, and show its plots, while devicelab imports it. One-off calls (``torch.manual_seed(0)``,
    ``print``) are left unsaid: a module file may make them."""
    import ast
    import warnings

    from devicelab.errors import DevicelabWarning

    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):  # the import says so, with the user's traceback
        return
    work = (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)
    for node in tree.body:
        if isinstance(node, work):
            code = ast.unparse(node).splitlines()[0][:60]  # its first line, without comments
            warnings.warn(
                f"{path.name} runs code when it is imported (line {node.lineno}: {code}), and devicelab imports "
                'it to build the model, so that runs too; put it under if __name__ == "__main__":',
                DevicelabWarning,
                stacklevel=2,
            )
            return


def _show_user_traceback(error: BaseException) -> None:
    """The user's code's traceback, without devicelab's and importlib's frames above it, on stderr."""
    ours = str(Path(__file__).resolve().parents[1])
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith((ours, "<frozen")):
        tb = tb.tb_next
    if tb is not None:  # (none: the call itself failed, e.g. a wrong keyword: the one line says it)
        traceback.print_exception(type(error), error, tb, file=sys.stderr)


def _where(source: dict) -> str:
    return source.get("path") or source.get("module", "?")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
