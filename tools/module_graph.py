#!/usr/bin/env python
"""The import graph of the ``mgvsr`` package: for each module, the mgvsr modules it imports.

    python tools/module_graph.py            # one line per module; [in functions: ...] marks lazy imports
    python tools/module_graph.py --check    # exit 1 on an import cycle or a lazy mgvsr import outside mgvsr.cli

Read from the source with :mod:`ast` (nothing is imported).  ``from mgvsr import runs`` counts
as an import of ``mgvsr.runs``.  ``tests/test_layout.py`` runs the check.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mgvsr"
LAZY_ALLOWED = ("mgvsr.cli",)  # the CLI's run() functions import the library lazily (mgvsr/cli/__init__.py)


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph(root: Path = PACKAGE) -> dict[str, tuple[set[str], set[str]]]:
    """``{module: (imported at the top, imported only inside functions)}`` for every module under ``root``."""
    files = {module_name(f, root): f for f in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        top: set[str] = set()
        inner: set[str] = set()

        def add(target: str, in_function: bool) -> None:
            (inner if in_function else top).add(target)

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "mgvsr":
                    for alias in child.names:  # `from mgvsr import runs` imports the module mgvsr.runs
                        sub = f"{child.module}.{alias.name}"
                        add(sub if sub in files else child.module, nested)
                elif isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.split(".")[0] == "mgvsr":
                            add(alias.name, nested)
                visit(child, nested)

        visit(ast.parse(path.read_text()), False)
        top.discard(name)
        graph[name] = (top, inner - top - {name})
    return graph


def cycles(graph: dict[str, tuple[set[str], set[str]]]) -> list[list[str]]:
    """Import cycles, counting imports inside functions too (each as the list of modules around it)."""
    found, state, stack = [], {}, []

    def walk(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        top, inner = graph.get(node, (set(), set()))
        for nxt in sorted(top | inner):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def lazy_imports(graph: dict[str, tuple[set[str], set[str]]]) -> dict[str, set[str]]:
    """Modules importing mgvsr modules inside functions, outside :data:`LAZY_ALLOWED`."""
    return {m: inner for m, (_, inner) in graph.items()
            if inner and not any(m == a or m.startswith(a + ".") for a in LAZY_ALLOWED)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a cycle or a lazy import outside the CLI")
    args = parser.parse_args(argv)
    graph = module_graph()
    for name, (top, inner) in graph.items():
        line = f"{name}: {', '.join(sorted(top)) or '-'}"
        print(line + (f"  [in functions: {', '.join(sorted(inner))}]" if inner else ""))
    found, lazy = cycles(graph), lazy_imports(graph)
    print(f"# {len(graph)} modules; {sum(len(i) for _, i in graph.values())} mgvsr imports inside functions; "
          f"{len(found)} cycles")
    for cycle in found:
        print("cycle: " + " -> ".join(cycle))
    for module, inner in lazy.items():
        print(f"lazy import outside the CLI: {module} imports {', '.join(sorted(inner))} inside functions")
    return 1 if args.check and (found or lazy) else 0


if __name__ == "__main__":
    sys.exit(main())
