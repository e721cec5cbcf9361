"""bench/run.py, the benchmark suite: its cases are the plans' stage shapes, and one command writes a
RESULTS file with step time, FLOPs, achieved FLOP/s and MFU for every case, the loader and the peak."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

from mgvsr.presets import get_preset

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).resolve().parents[1] / "bench" / "run.py")
suite = sys.modules["bench_run"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(suite)


def test_cases_are_every_stage_shape_of_the_demo_and_paper_plans():
    cases = suite.cases(torch.device("cpu"), quick=False, models=None)
    demo = [(c.patch, c.frames) for c in cases if c.model == "basicvsr_cpu" and c.plan == "demo"]
    assert demo == [(s.patch, s.frames) for s in get_preset("demo/basicvsr/ours").plan.stages]
    paper = {(c.patch, c.frames, c.batch) for c in cases if c.model == "edvr_m" and c.plan == "paper"}
    assert paper == {(32, 5, 1), (64, 5, 1)}
    assert {c.model for c in cases} == {"basicvsr_cpu", "basicvsr_m", "edvr_cpu", "edvr_m"}
    quick = suite.cases(torch.device("cpu"), quick=True, models=["basicvsr_m"])
    assert [(c.plan, c.patch, c.frames) for c in quick] == [("demo", 16, 4), ("demo", 32, 8), ("paper", 32, 7),
                                                            ("paper", 64, 15)]


@pytest.mark.slow
def test_one_command_writes_results_with_mfu_for_every_row(tmp_path):
    out = tmp_path / "RESULTS.md"
    assert suite.main(["--models", "edvr_cpu", "--quick", "--steps", "1", "--no-reference", "--threads", "1",
                       "--out", str(out)]) == 0
    text = out.read_text()
    assert "python bench/run.py --models edvr_cpu" in text and "load average" in text and "CPU:" in text
    rows = [line for line in text.splitlines() if line.startswith("| edvr_cpu |")]
    precisions = suite.precisions(torch.device("cpu"))
    assert len(rows) == 4 * len(precisions)  # 2 demo + 2 paper shapes, each precision
    for row in rows:
        assert re.search(r"\| \d+\.\d% \|", row), row  # an MFU
    assert "### Data loader" in text and "| 32&5 | 4 |" in text
    assert re.search(r"\| fp32 \| [\d,.]+ \| [\d,.]+ \| [\d,.]+ \|", text)  # the peak measured
