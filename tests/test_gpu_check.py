"""bench/gpu_check.py, the GPU acceptance script: without CUDA it says what it skipped and exits 0;
``--smoke`` runs every check's code on the CPU at toy sizes (gloo for the DDP check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
CHECKS = ("cuda-vs-cpu", "bf16", "ddp", "speedup")


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the checks would run")
def test_without_cuda_it_says_what_it_skipped_and_exits_0():
    done = run_script()
    assert done.returncode == 0, done.stdout + done.stderr
    for check in CHECKS:
        assert f"SKIPPED  {check}: no CUDA device visible to torch" in done.stdout
    assert "0 failed" in done.stdout and "skipped: cuda-vs-cpu" in done.stdout


@pytest.mark.slow
def test_smoke_runs_every_checks_code_on_the_cpu(tmp_path):
    done = run_script("--smoke", "--json", str(tmp_path / "results.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("cuda-vs-cpu basicvsr_cpu", "cuda-vs-cpu edvr_cpu", "bf16", "ddp", "speedup"):
        assert f"PASS     {check}:" in done.stdout, done.stdout
    assert "2 processes over gloo (world size 2)" in done.stdout
    assert (tmp_path / "results.json").is_file()
