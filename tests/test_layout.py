"""The package's shape: no import cycles, no hidden imports of mgvsr modules inside functions (but for
the CLI's lazy run functions), the library never imports the lessons (mgvsr.tutorial), no module uses
another module's private name, and no function, method or class is too large to read in one go."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import module_graph  # noqa: E402

LIBRARY = ("mgvsr.schedule", "mgvsr.presets", "mgvsr.models", "mgvsr.data", "mgvsr.train", "mgvsr.runs",
           "mgvsr.evaluate", "mgvsr.metrics", "mgvsr.figures", "mgvsr.demo", "mgvsr.reproduce", "mgvsr.cli",
           "mgvsr.checkpointing", "mgvsr.preemption", "mgvsr.watch", "mgvsr.report", "mgvsr.device",
           "mgvsr.distributed", "mgvsr.step", "mgvsr.callbacks", "mgvsr.options", "mgvsr.launch", "mgvsr.preflight")


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


def test_no_module_imports_a_higher_layer():
    assert module_graph.upward_imports(module_graph.module_graph()) == []


def test_the_layer_checker_finds_an_upward_import():
    graph = {"mgvsr.schedule": ({"mgvsr.train"}, set()), "mgvsr.train": ({"mgvsr.schedule"}, set()),
             "mgvsr.newthing": (set(), set())}
    assert module_graph.upward_imports(graph) == ["mgvsr.newthing is in no layer of LAYERS",
                                                  "mgvsr.schedule (layer 1) imports mgvsr.train (layer 5)"]


def test_no_module_uses_another_modules_private_name():
    assert module_graph.private_uses() == []


def test_no_function_class_or_signature_is_too_large():
    assert module_graph.size_breaches() == []


def test_the_checkers_find_a_private_import_and_a_large_function(tmp_path):
    pkg = tmp_path / "mgvsr"
    pkg.mkdir()
    (pkg / "a.py").write_text("from mgvsr.b import _hidden\nfrom mgvsr import b\nx = b._other\n")
    (pkg / "b.py").write_text("def f(a, b, c, d, e, f, g, h, i):\n    pass\n\n\nclass C:\n"
                              + "    x = 1\n" * 250 + "\n\ndef g(self):\n" + "    pass\n" * 80)
    assert module_graph.private_uses(pkg) == ["mgvsr/a.py:1: mgvsr.b._hidden", "mgvsr/a.py:3: b._other"]
    assert module_graph.size_breaches(pkg) == ["mgvsr.b.f: 9 parameters (at most 8)",
                                               "mgvsr.b.C: class of 251 lines (at most 250)",
                                               "mgvsr.b.g: 81 lines (at most 80)"]


def test_torch_free_modules_stay_torch_free():
    code = ("import sys, mgvsr.schedule, mgvsr.presets, mgvsr.runs, mgvsr.options, mgvsr.tutorial, mgvsr.cli; "
            "mgvsr.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
