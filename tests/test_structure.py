"""The package structure, checked from the code's own imports (read with ast, nothing run).

The arrows between the packages: daemon -> everything; replies -> models; classifiers and
models -> nothing of ours. No import cycles between modules, lazy imports included. One
owner module per external resource. No product module over 400 lines, no function over 60.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("daemon", "classifiers", "replies", "models")
# Which of our packages each package may import (itself always).
ALLOWED = {
    "daemon": {"classifiers", "replies", "models"},
    "replies": {"models"},
    "classifiers": set(),
    "models": set(),
}
# External resources and the one module that may import each.
OWNERS = {
    "imapclient": "daemon/mailbox/imap.py",
    "aiosmtplib": "replies/smtp.py",
    "skops": "classifiers/files.py",
}
MAX_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """Every module name `path` imports, at the top or inside functions."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from package import module` imports the module too
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _ours(name: str) -> str | None:
    """The module of ours that `name` is, or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


GRAPH = {
    module: {m for m in map(_ours, _imports(path)) if m is not None and m != module}
    for module, path in MODULES.items()
}


def test_the_packages_see_the_graph() -> None:
    assert "daemon.triage.pipeline" in GRAPH
    assert "models.cases" in GRAPH["daemon.triage.pipeline"]


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_packages_below_it(package: str) -> None:
    wrong = sorted(
        f"{module} -> {imported}"
        for module, imports in GRAPH.items()
        if module.split(".")[0] == package
        for imported in imports
        if imported.split(".")[0] not in {package, *ALLOWED[package]}
    )
    assert wrong == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize(("library", "owner"), sorted(OWNERS.items()))
def test_one_owner_module_per_external_resource(library: str, owner: str) -> None:
    users = sorted(
        str(path.relative_to(REPO))
        for path in MODULES.values()
        if any(name.split(".")[0] == library for name in _imports(path))
    )
    assert users == [owner]


def test_the_database_engine_is_made_in_one_module() -> None:
    users = sorted(
        str(path.relative_to(REPO))
        for path in MODULES.values()
        if "create_engine" in path.read_text(encoding="utf-8")
    )
    assert users == ["models/database.py"]


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in MODULES.values():
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_LINES:
            too_long.append(f"{path.relative_to(REPO)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert too_long == []


def test_every_package_opens_with_a_paragraph_on_its_job() -> None:
    packages = [p for p in MODULES.values() if p.name == "__init__.py"]
    missing = [
        str(p.relative_to(REPO))
        for p in packages
        if "migrations" not in p.parts
        and len(ast.get_docstring(ast.parse(p.read_text())) or "") < 60
    ]
    assert missing == []
