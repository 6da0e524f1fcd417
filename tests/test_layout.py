"""The layout's rules, checked: no import circle, the package never reaches into scripts/, scripts never edit
sys.path, and no harness code asks a stack for its class instead of its capabilities (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "chaos", "conformance", "migrations")
FIRST_PARTY = (*PACKAGES, "scripts", "tests")
BACKEND_CLASSES = {"LocalStack", "DockerStack"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(roots: tuple[str, ...]) -> dict[str, Path]:
    return {_module_name(path): path for root in roots for path in sorted((REPO / root).rglob("*.py"))}


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """First-party modules `module` imports anywhere in its file (inside functions and TYPE_CHECKING too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports the module a.b when there is one, else a name from a.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def _import_graph() -> dict[str, set[str]]:
    known = _modules(FIRST_PARTY)
    return {module: set(_imported(module, path, known)) for module, path in known.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_between_modules_type_only_imports_included() -> None:
    assert _circles(_import_graph()) == []


def test_the_package_never_imports_scripts() -> None:
    graph = _import_graph()
    offenders = {
        module: sorted(target for target in targets if target.split(".")[0] == "scripts")
        for module, targets in graph.items()
        if module.split(".")[0] in (*PACKAGES, "tests")
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_chaos_never_imports_the_service() -> None:
    graph = _import_graph()
    reaching = {
        module: sorted(t for t in targets if t.split(".")[0] == "service")
        for module, targets in graph.items()
        if module.split(".")[0] == "chaos"
    }
    assert {module: targets for module, targets in reaching.items() if targets} == {}


def test_scripts_do_not_edit_sys_path() -> None:
    editing = [
        str(path.relative_to(REPO)) for path in (REPO / "scripts").rglob("*.py") if "sys.path" in path.read_text()
    ]
    assert editing == []


def test_no_harness_code_asks_a_stack_for_its_class() -> None:
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(sorted(BACKEND_CLASSES)) + r")\b")
    asking = [
        f"{path.relative_to(REPO)}:{number}"
        for root in ("chaos", "conformance", "scripts")
        for path in (REPO / root).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert asking == []
