"""The code's layout keeps its promises: no import cycles, no private names across modules, no big rooms.

These read the source as text (``ast``), so they fail on a new cycle or a reach into another module's
private name before any behaviour breaks.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("processors", "registry")
# A module longer than this must say at its top why it is one module (STYLE.md: "no big rooms").
MAX_LINES = 700
LONG_MODULE_MARK = "Why one module"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    return found


MODULES = source_modules()


def absolute(module: str, node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(module: str, path: Path) -> set[str]:
    """Every project module that ``module`` imports, at module level or inside functions alike."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(module, node, path)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # "from processors import selectors" names a module; "from processors.models import X" does not.
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    graph = {module: imported_modules(module, path) for module, path in MODULES.items()}
    # A package's __init__ importing its own submodules (to register them) is not a cycle of concerns.
    for module in graph:
        graph[module] = {target for target in graph[module] if not module.startswith(target + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_project_modules():
    assert cycles(import_graph()) == []


def private_reaches(module: str, path: Path) -> list[str]:
    """``from other import _name`` and ``other._name`` where ``other`` is another project module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    reaches = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = absolute(module, node, path)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:
                    aliases[alias.asname or alias.name] = full
                elif base in MODULES and base != module and alias.name.startswith("_"):
                    reaches.append(f"{module}:{node.lineno} imports {base}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != module
        ):
            reaches.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return reaches


def test_no_module_uses_another_modules_private_names():
    reaches = [reach for module, path in MODULES.items() for reach in private_reaches(module, path)]
    assert reaches == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_long_module_says_why_it_is_one_module(module):
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse("\n".join(lines))) or ""
    assert LONG_MODULE_MARK in docstring, f"{path.relative_to(ROOT)} has {len(lines)} lines and no reason"
