"""bench/gpu_check.py, the GPU acceptance script: without CUDA it says what it skipped and exits 0;
``--smoke`` runs every check's code on the CPU at toy sizes (gloo for the DDP checks, the CPU against
the CPU in another memory format, fp16 through CPU autocast) and writes the JSON report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
CHECKS = ("cuda-vs-cpu", "backward", "autocast", "dcn", "bf16", "fp16", "ddp-step", "ddp", "eval-reds4", "preempt",
          "loader", "speedup")
NEEDS_CUDA = tuple(c for c in CHECKS if c != "dcn")  # dcn runs on a CPU where torchvision imports
# what --smoke prints for each check: the result lines that must say PASS (or SKIPPED where this machine lacks
# something the line names: torchvision for dcn, a second GPU for NCCL)
SMOKE_LINES = ("cuda-vs-cpu basicvsr_cpu", "cuda-vs-cpu edvr_cpu", "backward basicvsr_cpu", "backward edvr_cpu",
               "autocast bf16", "autocast fp16", "bf16", "fp16", "ddp-step gloo", "ddp", "eval-reds4", "preempt",
               "loader", "speedup")


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def status_lines(stdout: str) -> dict[str, str]:
    """``{check line: status}`` of the script's result lines (``PASS     name: ...``)."""
    found = re.findall(r"^(PASS|FAIL|SKIPPED)\s+([\w .-]+?): ", stdout, flags=re.M)
    return {name: status for status, name in found}


def test_help_names_every_check_and_flag():
    done = run_script("--help")
    assert done.returncode == 0, done.stderr
    for word in (*CHECKS, "--only", "--json", "--smoke", "--timing-iterations", "--timing-micro-batch"):
        assert word in done.stdout, word


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the checks would run")
def test_without_cuda_it_says_what_it_skipped_and_exits_0(tmp_path):
    done = run_script("--json", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    for check in NEEDS_CUDA:
        assert f"SKIPPED  {check}: no CUDA device visible to torch" in done.stdout, check
    assert "0 failed" in done.stdout and "skipped: cuda-vs-cpu" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert {c["check"] for c in report["checks"]} >= set(NEEDS_CUDA)
    assert report["summary"]["FAIL"] == 0 and report["gpus"] == []


@pytest.mark.slow
def test_smoke_runs_every_checks_code_on_the_cpu(tmp_path):
    done = run_script("--smoke", "--json", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = status_lines(done.stdout)
    assert "FAIL" not in statuses.values(), done.stdout
    for line in SMOKE_LINES:
        assert statuses.get(line) == "PASS", (line, done.stdout)
    assert statuses.get("dcn cpu float32", statuses.get("dcn")) in ("PASS", "SKIPPED")
    assert "2 processes over gloo (world size 2)" in done.stdout  # the torchrun check, gloo on the CPU
    assert "2 processes over gloo on cpu against one" in done.stdout and "re-wrapped when it thawed" in done.stdout
    assert "SpyNet ran at [(32, 48)] (expected (32, 48))" in done.stdout  # 20x36 LR: the resize branch
    assert "SIGTERM after" in done.stdout and "exit 75 (expected 75)" in done.stdout
    assert "precision fp16, convolutions float16" in done.stdout

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["smoke"] is True and report["summary"]["FAIL"] == 0
    assert {"torch", "cuda", "cudnn", "torchvision", "mgvsr"} <= set(report["versions"])
    assert report["compute_settings"] == {"threads": 1} and report["dcn_backend"] in ("torch", "torchvision")
    checks = {c["check"]: c for c in report["checks"]}
    assert set(SMOKE_LINES) <= set(checks)
    for name in SMOKE_LINES:  # every check that ran says what it measured and what it was held to
        assert checks[name]["measured"] and checks[name]["tolerance"], name
    assert checks["bf16"]["tolerance"]["first_step_gap"] == 2.0 ** -7
    assert checks["fp16"]["measured"]["scaler_scale"] > 0
    assert checks["ddp-step gloo"]["measured"]["loss_relative_gap"] < 1e-4
    assert checks["loader"]["measured"]["ratio"] > 0
    assert {"speedup_calibrated", "speedup_measured", "speedup_flops"} <= set(checks["speedup"]["measured"])
