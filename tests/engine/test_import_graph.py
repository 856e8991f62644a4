"""The packages import each other in one direction: no circle, whether the import is at the top of a
module or inside a function, and an import inside a function is there only with its reason beside it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("pipeline", "api", "scheduler")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph() -> tuple[dict[str, set[str]], list[tuple[Path, int]]]:
    """Module -> the project modules it imports (a module imports its packages too), and where
    the function-level imports are."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in known}
    in_functions: list[tuple[Path, int]] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) in nested:
                in_functions.append((path, node.lineno))
            for name in imported_names(node, module, path.name == "__init__.py"):
                target = resolve(name)
                if target is None or target == module:
                    continue
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                    ancestor = ".".join(parts[:depth])
                    if ancestor in known and ancestor != module and not module.startswith(ancestor + "."):
                        graph[module].add(ancestor)
    return graph, in_functions


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_in_pipeline_api_or_scheduler():
    graph, _ = import_graph()
    assert len(graph) > 100  # every module was read
    assert circles(graph) == []


def test_the_graph_check_finds_a_circle_closed_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_every_import_inside_a_function_says_why_on_its_line():
    _, in_functions = import_graph()
    unexplained = [f"{path.relative_to(ROOT)}:{line}" for path, line in in_functions
                   if "#" not in path.read_text(encoding="utf-8").splitlines()[line - 1]]
    assert in_functions and unexplained == []
