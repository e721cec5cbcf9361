"""The dry run (mgvsr.preflight; ``--dry-run`` of ``mgvsr train`` and ``mgvsr reproduce``): it checks
the data, the SpyNet weights and the run folders, probes every distinct shape with the real model and
trainer on a REDS tree, projects time and memory from the probes, refuses a run that does not fit
(naming a ``--micro-batch`` that does), and trains nothing."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mgvsr.cli import main
from mgvsr.data.datasets import PartialDatasetWarning
from mgvsr.models import SpynetRequiredError
from mgvsr.models.spynet import SpyNet
from mgvsr.options import RunOptions
from mgvsr.preflight import FIT_FRACTION, Shape, dry_run_preset, dry_run_table
from mgvsr.presets import get_preset
from mgvsr.reproduce import reproduce_table
from test_reds import make_reds_tree
from test_reproduce import TINY

CPU = RunOptions(device="cpu", workers=None)

# table1/basicvsr_m/ours shrunk as `mgvsr train` would: 12 iterations, batch 4, LR patches 8 and 16
SHRINK = dict(iterations=12, batch=4, patch_div=4)


@pytest.fixture(scope="module")
def reds(tmp_path_factory) -> Path:
    """A REDS tree holding the shrunk run's windows (LR 16x16, 15 frames) and a SpyNet file."""
    root = tmp_path_factory.mktemp("preflight")
    make_reds_tree(root / "REDS", clips=("000", "001", "002", "011"), frames=15, size=(64, 64))
    torch.manual_seed(0)
    net = SpyNet()
    torch.save({"params": {k: v for k, v in net.state_dict().items() if k.startswith("basic_module.")}},
               root / "spynet_sintel_final-3d2a1287.pth")
    return root


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        yield


def _train_argv(reds: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "table1/basicvsr_m/ours", "--root", str(reds / "REDS"), "--out", str(out),
            "--dry-run", "--device", "cpu", "--iterations", "12", "--batch", "4", "--patch-div", "4", *extra]


def test_without_spynet_the_dry_run_says_so_before_probing(reds, tmp_path, capsys):
    assert main(_train_argv(reds, tmp_path / "run")) == 2
    out = capsys.readouterr().out
    assert "PROBLEM  SpyNet: table1/basicvsr_m/ours follows BasicVSR's recipe" in out
    assert "spynet_sintel_final-3d2a1287.pth" in out and "probes skipped" in out and "NOT READY" in out
    assert "no frame store" in out and "partial REDS tree" in out  # the data checks still ran
    assert not (tmp_path / "run").exists()


def test_reproduce_refuses_a_basicvsr_table_without_spynet_before_training(reds, tmp_path, capsys):
    with pytest.raises(SpynetRequiredError, match=r"table1/basicvsr_m/baseline.*\(basicvsr_m, basicvsr\)"):
        reproduce_table("1", "paper", tmp_path, RunOptions(root=reds / "REDS", device="cpu", workers=None))
    assert main(["reproduce", "--table", "1", "--scale", "paper", "--root", str(reds / "REDS"), "--out",
                 str(tmp_path), "--device", "cpu"]) == 2
    assert "--spynet none" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_the_dry_run_probes_every_shape_and_projects_from_them(reds, tmp_path):
    preset = get_preset("table1/basicvsr_m/ours").shrunk(**SHRINK)
    spynet = reds / "spynet_sintel_final-3d2a1287.pth"
    report = dry_run_preset(preset, tmp_path / "run", RunOptions(root=reds / "REDS", device="cpu", spynet=spynet))
    assert report.ok, report.text()
    assert {p.shape for p in report.probes} == {Shape("basicvsr_m", s.patch, s.frames) for s in preset.plan.stages}
    probes = {p.shape: p for p in report.probes}
    for p in report.probes:
        assert p.error is None and p.loss > 0 and p.compute_seconds > 0 and p.peak_bytes >= p.static_bytes > 0
        assert p.phase == "training" and p.iteration >= preset.flow_frozen_iters
    (run,) = report.runs
    assert run.status == "to train" and run.iterations == 12 and (run.per_device, run.micro) == (4, 4)
    expected = sum(s.iterations * s.batch * probes[Shape("basicvsr_m", s.patch, s.frames)].seconds_per_sample
                   for s in preset.plan.stages)
    assert run.seconds == pytest.approx(expected)
    assert run.peak_bytes == max(p.peak_at(4) for p in report.probes) and run.fits
    text = report.text()
    assert "SpyNet from" in text and "sha256" in text and "estimate" in text and "READY" in text
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_run_that_will_not_fit_is_refused_naming_a_micro_batch(reds, tmp_path):
    """4,096 samples per step at once do not fit in this machine's memory; micro-batches do."""
    preset = get_preset("table1/basicvsr_m/ours").shrunk(iterations=12, batch=4096, patch_div=4).on(
        model="basicvsr_cpu")
    report = dry_run_preset(preset, tmp_path / "run", RunOptions(root=reds / "REDS", device="cpu"))
    (run,) = report.runs
    assert run.micro == 4096 and run.fits is False and not report.ok
    assert run.peak_bytes > FIT_FRACTION * report.capacity_bytes
    assert 4096 % run.suggestion == 0 and run.suggestion_peak_bytes <= FIT_FRACTION * report.capacity_bytes
    assert f"REFUSED: {preset.name} needs" in report.text()
    assert f"--micro-batch {run.suggestion} would fit" in report.text()

    small = dry_run_preset(preset, tmp_path / "run", RunOptions(root=reds / "REDS", device="cpu", micro_batch=1))
    assert small.runs[0].micro == 1 and small.runs[0].fits and small.ok


@pytest.mark.usefixtures("one_thread")
def test_on_a_cpu_a_shape_is_probed_again_with_the_runs_micro_batch(tmp_path):
    """One sample first (safe), then the smallest micro-batch of the runs at the shape, which batching
    makes cheaper per sample on a CPU too; a micro-batch of 1 is probed once."""
    batched = replace(TINY, batch_div=8, micro_batch_on_cpu=False)  # Table 4: 8 clips a step, its baseline 2
    report = dry_run_table("4", batched, tmp_path, CPU)
    (probe,) = report.probes
    assert probe.shape.label == "basicvsr_cpu 8&15" and probe.samples == 2 == min(r.micro for r in report.runs)
    assert report.ok and all(r.seconds > 0 for r in report.runs)
    (single,) = dry_run_table("4", TINY, tmp_path, CPU).probes  # micro-batches of 1
    assert single.samples == 1


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_the_all_tables_dry_run_counts_every_seed_and_each_identical_run_once(tmp_path):
    """What ``mgvsr reproduce --table all`` trains: every distinct run once per seed (the scale's
    ``noise_seeds`` more), a run identical to an earlier one (Table 4's LR scaling is Table 1's large
    batch, ...) shown as the same, not projected twice."""
    two_seeds = replace(TINY, noise_seeds=1)
    report = dry_run_table("all", two_seeds, tmp_path, CPU, steps=1)
    status = {r.preset: r.status for r in report.runs}
    assert status["table1/basicvsr_m/large-batch"] == "to train"
    assert status["table4/lr-scaling"] == "same as table1/basicvsr_m/large-batch"
    assert status["table4/lr-scaling (seed 1)"] == "same as table1/basicvsr_m/large-batch (seed 1)"
    assert status["table9/baseline"] == "same as table1/basicvsr_m/baseline"
    assert status["table1/basicvsr_m/baseline (seed 1)"] == "to train"  # another seed: another run
    todo = [r for r in report.runs if r.to_train]
    twins = {s.removeprefix("same as ") for s in status.values() if s.startswith("same as ")}
    assert twins and all(status[name] == "to train" for name in twins)  # the run it is the same as trains
    assert len(todo) + sum(s.startswith("same as") for s in status.values()) == len(report.runs)
    assert len(todo) == 2 * sum(not r.preset.endswith("(seed 1)") for r in todo)  # each distinct run, both seeds
    assert all(r.seconds is not None for r in todo) and report.ok
    assert f"to train: {len(todo)} of {len(report.runs)} runs" in report.text()
    assert "x 2 seeds" in report.title and not any(tmp_path.iterdir())  # trains nothing


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_table_dry_run_trains_nothing_and_sees_finished_runs(tmp_path):
    before = dry_run_table("4", TINY, tmp_path, CPU)
    assert before.ok and [r.status for r in before.runs] == ["to train", "to train", "to train"]
    assert [p.shape.label for p in before.probes] == ["basicvsr_cpu 8&15"]  # one distinct shape
    assert not (tmp_path / "table4").exists()

    reproduce_table("4", TINY, tmp_path, CPU.replace(progress=False))
    after = dry_run_table("4", TINY, tmp_path, CPU)
    assert [r.status for r in after.runs] == ["finished"] * 3 and after.probes == [] and after.ok
    five = dry_run_table("5", TINY, tmp_path, CPU)
    assert [r.status for r in five.runs][2] == "reused: table4/lr-scaling"
