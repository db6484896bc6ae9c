"""The package's import structure: no cycles, and every import goes down the layer rule of ARCHITECTURE.md.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mprtune"

# Layer of each top-level module or sub-package; a module may import its own layer or any lower one.
LAYERS = {
    "errors": 0,
    "paths": 0,
    "io": 0,
    "rows": 0,
    "__init__": 0,
    "plots": 1,
    "metrics": 1,
    "tasks": 1,
    "config": 1,
    "workspace": 2,
    "scaffold": 2,
    "models": 2,
    "data": 2,
    "launch": 3,
    "evaluate": 4,
    "serve": 5,
    "pipeline": 6,
    "views": 6,
    "cli": 7,
    "__main__": 8,
}


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the mprtune modules it imports (at module level or inside functions)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the importing module's package
                    base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from pkg import submodule` depends on the submodule; `from mod import name` on mod
                found = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
            else:
                continue
            targets |= {target for target in found if target in modules and target != name}
        graph[name] = targets
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floors(graph: dict[str, set[str]]) -> int:
    """Import floors: the length of the longest chain of imports (a module importing nothing is floor 1)."""
    depth: dict[str, int] = {}

    def floor(node: str) -> int:
        if node not in depth:
            depth[node] = 0  # cycles (there are none, see the test) would stop here
            depth[node] = 1 + max((floor(t) for t in graph[node]), default=0)
        return depth[node]

    return max((floor(n) for n in graph), default=0)


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_every_import_follows_the_layer_rule() -> None:
    graph = import_graph()
    unknown = sorted({m.split(".")[1] for m in graph if "." in m} - set(LAYERS))
    assert not unknown, f"new top-level modules need a layer in LAYERS and ARCHITECTURE.md: {unknown}"
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_module_is_over_400_lines() -> None:
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, f"split these modules: {long}"


def test_the_cli_imports_nothing_heavy_at_start_up() -> None:
    """The CLI's module-level imports stay on the lowest layers; commands import the rest lazily."""
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        top |= {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        mine = {m for m in top if m.startswith("mprtune") and not m.startswith("mprtune.cli")}
        assert mine <= {"mprtune", "mprtune.errors", "mprtune.paths"}, (path.name, mine)


if __name__ == "__main__":  # `python tests/test_architecture.py [PACKAGE]`: floors and arrows of a tree
    import sys

    graph = import_graph(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
    print(
        f"{len(graph)} modules, {sum(len(t) for t in graph.values())} import arrows, {floors(graph)} floors, "
        f"cycles: {cycles(graph) or 'none'}"
    )
