"""Everything the watcher changes in torch, each change with its undo, undone together.

A ``Patches`` collects global hook handles and replaced attributes; ``undo()`` removes and restores them
in reverse order, whatever happened in between (``devicelab.profile.watch`` calls it from one
``finally``). Nothing is patched that ``undo`` does not put back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable


class Patches:
    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._undo)

    def hook(self, handle) -> None:
        """A ``RemovableHandle`` of a global hook."""
        self._undo.append(handle.remove)

    def replace(self, owner: object, name: str, make: Callable[[Callable], Callable]) -> None:
        """``owner.name = make(original)``; undone by putting the original back (or deleting an attribute
        that ``owner`` only inherited)."""
        had_own = name in vars(owner)
        saved = vars(owner).get(name)
        setattr(owner, name, make(getattr(owner, name)))

        def restore() -> None:
            if had_own:
                setattr(owner, name, saved)
            elif name in vars(owner):
                delattr(owner, name)

        self._undo.append(restore)

    def add(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def ignore_warnings(self, messages: tuple[str, ...]) -> None:
        """Warnings matching ``messages`` (regular expressions) ignored until undone; every filter added
        meanwhile (the program's too) goes when undone, as ``warnings.catch_warnings`` does."""
        saved = warnings.catch_warnings()
        saved.__enter__()
        self._undo.append(lambda: saved.__exit__(None, None, None))
        for message in messages:
            warnings.filterwarnings("ignore", message=message)

    def undo(self) -> None:
        """Undo every change, newest first; every undo runs even if one fails (the first error is raised)."""
        error: BaseException | None = None
        while self._undo:
            try:
                self._undo.pop()()
            except BaseException as e:  # keep undoing the rest, then raise
                error = error or e
        if error is not None:
            raise error
