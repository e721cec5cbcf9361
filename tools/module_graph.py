#!/usr/bin/env python
"""The import graph of the ``mgvsr`` package: for each module, the mgvsr modules it imports.

    python tools/module_graph.py            # one line per module; [in functions: ...] marks lazy imports
    python tools/module_graph.py --check    # exit 1 on any breach of the rules below

Read from the source with :mod:`ast` (nothing is imported).  ``from mgvsr import runs`` counts
as an import of ``mgvsr.runs``.  The rules ``--check`` enforces (``tests/test_layout.py`` runs it):

- no import cycle; no mgvsr import inside a function outside ``mgvsr.cli`` (:func:`lazy_imports`);
- no upward import: a module imports only from its own layer of :data:`LAYERS` or those below
  (:func:`upward_imports`);
- no module of ``mgvsr/``, ``bench/`` or ``tools/`` uses another module's private name (``_x``): neither
  ``from mgvsr.m import _x`` nor ``m._x`` on an imported mgvsr module (:func:`private_uses`);
- in ``mgvsr/``, no function or method takes more than :data:`MAX_PARAMETERS` parameters (``self`` and
  ``cls`` not counted; the public plan builders of ``mgvsr.schedule``, whose keyword arguments are the
  paper's knobs, exempt), none is longer than :data:`MAX_FUNCTION_LINES` lines and no class longer than
  :data:`MAX_CLASS_LINES` (:func:`size_breaches`).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mgvsr"
LAZY_ALLOWED = ("mgvsr.cli",)  # the CLI's run() functions import the library lazily (mgvsr/cli/__init__.py)
SCRIPTS = ("bench", "tools")  # folders of scripts held to the private-name rule too
MAX_PARAMETERS = 8
MAX_FUNCTION_LINES = 80
MAX_CLASS_LINES = 250
PARAMETER_EXEMPT = {("mgvsr.schedule", "baseline"), ("mgvsr.schedule", "multigrid")}
# The layers, lowest first: a module imports only from its own layer or the layers below (docs/architecture.md).
LAYERS = (
    ("mgvsr.errors", "mgvsr.paths", "mgvsr.metrics", "mgvsr.schedule", "mgvsr.provenance"),
    ("mgvsr.presets", "mgvsr.data", "mgvsr.models", "mgvsr.figures"),
    ("mgvsr.runs", "mgvsr.options"),
    ("mgvsr.device", "mgvsr.distributed", "mgvsr.checkpointing", "mgvsr.preemption", "mgvsr.watch",
     "mgvsr.evaluate", "mgvsr.step"),
    ("mgvsr.callbacks", "mgvsr.train"),
    ("mgvsr.launch", "mgvsr.costs"),
    ("mgvsr.demo", "mgvsr.report", "mgvsr.reproduce", "mgvsr.preflight", "mgvsr.tables", "mgvsr.claims"),
    ("mgvsr.cli", "mgvsr.tutorial", "mgvsr.__main__"),
)


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


def layer(module: str) -> int | None:
    """The layer of ``module`` in :data:`LAYERS` (0 lowest), None for the package itself."""
    for k, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return k
    return None


def upward_imports(graph: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """``"a imports b (layer i < j)"`` for every import of a higher layer, and every module in no layer."""
    found = []
    for module, (top, inner) in sorted(graph.items()):
        if module == "mgvsr":
            continue
        here = layer(module)
        if here is None:
            found.append(f"{module} is in no layer of LAYERS")
            continue
        for target in sorted(top | inner):
            there = layer(target)
            if there is not None and there > here:
                found.append(f"{module} (layer {here + 1}) imports {target} (layer {there + 1})")
    return found


def private_uses(root: Path = PACKAGE) -> list[str]:
    """``"file:line: name"`` for every use of another module's private name in the package and the scripts."""
    found = []
    files = sorted(root.rglob("*.py")) + [f for d in SCRIPTS for f in sorted((root.parent / d).glob("*.py"))]
    for path in files:
        tree = ast.parse(path.read_text())
        modules = set()  # names bound to mgvsr modules: `from mgvsr import runs`, `import mgvsr.train as t`
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mgvsr":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.module}.{alias.name}")
                    modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "mgvsr":
                        modules.add(alias.asname or alias.name.split(".")[0])
                        if any(part.startswith("_") and not part.startswith("__") for part in alias.name.split(".")):
                            found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {alias.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in modules):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
    return len(names) - (1 if names and names[0] in ("self", "cls") and (a.posonlyargs + a.args) else 0)


def size_breaches(root: Path = PACKAGE) -> list[str]:
    """``"module.function: what"`` for every function, method or class of the package over the limits."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text())):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _parameters(node)
                if n > MAX_PARAMETERS and (module, node.name) not in PARAMETER_EXEMPT:
                    found.append(f"{module}.{node.name}: {n} parameters (at most {MAX_PARAMETERS})")
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{module}.{node.name}: {lines} lines (at most {MAX_FUNCTION_LINES})")
            elif isinstance(node, ast.ClassDef) and lines > MAX_CLASS_LINES:
                found.append(f"{module}.{node.name}: class of {lines} lines (at most {MAX_CLASS_LINES})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a breach of the rules (see the docstring)")
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
    upward, private, sizes = upward_imports(graph), private_uses(), size_breaches()
    for line in upward:
        print(f"upward import: {line}")
    for line in private:
        print(f"private name of another module: {line}")
    for line in sizes:
        print(f"too large: {line}")
    return 1 if args.check and (found or lazy or upward or private or sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
