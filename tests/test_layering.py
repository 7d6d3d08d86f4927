"""The import contract of cemnet_core and cemnet_cli (issue 11): layers, no cycles, file sizes.

Every ``.py`` file of both packages is parsed with :mod:`ast` and every import is read, at module level
and inside functions (a function-level import is still a dependency, it only moves the failure to run
time). The rules, one row each:

====================  ===========================================================================
importer              may not import
====================  ===========================================================================
any node              a node that imports it back, directly or through others (no cycles between
                      ``cemnet_core.data`` / ``.models`` / ``.train`` / ``.eval`` and each top-level
                      module such as ``cemnet_core.pipeline``)
cemnet_core.models    anything in cemnet_core but the models themselves and the foundation modules
                      (``contracts``, ``errors``, ``fileio``, ``configs``); nothing from cemnet_cli
cemnet_core.train     ``cemnet_core.eval`` (training never depends on evaluation)
cemnet_core.*         ``cemnet_cli`` (data flows cli -> core)
foundation modules    any cemnet_core module outside the foundation
====================  ===========================================================================

``PENDING`` lists the imports that break a rule today because another part of issue 11 is still moving
the code involved; each entry says why. An entry that no longer occurs fails the test, so the list only
shrinks.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cemnet_core", "cemnet_cli")
SUBPACKAGES = ("data", "models", "train", "eval")
FOUNDATION = frozenset(
    {"cemnet_core.contracts", "cemnet_core.errors", "cemnet_core.fileio", "cemnet_core.configs"}
)
MAX_LINES = 500

# (importing module, imported module) -> why the rule cannot hold yet (none today).
PENDING: dict[tuple[str, str], str] = {}


# -- reading the imports -------------------------------------------------------------------------------------
def module_name(path: Path, root: Path = ROOT) -> str:
    """``cemnet_core/data/audio.py`` -> ``cemnet_core.data.audio`` (``__init__.py`` names its package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files(root: Path = ROOT) -> list[Path]:
    """Every ``.py`` file of cemnet_core and cemnet_cli."""
    return sorted(path for package in PACKAGES for path in (root / package).rglob("*.py"))


def imported_modules(source: str, module: str, is_package: bool, known: frozenset[str]) -> set[str]:
    """The project modules ``source`` (module ``module``) imports, at any depth of the file.

    ``from a import b`` counts as importing ``a.b`` when that is a module in ``known``, else ``a``;
    relative imports are resolved against ``module``.
    """
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def import_table(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports, for every file of both packages."""
    files = package_files(root)
    known = frozenset(module_name(path, root) for path in files)
    return {
        module_name(path, root): imported_modules(
            path.read_text(encoding="utf-8"), module_name(path, root), path.name == "__init__.py", known
        )
        for path in files
    }


# -- the graph of layers ---------------------------------------------------------------------------------
def node_of(module: str) -> str:
    """The layer a module belongs to: ``cemnet_core.<subpackage>``, a top-level module, or ``cemnet_cli``."""
    parts = module.split(".")
    if parts[0] == "cemnet_cli":
        return "cemnet_cli"
    return ".".join(parts[:2])  # cemnet_core.data.audio -> cemnet_core.data; cemnet_core.pipeline stays


def layer_graph(table: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Node -> the nodes it imports (edges inside one node dropped)."""
    graph: dict[str, set[str]] = {}
    for module, imports in table.items():
        source = node_of(module)
        graph.setdefault(source, set()).update(node_of(name) for name in imports if node_of(name) != source)
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more nodes, each given as one cycle through it: [a, b, ..., a].

    Tarjan's algorithm; an empty list means the graph is acyclic.
    """
    edges = {node: sorted(set(targets)) for node, targets in graph.items()}
    for targets in list(edges.values()):
        for target in targets:
            edges.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
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
            if len(component) > 1 or node in edges[node]:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_cycle_through(component, edges) for component in components]


def _cycle_through(component: list[str], edges: Mapping[str, list[str]]) -> list[str]:
    """One cycle that starts and ends at the component's first node, by breadth-first search."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in edges[node]:
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target in members and target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")


# -- the rules -------------------------------------------------------------------------------------------
def rule_violations(table: Mapping[str, Iterable[str]]) -> list[tuple[str, str, str]]:
    """(importer, imported, rule) for every import that breaks a layer rule of the module docstring."""
    found = []
    for module, imports in sorted(table.items()):
        for name in sorted(imports):
            if module.startswith("cemnet_core") and name.startswith("cemnet_cli"):
                found.append((module, name, "cemnet_core never imports cemnet_cli"))
            elif node_of(module) == "cemnet_core.models" and node_of(name) != "cemnet_core.models":
                if name not in FOUNDATION:
                    found.append((module, name, "models import only models and the foundation modules"))
            elif node_of(module) == "cemnet_core.train" and node_of(name) == "cemnet_core.eval":
                found.append((module, name, "train does not import eval"))
            elif module in FOUNDATION and name not in FOUNDATION:
                found.append((module, name, "foundation modules import only foundation modules"))
    return found


def _pending_edges() -> set[tuple[str, str]]:
    return {(node_of(a), node_of(b)) for a, b in PENDING}


@pytest.fixture(scope="module")
def table() -> dict[str, set[str]]:
    return import_table()


def test_the_import_table_sees_module_and_function_level_imports(table: dict[str, set[str]]) -> None:
    assert "cemnet_core.errors" in table["cemnet_core.fileio"]
    source = "import os\nfrom cemnet_core import contracts\n\ndef f():\n    from .audio import log_mel\n"
    known = frozenset({"cemnet_core.contracts", "cemnet_core.data.audio"})
    found = imported_modules(source, "cemnet_core.data.x", False, known)
    assert found == {"cemnet_core.contracts", "cemnet_core.data.audio"}


def test_cycle_finder_on_made_up_graphs() -> None:
    dag = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert find_cycles(dag) == []
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(cyclic) == [["a", "b", "c", "a"], ["e", "e"]]
    two = {"models": {"release"}, "release": {"models", "errors"}, "errors": set()}
    assert find_cycles(two) == [["models", "release", "models"]]


def test_rules_catch_made_up_violations() -> None:
    made_up = {
        "cemnet_core.models.x": {"cemnet_core.data.audio", "cemnet_core.contracts", "cemnet_core.models.y"},
        "cemnet_core.train.loop": {"cemnet_core.eval.metrics", "cemnet_core.models.x"},
        "cemnet_core.contracts": {"cemnet_core.errors", "cemnet_core.data.audio"},
        "cemnet_core.generate": {"cemnet_cli.options"},
    }
    assert [(a, b) for a, b, _ in rule_violations(made_up)] == [
        ("cemnet_core.contracts", "cemnet_core.data.audio"),
        ("cemnet_core.generate", "cemnet_cli.options"),
        ("cemnet_core.models.x", "cemnet_core.data.audio"),
        ("cemnet_core.train.loop", "cemnet_core.eval.metrics"),
    ]


def test_no_import_cycles_between_layers(table: dict[str, set[str]]) -> None:
    graph = layer_graph(table)
    pending = _pending_edges()
    for source, target in pending:  # a pending import may close a cycle until its owner moves it
        graph.get(source, set()).discard(target)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between layers:\n" + "\n".join(
        " -> ".join(cycle)
        + "\n    "
        + "\n    ".join(
            f"{a} imports {b}"
            for step in itertools.pairwise(cycle)
            for a in sorted(table)
            if node_of(a) == step[0]
            for b in sorted(table[a])
            if node_of(b) == step[1]
        )
        for cycle in cycles
    )


def test_layer_rules(table: dict[str, set[str]]) -> None:
    broken = [(a, b, rule) for a, b, rule in rule_violations(table) if (a, b) not in PENDING]
    assert not broken, "imports that break the layer rules:\n" + "\n".join(
        f"{a} imports {b}: {rule}" for a, b, rule in broken
    )


def test_pending_entries_still_occur(table: dict[str, set[str]]) -> None:
    stale = [(a, b) for a, b in PENDING if b not in table.get(a, set())]
    assert not stale, f"remove these from PENDING, the imports are gone: {stale}"


def test_cemnet_core_files_stay_under_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in sorted((ROOT / "cemnet_core").rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines (split them along their concepts): {long}"
