"""One shape for the code: no import cycles between devicelab's modules, one name per thing, one workload
builder, and a config checked where it is built."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import devicelab
from devicelab.errors import UserError

SRC = Path(devicelab.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """The devicelab modules ``path`` imports when it is imported: top-level ``import``/``from`` lines,
    not those inside functions (imported when called) or under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base])
            if base.startswith("devicelab"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("devicelab"))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    return {
        name: {m for m in top_level_imports(path) if m in files and m != name} for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = 2, path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_between_devicelab_modules():
    graph = import_graph()
    assert "devicelab.training.loop" in graph  # the walk really read the package
    assert find_cycle(graph) is None


def test_data_does_not_import_training():
    graph = import_graph()
    data_modules = [m for m in graph if m == "devicelab.data" or m.startswith("devicelab.data.")]
    assert data_modules
    for module in data_modules:
        assert not any(m.startswith("devicelab.training") for m in graph[module]), module


def all_imports(path: Path) -> set[str]:
    """Every devicelab module ``path`` may import at run time, inside functions too (not the names under
    ``if TYPE_CHECKING:``, which exist for type checkers only)."""
    tree = ast.parse(path.read_text())
    checking = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("devicelab"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("devicelab"))
    return found


def test_the_fast_paths_never_import_training():
    """One direction: training picks a fast path (training/runner.py imports devicelab.fast); the fast
    paths read a workload by its attributes and import nothing from devicelab.training, not even inside
    a function."""
    fast = sorted((SRC / "fast").glob("*.py"))
    assert len(fast) > 5
    for path in fast:
        wrong = {m for m in all_imports(path) if m.startswith("devicelab.training")}
        assert not wrong, f"{path.name} imports {wrong}"


def test_train_is_a_function_and_training_is_the_package():
    import devicelab.training.loop  # importing the package must not shadow the function

    assert callable(devicelab.train) and devicelab.train is devicelab.training.loop.train
    assert not callable(devicelab.training)


def test_one_workload_builder():
    """Only training/workload.py builds a model together with its step (profile and bench use it)."""
    calls = re.compile(r"(?<!def )\b(build_model|make_loss)\(")
    builders = [
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if {m.group(1) for m in calls.finditer(p.read_text())} == {"build_model", "make_loss"}
    ]
    assert builders == ["training/workload.py"]


def test_a_config_is_checked_where_it_is_built():
    with pytest.raises(UserError, match="--lr"):
        devicelab.TrainConfig(lr=0)
    with pytest.raises(UserError, match=r"--epochs.*--fast|--fast.*--epochs"):
        devicelab.TrainConfig(epochs=0, fast="sometimes")  # every problem, in one error
