"""``--tensorboard``: the event file holds every scalar the run log has (read back with TensorBoard's
own EventAccumulator), and a resumed run's board has each iteration once."""

from __future__ import annotations

import pytest
import torch

from mgvsr.data.sample import sample_source
from mgvsr.models import build_model
from mgvsr.runs import read_log
from mgvsr.schedule import Plan, Stage
from mgvsr.options import TrainConfig
from mgvsr.train import Trainer
from mgvsr.watch import TAGS

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the tensorboard extra is not installed")

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

PLAN = Plan((Stage(4, 8, 3, 2, 1e-3), Stage(4, 16, 4, 2, 1e-3)))


def tiny_model():
    torch.manual_seed(0)
    return build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)


def board(folder) -> dict[str, list]:
    acc = event_accumulator.EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}


def test_the_event_file_holds_every_scalar_and_a_resume_logs_each_iteration_once(tmp_path):
    model = tiny_model()
    calls = []

    def die_in_the_fifth_step(module, args):  # a kill (no checkpoint) in step 4; the last checkpoint is after 3
        if module.training:
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt

    model.register_forward_pre_hook(die_in_the_fifth_step)
    cfg = TrainConfig(progress=False, tensorboard=True, eval_every=3, checkpoint_every=3)
    clips, test = sample_source("train"), sample_source("test")
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, PLAN, clips, tmp_path, cfg, test=test).run()
    assert board(tmp_path)["train/loss"][-1].step == 4  # steps 0-3 logged (at 1-4); the checkpoint is after 3
    Trainer(tiny_model(), PLAN, clips, tmp_path, cfg, test=test).run(resume=True)

    scalars = board(tmp_path)
    assert set(scalars) == set(TAGS)
    records = read_log(tmp_path)
    steps = [r for r in records if r["event"] == "step"]
    evals = [r for r in records if r["event"] == "eval"]
    assert [e.step for e in scalars["train/loss"]] == list(range(1, 9))  # once each: the repeated step 3 too
    assert [e.value for e in scalars["train/loss"]] == pytest.approx([s["loss"] for s in steps], rel=1e-6)
    assert [e.value for e in scalars["train/lr"]] == pytest.approx([PLAN.lr(i) for i in range(8)], rel=1e-6)
    assert [e.value for e in scalars["plan/stage"]] == [1] * 4 + [2] * 4
    assert [e.value for e in scalars["plan/patch"]] == [8] * 4 + [16] * 4
    assert [e.value for e in scalars["plan/frames"]] == [3] * 4 + [4] * 4
    assert [e.value for e in scalars["plan/batch"]] == [2] * 8
    assert [e.value for e in scalars["time/compute_s"]] == pytest.approx([s["compute"] for s in steps], rel=1e-6)
    assert [e.value for e in scalars["time/data_s"]] == pytest.approx([s["data"] for s in steps], rel=1e-6)
    assert [e.value for e in scalars["time/wall_clock_s"]] == pytest.approx([s["train_seconds"] for s in steps],
                                                                            rel=1e-6)
    assert [e.value for e in scalars["time/device_s"]] == [e.value for e in scalars["time/wall_clock_s"]]  # 1 process
    assert [e.step for e in scalars["eval/psnr"]] == [r["it"] for r in evals] == [3, 6, 8]
    assert [e.value for e in scalars["eval/psnr"]] == pytest.approx([r["psnr"] for r in evals], rel=1e-6)
    assert [e.value for e in scalars["eval/ssim"]] == pytest.approx([r["ssim"] for r in evals], rel=1e-6)
