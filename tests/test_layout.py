"""The package's shape: no import cycles, no hidden imports of mgvsr modules inside functions (but for
the CLI's lazy run functions), and the library never imports the lessons (mgvsr.tutorial)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import module_graph  # noqa: E402

LIBRARY = ("mgvsr.schedule", "mgvsr.presets", "mgvsr.models", "mgvsr.data", "mgvsr.train", "mgvsr.runs",
           "mgvsr.evaluate", "mgvsr.metrics", "mgvsr.figures", "mgvsr.demo", "mgvsr.reproduce", "mgvsr.cli",
           "mgvsr.checkpointing", "mgvsr.preemption", "mgvsr.watch", "mgvsr.report")


def test_no_import_cycles_and_no_hidden_imports():
    graph = module_graph.module_graph()
    assert "mgvsr.train" in graph and "mgvsr.tutorial.series" in graph
    assert module_graph.cycles(graph) == []
    assert module_graph.lazy_imports(graph) == {}


def test_the_library_never_imports_the_tutorial():
    graph = module_graph.module_graph()
    for module, (top, inner) in graph.items():
        if module.startswith(LIBRARY):
            assert not [m for m in top | inner if m.startswith("mgvsr.tutorial")], module


def test_the_checker_finds_a_cycle_and_a_lazy_import():
    graph = {"a": ({"b"}, set()), "b": (set(), {"a"}), "mgvsr.cli.x": (set(), {"a"})}
    assert module_graph.cycles(graph) == [["a", "b", "a"]]
    assert module_graph.lazy_imports(graph) == {"b": {"a"}}


def test_torch_free_modules_stay_torch_free():
    code = ("import sys, mgvsr.schedule, mgvsr.presets, mgvsr.runs, mgvsr.tutorial, mgvsr.cli; "
            "mgvsr.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
