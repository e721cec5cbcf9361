"""The GPU-readiness microbenchmarks (issue 22) run: ``--help``, and ``--quick`` on the CPU (in a subprocess,
as a user runs it) prints each one's ratio lines (the numbers themselves are the benchmark's business,
not a test's)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = ["bench_recon_chunk.py", "bench_dcn_sync.py", "bench_ddp_unused.py"]
BENCH = Path(__file__).resolve().parent.parent / "bench"
RATIO = r"(\d+\.\d\d)x"


def run_bench(name: str, *args: str) -> subprocess.CompletedProcess:
    root = str(BENCH.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=root)


def ratios(stdout: str, prefix: str) -> list[float]:
    return [float(m[1]) for m in re.finditer(rf"^{re.escape(prefix)}.*?: {RATIO}", stdout, re.M)]


def load(name: str):
    """The bench script as a module (in this process: no second torch import for the quick checks)."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), BENCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        load(name).main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--device" in out


@pytest.mark.slow
def test_recon_chunk_quick_prints_a_ratio_per_plan():
    done = run_bench("bench_recon_chunk.py", "--quick", "--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    found = ratios(done.stdout, "ratio chunked / at once")
    assert len(found) == 2 and all(r > 0 for r in found), done.stdout
    assert "ratio chunked / at once  demo basicvsr_cpu" in done.stdout
    assert "ratio chunked / at once  paper basicvsr_m" in done.stdout
    # the paper model's tiny case really splits (2 frames a call of 3), the demo model's fits one call
    assert re.search(r"^paper\s+basicvsr_m\s+32&3x1\s+2 of 3", done.stdout, re.M), done.stdout
    assert "chunks when training: True" in done.stdout  # the CPU's rule


@pytest.mark.slow
def test_dcn_sync_quick_prints_its_ratios_and_says_the_cpu_shows_none():
    done = run_bench("bench_dcn_sync.py", "--quick", "--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(ratios(done.stdout, "ratio sync every call / every 100 calls")) == 1, done.stdout
    assert len(ratios(done.stdout, "ratio every 100 calls / no diagnostic")) == 1, done.stdout
    assert "on a CPU there is no device to wait for" in done.stdout


@pytest.mark.slow
def test_ddp_unused_quick_runs_two_gloo_processes_and_prints_the_ratio():
    done = run_bench("bench_ddp_unused.py", "--quick", "--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gloo on cpu, 2 processes" in done.stdout
    assert len(ratios(done.stdout, "ratio find_unused_parameters True / False")) == 1, done.stdout


def test_ddp_unused_refuses_a_shape_where_false_would_fail(capsys):
    """Below 32 px SpyNet's coarsest levels get no gradient: find_unused_parameters=False cannot run there."""
    assert load("bench_ddp_unused.py").main(["--quick", "--device", "cpu", "--patch", "16"]) == 2
    err = capsys.readouterr().err
    assert "10 trainable parameters get no gradient" in err and "spynet.basic_module.0" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", SCRIPTS)
def test_cuda_without_a_gpu_is_a_clear_error(name, capsys):
    assert load(name).main(["--quick", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
