"""EDVR through the real trainer on the sample clips: the spatial-only multigrid changes the input
shape at the stage boundary, the loss is taken against the centre GT frame, the TSA recipe trains
only ``fusion.*`` at first, and the plan must fit the model (5 frames, patches multiple of 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgvsr.data.folders import FolderSource
from mgvsr.data.io import write_frame
from mgvsr.data.sample import sample_source
from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.errors import PlanError
from mgvsr.models.edvr import EDVR
from mgvsr.schedule import Plan, Stage, multigrid
from mgvsr.runs import read_log
from mgvsr.options import TrainConfig
from mgvsr.step import charbonnier
from mgvsr.train import Trainer, samples_before


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def train_clips():
    return sample_source("train")


def short_test_clip(root: Path) -> Path:
    """6 GT frames of a held-out sample clip, cropped to 64x64 (LQ 16x16 by MATLAB bicubic): a quick evaluation."""
    test = sample_source("test")
    for i, frame in enumerate(test.read_gt("camera", range(6), box=(4, 4, 16, 16))):
        write_frame(root / "camera" / f"{i:08d}.png", frame)
    return root


def tiny_edvr(seed: int = 0) -> EDVR:
    torch.manual_seed(seed)
    return EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1, with_tsa=True)


def spatial_plan() -> Plan:
    """EDVR-M's plan in miniature: LR 8 then 16, 5 frames throughout, the small stage at a lower LR."""
    return multigrid(4, 16, 5, 2, 1e-3, cycle="spatial", spatial=(8, 16), stage_lrs=[5e-4, None])


def test_spatial_cycle_changes_the_patch_and_the_loss_is_against_the_centre_gt(tmp_path, train_clips):
    plan = spatial_plan()
    assert [(s.patch, s.frames, s.lr) for s in plan] == [(8, 5, 5e-4), (16, 5, 1e-3)]
    model = tiny_edvr()
    inputs, outputs = [], []

    def record(m, args, out):
        if m.training:  # not the evaluation at the end
            inputs.append(args[0].detach().clone())
            outputs.append(out.detach().clone())

    model.register_forward_hook(record)
    test = FolderSource(short_test_clip(tmp_path / "test"))
    summary = Trainer(model, plan, train_clips, tmp_path, TrainConfig(progress=False), test=test).run()

    assert [tuple(x.shape) for x in inputs] == [(2, 5, 3, 8, 8)] * 2 + [(2, 5, 3, 16, 16)] * 2
    assert [tuple(y.shape) for y in outputs] == [(2, 3, 32, 32)] * 2 + [(2, 3, 64, 64)] * 2
    steps = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "step"]
    assert [(r["patch"], r["frames"]) for r in steps] == [(8, 5), (8, 5), (16, 5), (16, 5)]
    for it, (x, y, record) in enumerate(zip(inputs, outputs, steps)):
        stage = plan.stages[plan.at(it)[0]]
        # the step's windows, drawn again: the loader's sample k of step it is window samples_before(it) + k
        windows = TrainingWindows(train_clips, 5, stage.patch, length=2, offset=samples_before(plan, it))
        lq = torch.stack([windows[k][0] for k in range(2)])
        gt = torch.stack([windows[k][1] for k in range(2)])
        assert torch.equal(x, to_float(lq)), it  # the same windows the model saw
        centre = charbonnier(y, to_float(gt[:, 2])).item()
        assert record["loss"] == pytest.approx(centre, rel=1e-6), it
        others = [charbonnier(y, to_float(gt[:, i])).item() for i in (0, 1, 3, 4)]
        assert all(abs(o - centre) > 1e-4 for o in others), (it, centre, others)
    # the end-of-run evaluation slides the window over the whole test clip
    assert summary["psnr"] is not None and summary["psnr"] > 10


def test_tsa_recipe_trains_only_the_fusion_module_first(tmp_path, train_clips):
    model = tiny_edvr(seed=1)
    snapshots, trainable = [], []

    def watch(m, args):
        snapshots.append({k: v.detach().clone() for k, v in m.named_parameters()})
        trainable.append({k for k, v in m.named_parameters() if v.requires_grad})

    model.register_forward_pre_hook(watch)
    cfg = TrainConfig(progress=False, frozen="fusion-only", frozen_iters=2)
    Trainer(model, spatial_plan(), train_clips, tmp_path, cfg).run()

    names = [k for k, _ in model.named_parameters()]
    fusion = {k for k in names if k.startswith("fusion.")}
    assert fusion and len(fusion) < len(names)
    assert trainable == [fusion, fusion, set(names), set(names)]
    before, after_two = snapshots[0], snapshots[2]  # forward 2 sees the weights after steps 0 and 1
    for k in names:
        changed = not torch.equal(before[k], after_two[k])
        assert changed == (k in fusion), k
    final = dict(model.named_parameters())
    assert all(not torch.equal(after_two[k], final[k]) for k in names if k not in fusion)


def test_plan_must_fit_the_model_side(train_clips):
    """What the trainer reads from EDVR (num_frame, patch_multiple) refuses a plan before training."""
    model = tiny_edvr()
    assert (model.num_frame, model.patch_multiple) == (5, 4)
    fits = dict(model_frames=model.num_frame, patch_multiple=model.patch_multiple)
    spatial_plan().check_fits(**fits)
    with pytest.raises(PlanError, match="LR patch 6 is not a multiple of 4"):
        Plan((Stage(2, 6, 5, 2, 1e-3),)).check_fits(**fits)
    with pytest.raises(PlanError, match="3 frames, but the model takes exactly 5"):
        Plan((Stage(2, 8, 3, 2, 1e-3),)).check_fits(**fits)


@pytest.mark.parametrize("stage", [Stage(2, 6, 5, 2, 1e-3), Stage(2, 8, 3, 2, 1e-3)], ids=["patch-6", "frames-3"])
def test_trainer_refuses_a_plan_edvr_cannot_run_before_training(tmp_path, train_clips, stage):
    with pytest.raises(PlanError):  # at construction, before any iteration
        Trainer(tiny_edvr(), Plan((stage,)), train_clips, tmp_path, TrainConfig(progress=False))
    assert not (tmp_path / "log.jsonl").exists()
    assert not (tmp_path / "log.jsonl").exists()
