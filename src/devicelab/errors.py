"""The one exception type the CLI turns into a clear line and exit status 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or an unusable environment: what is wrong, where, and how to fix it.

    The CLI prints ``devicelab: error: <message>`` on one line and exits with status 2.
    Library callers get the exception and can show it however they like; it is a ValueError, so code
    that already catches bad arguments catches it too.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class DevicelabWarning(UserWarning):
    """Something the user should know that does not stop the run (a softmax before cross-entropy).

    The CLI prints ``devicelab: warning: <message>``; Python callers see an ordinary ``UserWarning``."""


def one_line(error: BaseException, limit: int = 120) -> str:
    """``error`` as one line for a reason: its type and the first line of its message, cut at ``limit``."""
    first = (str(error).strip().splitlines() or [""])[0][:limit]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def listed(names, limit: int = 12) -> str:
    """``names`` joined for a message, at most ``limit`` of them and the count of the rest (a file with 2,000
    columns must not make the one error line 20,000 characters long); no words, so it reads in any language."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … (+{len(names) - limit})"
