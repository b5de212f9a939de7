"""The package's import graph has no cycle, type-only imports (``if TYPE_CHECKING:``) included.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import`` anywhere in
a module (module level, under ``if TYPE_CHECKING:``, inside functions) is an edge to the most
specific module of the package it names. A cycle, even one Python resolves at run time, means two
modules that cannot be read, tested or moved apart; the test names each one it finds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Cycles allowed, each one a set of modules (a strongly connected component). None is left: any
# cycle found, type-only ones included, fails.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


def modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``src``, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The modules of the package that module ``name`` imports, at any depth of its code."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    edges = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def import_cycles(src: Path, package: str) -> list[frozenset[str]]:
    """The import cycles of ``package`` under ``src``."""
    found = modules(src, package)
    return cycles({name: imported(name, path, found) for name, path in found.items()})


def describe(cycle: frozenset[str]) -> str:
    return " <-> ".join(sorted(cycle))


def test_the_package_has_no_import_cycle_beyond_the_known_ones() -> None:
    """Every cycle in src/fluxstack_otel's imports, type-only ones included, is a known one."""
    found = import_cycles(SRC, "fluxstack_otel")
    new = [c for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    assert not new, "import cycles:\n" + "\n".join(describe(c) for c in new)


def write_package(root: Path, files: dict[str, str]) -> None:
    """A package on disk: each relative path written with its source, folders made as needed."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_a_type_only_cycle_is_found_and_named(tmp_path: Path) -> None:
    """Two modules that import each other, one of them under TYPE_CHECKING, make a named cycle."""
    write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "sub/__init__.py": "",
            "a.py": "from pkg.sub import b\n",
            "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import thing\n",
            "c.py": "def f():\n    from . import a\n",
            "d.py": "import pkg.c\n",
        },
    )
    assert import_cycles(tmp_path, "pkg") == [frozenset({"pkg.a", "pkg.sub.b"})]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    """A deferred import inside a function still counts: it is a dependency all the same."""
    write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "def f():\n    from pkg import b\n",
            "b.py": "from pkg.a import f\n",
        },
    )
    (cycle,) = import_cycles(tmp_path, "pkg")
    assert describe(cycle) == "pkg.a <-> pkg.b"


def test_the_request_path_imports_nothing_that_builds_it() -> None:
    """No module of http/ imports monitoring or pipeline, not even under TYPE_CHECKING."""
    found = modules(SRC, "fluxstack_otel")
    upstream = {"fluxstack_otel._internal.monitoring", "fluxstack_otel._internal.pipeline"}
    http = {n: p for n, p in found.items() if n.startswith("fluxstack_otel._internal.http")}
    reaching = {n: sorted(imported(n, p, found) & upstream) for n, p in http.items()}
    assert {n: up for n, up in reaching.items() if up} == {}


def test_a_type_only_cycle_through_typing_attribute_and_parent_import_is_found(
    tmp_path: Path,
) -> None:
    """``if typing.TYPE_CHECKING:`` and ``from .. import mod`` still make a named cycle."""
    write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "http/__init__.py": "",
            "handle.py": "from pkg.http.mw import Middleware\n",
            "http/mw.py": "import typing\nif typing.TYPE_CHECKING:\n    from .. import handle\n"
            "class Middleware: ...\n",
        },
    )
    (cycle,) = import_cycles(tmp_path, "pkg")
    assert describe(cycle) == "pkg.handle <-> pkg.http.mw"
