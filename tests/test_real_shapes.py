"""The paper's real shapes on the CPU: one optimizer step at every distinct (model, LR patch, frames)
of Tables 1-9 at micro-batch 1, with the real models (BasicVSR, BasicVSR-M, EDVR-M), through the
training step (:func:`mgvsr.preflight.probe_shape`: the plan's LR, the warm start) on windows of a REDS
tree, the frozen and the training phases of each warm start both exercised.  Paper-scale runs
cannot run here; every shape they will meet can."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mgvsr.data.datasets import PartialDatasetWarning, open_dataset
from mgvsr.models import protocol
from mgvsr.preflight import ProbeSteps, Shape, phase_iteration, probe_shape
from mgvsr.presets import Preset, table_runs
from mgvsr.launch import initial_model
from mgvsr.options import RunOptions
from test_reds import make_reds_tree

PAPER_TABLES = ("1", "2", "3", "4", "5", "6", "7", "8", "9")


def paper_shapes() -> dict[Shape, tuple[Preset, int]]:
    """Every distinct stage shape of Tables 1-9, with the first run (and its stage) that trains it,
    moved to REDS (Table 3's Vimeo-90K runs have the same models and shapes)."""
    shapes: dict[Shape, tuple[Preset, int]] = {}
    for table in PAPER_TABLES:
        for preset in table_runs(table):
            for j, stage in enumerate(preset.plan.stages):
                shapes.setdefault(Shape(preset.model, stage.patch, stage.frames), (preset.on(dataset="reds"), j))
    return shapes


def test_the_tables_train_25_distinct_shapes():
    """What the slow test below steps through (its time budget): 12 BasicVSR, 11 BasicVSR-M, 2 EDVR-M."""
    shapes = paper_shapes()
    counts = {m: sum(s.model == m for s in shapes) for m in ("basicvsr", "basicvsr_m", "edvr_m")}
    assert counts == {"basicvsr": 12, "basicvsr_m": 11, "edvr_m": 2} and len(shapes) == 25
    assert max(s.patch for s in shapes) == 72 and max(s.frames for s in shapes) == 17  # Table 9's 72&17


@pytest.fixture(scope="module")
def reds_tree(tmp_path_factory):
    """A REDS tree whose clips hold the largest window of the tables (LR 72x72, 17 frames)."""
    root = tmp_path_factory.mktemp("paper-shapes") / "REDS"
    make_reds_tree(root, clips=("000", "001", "002"), frames=17, size=(288, 288))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        return open_dataset("reds", root, split="train", store=False)


def _snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _changed(before: list[torch.Tensor], params) -> list[bool]:
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params)]


def _check_step(probe, preset: Preset, stage_index: int) -> None:
    stage = preset.plan.stages[stage_index]
    assert probe.error is None and math.isfinite(probe.loss) and probe.loss > 0, probe
    assert probe.lr == preset.plan.lr(probe.iteration)  # the plan's LR (the main group's multiplier is 1)
    hr = 4 * stage.patch
    sliding = preset.model.startswith("edvr")
    assert probe.output_shape == ((1, 3, hr, hr) if sliding else (1, stage.frames, 3, hr, hr)), probe.shape


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", ["basicvsr_m", "basicvsr", "edvr_m"])
def test_one_step_at_every_shape_of_the_tables(model, reds_tree):
    shapes = {s: v for s, v in paper_shapes().items() if s.model == model}
    net = initial_model(model, seed=0)
    recipe = "flow" if model.startswith("basicvsr") else "fusion-only"
    frozen_params = protocol.warm_start_frozen(net, recipe)
    frozen_ids = {id(p) for p in frozen_params}
    trained_params = [p for p in net.parameters() if id(p) not in frozen_ids]

    # the warm start's frozen phase at the cheapest first stage: only the unfrozen parameters move
    cheapest = min((s for s, (p, j) in shapes.items() if phase_iteration(p, j, "frozen") is not None),
                   key=lambda s: s.cost)
    preset, j = shapes[cheapest]
    frozen_before, trained_before = _snapshot(frozen_params), _snapshot(trained_params)
    probe = probe_shape(net, preset, j, reds_tree, RunOptions(device="cpu"), ProbeSteps(1, 1), phase="frozen")
    _check_step(probe, preset, j)
    assert probe.iteration < preset.warm_start[1]
    assert not any(_changed(frozen_before, frozen_params)) and all(_changed(trained_before, trained_params))

    # every shape once in the training phase, from the cheapest up: everything moves
    for shape in sorted(shapes, key=lambda s: s.cost):
        preset, j = shapes[shape]
        before = _snapshot(frozen_params)
        probe = probe_shape(net, preset, j, reds_tree, RunOptions(device="cpu"), ProbeSteps(1, 1), phase="training")
        _check_step(probe, preset, j)
        assert probe.iteration >= preset.warm_start[1] and probe.phase == "training"
        # the warm start's parameters train now (EDVR's offset convs get no gradient while its
        # zero-initialised conv_offset layers are still zero: most, not all, move in a first step)
        changed = _changed(before, frozen_params)
        assert sum(changed) > 0.75 * len(changed), f"{shape.label}: the warm start's parameters did not train"
