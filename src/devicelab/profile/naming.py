"""The names a program gave its top-level modules, so that the layer table can call them what the user
would: ``encoder.0`` and ``decoder.0`` for two models, ``net.a`` and ``net.b`` for two loose ``Linear``
layers held by a plain object, rather than ``Sequential.0#2`` or ``Linear#2``.

The names are looked up once, when the layer window ends (the program is still running): in the local
variables of the program's own frames on the stack (innermost first: ``model`` inside ``def main()``),
then in its ``__main__`` globals, then inside the other top-level modules seen in the window. A module
is found as a variable, a sub-module of a module (``model.head``), a module attribute of a plain object
(``net.a``, ``self.model``), or an item of a list, tuple or dict (``models[0]``). Nothing is called on
the program's objects but ``vars()`` and ``nn.Module.named_modules``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from types import FrameType, FunctionType, ModuleType

from torch import nn

from devicelab.profile.sync_audit import library_file

_PROFILE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ITEMS = 64  # items of a list, tuple or dict looked at


def program_namespaces(frame: FrameType | None) -> list[Mapping]:
    """The local variables of the program's frames at and above ``frame`` (innermost first), then the
    globals of ``__main__``."""
    spaces: list[Mapping] = []
    while frame is not None:
        filename = frame.f_code.co_filename
        if not library_file(filename) and not filename.startswith(_PROFILE_DIR):
            spaces.append(frame.f_locals)
        frame = frame.f_back
    main = sys.modules.get("__main__")
    if main is not None:
        spaces.append(vars(main))
    return spaces


def module_paths(roots: list[nn.Module], namespaces: list[Mapping]) -> dict[int, str]:
    """``{id(root): path}`` for each root found in ``namespaces`` or inside another root."""
    wanted = {id(root) for root in roots}
    found: dict[int, str] = {}
    others = {type(root).__name__: root for root in roots}  # a root inside another: by its class name
    for space in [*namespaces, others]:
        for name, value in list(space.items()):
            if not isinstance(name, str) or name.startswith("__"):
                continue
            for path, module in _modules(name, value, plain=True):
                if id(module) in wanted and id(module) not in found:
                    if space is not others or module is not value:  # a root by its class name: as now
                        found[id(module)] = path
            if len(found) == len(wanted):
                return found
    return found


def _modules(name: str, value, plain: bool) -> Iterator[tuple[str, nn.Module]]:
    if isinstance(value, nn.Module):
        for sub, module in value.named_modules():
            yield (f"{name}.{sub}" if sub else name), module
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value[:_ITEMS]):
            if isinstance(item, nn.Module):
                yield from _modules(f"{name}[{i}]", item, plain=False)
    elif isinstance(value, dict):
        for key, item in list(value.items())[:_ITEMS]:
            if isinstance(key, str) and isinstance(item, nn.Module):
                yield from _modules(f"{name}[{key!r}]", item, plain=False)
    elif plain and not isinstance(value, (type, ModuleType, FunctionType)):
        try:
            attributes = vars(value)
        except TypeError:  # no __dict__
            return
        for attribute, item in list(attributes.items()):
            if isinstance(attribute, str) and isinstance(item, nn.Module):
                yield from _modules(f"{name}.{attribute}", item, plain=False)
