"""The layers stay layers: no import cycles, and doors know nothing of Kore.ai.

Built from the source with `ast` (imports inside functions count too: a cycle hidden in a function is
still a cycle). A unit is a package of `adapter` (`adapter.doors`) or a top-level module (`adapter.config`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "adapter"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """The `adapter` modules a file imports (`from adapter.x import y` counts as adapter.x, or
    adapter.x.y when y is a module)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("adapter"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("adapter"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if module_path(sub) else base


def module_path(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def graph(files: list[Path]) -> dict[str, set[str]]:
    return {module_name(f): set(imports(f)) - {module_name(f)} for f in files}


def unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


SOURCES = sorted(ADAPTER.rglob("*.py"))


def test_no_cycle_between_modules():
    assert cycles(graph(SOURCES)) == []


def test_no_cycle_between_packages():
    units: dict[str, set[str]] = {}
    for module, targets in graph(SOURCES).items():
        units.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    units.pop("adapter", None)  # the root package's __init__ imports nothing; `from adapter import x` names x
    assert cycles(units) == []


@pytest.mark.parametrize("where", ["adapter/doors", "tests/doors"])
def test_doors_and_their_tests_never_import_kore(where):
    files = sorted((ROOT / where).rglob("*.py"))
    offenders = sorted(f"{module_name(f)} -> {t}" for f in files for t in imports(f) if t.startswith("adapter.kore"))
    assert offenders == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_folder_of_code_is_a_package():
    """setuptools' find_packages skips a folder without __init__.py: a non-editable install would lack it."""
    folders = {f.parent for f in SOURCES}
    assert sorted(str(d.relative_to(ROOT)) for d in folders if not (d / "__init__.py").exists()) == []
