"""Run a user's program in this process, unchanged, as ``python SCRIPT.py ARGS`` or ``python -m MODULE
ARGS`` would: ``__name__ == "__main__"``, ``sys.argv``, ``sys.path[0]`` (the script's folder; the working
folder for ``-m``) and the working folder as they are (relative paths work). Like ``cProfile``'s
``main()``: ``runpy.run_path`` (written out, for ``sys.argv[0]``) / ``runpy.run_module``. Afterwards the working folder, ``sys.stdout`` and
``sys.stderr`` are put back (a program may ``os.chdir`` or send its output to a log of its own).

``check`` finds bad input before anything runs (a missing file, a syntax error, a module that is not
there) and says it in one line; ``run`` returns an ``Outcome``: the program's exit status, its own
exception as its own traceback (devicelab's and runpy's frames left out), or that it was stopped once
measured or interrupted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import runpy
import sys
import threading
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass

from devicelab.errors import UserError
from devicelab.profile.watch import StopProgram


@dataclass(frozen=True)
class Program:
    kind: str  # "script" or "module"
    name: str  # the path as given, or the module name
    args: tuple[str, ...]
    path: str  # the file that runs

    @property
    def label(self) -> str:
        return self.name if self.kind == "script" else f"-m {self.name}"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stopped: bool = False  # ended by devicelab once measured (--stop-after)
    interrupted: bool = False
    error: str | None = None  # the program's traceback, as Python would print it
    error_line: str | None = None  # its last line ("ValueError: ...")
    hard_exit: bool = False  # it called os._exit(): the caller reports, then ends the process the same way


def check(kind: str, name: str, args: tuple[str, ...] = ()) -> Program:
    if kind == "module":
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError) as error:
            spec, reason = None, str(error)
        else:
            reason = "no such module"
        if spec is None or spec.origin in (None, "built-in", "frozen"):
            raise UserError(f"-m {name}: {reason}", hint="check the name, and run from the folder it is in")
        return Program("module", name, args, spec.origin)
    if not os.path.exists(name):
        raise UserError(f"{name}: no such file", hint="give the path of a Python script")
    if os.path.isdir(name):
        raise UserError(f"{name} is a folder", hint="give the path of a Python script")
    try:
        with open(name, "rb") as f:
            compile(f.read(), name, "exec")
    except SyntaxError as error:
        raise UserError(
            f"{error.filename}:{error.lineno}: syntax error: {error.msg}",
            hint="fix the script, then run again",
        ) from None
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {name}: {error}") from None
    return Program("script", name, args, os.path.abspath(name))


@contextmanager
def _as_main(program: Program):
    argv, path0, cwd = sys.argv, sys.path[0] if sys.path else None, os.getcwd()
    streams = sys.stdout, sys.stderr
    sys.argv = [program.name if program.kind == "script" else program.path, *program.args]
    first = os.path.dirname(program.path) if program.kind == "script" else os.getcwd()
    if sys.path:
        sys.path[0] = first
    else:
        sys.path.append(first)
    try:
        yield
    finally:
        sys.argv = argv
        if path0 is not None and sys.path:
            sys.path[0] = path0
        with contextlib.suppress(OSError):  # the program may have changed folder (os.chdir)
            os.chdir(cwd)
        if (sys.stdout, sys.stderr) != streams:  # it sent its output to a log of its own: the report is ours
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            sys.stdout, sys.stderr = streams


class _HardExit(BaseException):
    """The program's ``os._exit(code)`` on its main thread, turned into an exception so that what was
    measured is reported before the process ends (``os._exit`` would end it on the spot)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def _hard_exit_caught():
    """``os._exit`` raises ``_HardExit`` on this process' main thread while the program runs; anywhere else
    (a forked DataLoader worker or multiprocessing child ends with ``os._exit``, another thread) it is the
    real one."""
    real, pid = os._exit, os.getpid()

    def hard_exit(code: int) -> None:
        if os.getpid() == pid and threading.current_thread() is threading.main_thread():
            raise _HardExit(code)
        real(code)

    os._exit = hard_exit
    try:
        yield
    finally:
        os._exit = real


def _user_traceback(error: BaseException) -> str:
    skipped = (runpy.__file__, "<frozen runpy>", os.path.dirname(__file__) + os.sep)
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(skipped):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _run_path(path: str) -> None:
    """``runpy.run_path(path, run_name="__main__")`` but for ``sys.argv[0]``: run_path sets it to the file
    it runs, and python leaves it as typed (``sub/train.py``) while making ``__file__`` absolute."""
    with io.open_code(path) as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)  # no __future__ flags of this file
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __loader__=None, __package__=None, __spec__=None)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main  # pickle and multiprocessing's spawn find the program's classes here
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def run(program: Program) -> Outcome:
    """Run the program to its end (or until the watcher stops it); never raises but KeyboardInterrupt
    is reported as ``interrupted``."""
    try:
        with _as_main(program), _hard_exit_caught():
            if program.kind == "script":
                _run_path(program.path)
            else:
                runpy.run_module(program.name, run_name="__main__", alter_sys=True)
    except StopProgram:
        return Outcome(0, stopped=True)
    except _HardExit as exit_:
        return Outcome(exit_.code, hard_exit=True)
    except KeyboardInterrupt:
        return Outcome(130, interrupted=True)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return Outcome(code or 0)
        print(code, file=sys.stderr)  # what Python does with sys.exit("message")
        return Outcome(1)
    except BaseException as error:  # the program's own error: shown as its traceback
        text = _user_traceback(error)
        return Outcome(1, error=text, error_line=text.strip().splitlines()[-1])
    return Outcome(0)
