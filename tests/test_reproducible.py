"""Reproducible runs: the same command in two processes gives the same losses on a CPU (real
subprocesses, not two calls in one process), and the demo's baseline and ours start from the same
initial weights (the fingerprint every run's log records)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mgvsr.demo import demo_presets
from mgvsr.runs import read_log
from mgvsr.checkpointing import weights_fingerprint
from mgvsr.launch import initial_model, run_preset
from mgvsr.options import RunOptions

TRAIN = ["-m", "mgvsr", "train", "--preset", "demo/basicvsr/ours", "--iterations", "6", "--patch-div", "2",
         "--micro-batch", "4", "--device", "cpu", "--workers", "0", "--no-progress"]


def _start_and_losses(folder: Path) -> tuple[dict, list[float]]:
    records = read_log(folder)
    return records[0], [r["loss"] for r in records if r["event"] == "step"]


@pytest.mark.slow
def test_the_same_command_in_two_processes_gives_the_same_losses(tmp_path):
    procs = []
    for k in (1, 2):  # side by side, one thread each, different hash seeds
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": str(k)}
        procs.append(subprocess.Popen([sys.executable, *TRAIN, "--out", str(tmp_path / f"run{k}")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        output, _ = p.communicate(timeout=600)
        assert p.returncode == 0, output
    (start1, losses1), (start2, losses2) = (_start_and_losses(tmp_path / f"run{k}") for k in (1, 2))
    assert len(losses1) == 6
    assert losses1 == losses2  # bitwise, from iteration 0
    assert start1["initial_weights"] == start2["initial_weights"]
    assert start1["setup"]["world_size"] == 1 and start1["setup"]["precision"] == "fp32"


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("family", ["basicvsr", "edvr_m"])
def test_the_demos_baseline_and_ours_start_from_the_same_weights(tmp_path, family):
    presets = {run: p.shrunk(patch_div=2) for run, p in demo_presets(family, iterations=2).items()}
    fingerprints = {}
    for run, preset in presets.items():
        run_preset(preset, tmp_path / run, RunOptions(device="cpu", micro_batch=4, progress=False))
        fingerprints[run] = read_log(tmp_path / run)[0]["initial_weights"]
    model = presets["baseline"].model
    assert presets["ours"].model == model
    assert fingerprints["baseline"] == fingerprints["ours"] == weights_fingerprint(initial_model(model, seed=0))
    assert weights_fingerprint(initial_model(model, seed=1)) != fingerprints["baseline"]
