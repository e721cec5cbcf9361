"""The trainer follows the plan: shapes change at stage boundaries, the LR is the plan's at every
step, SpyNet is frozen as the recipe says, a resumed run equals an uninterrupted one, and a
plan that does not fit its data is refused before the first iteration."""

from __future__ import annotations

import pytest
import torch

from mgvsr.data.sample import sample_source
from mgvsr.errors import MgvsrError, PlanError
from mgvsr.models import build_model
from mgvsr.schedule import Stage, Plan, goyal_warmup
from mgvsr.runs import read_log
from mgvsr.options import TrainConfig
from mgvsr.train import Trainer, samples_before


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)


def two_stage_plan() -> Plan:
    return Plan((Stage(3, 8, 3, 2, 1e-3), Stage(3, 16, 4, 4, 1e-3)), warmup=goyal_warmup(2, iterations=2))


@pytest.fixture(scope="module")
def train_clips():
    return sample_source("train")


def run(tmp_path, plan, source, cfg=None, model=None, resume=False, hook=None):
    model = model or tiny_model()
    if hook is not None:
        model.register_forward_pre_hook(hook)
    trainer = Trainer(model, plan, source, tmp_path, cfg or TrainConfig(progress=False, micro_batch=2))
    return trainer, trainer.run(resume=resume)


def test_samples_before_counts_every_stage():
    plan = two_stage_plan()
    assert [samples_before(plan, it) for it in range(7)] == [0, 2, 4, 6, 10, 14, 18]


def test_shapes_change_at_stage_boundaries_and_lr_follows_the_plan(tmp_path, train_clips):
    shapes = []
    plan = two_stage_plan()
    trainer, summary = run(tmp_path, plan, train_clips, hook=lambda m, args: shapes.append(tuple(args[0].shape)))
    # micro-batches of 2: stage 1 (batch 2) one forward per step, stage 2 (batch 4) two
    assert shapes == [(2, 3, 3, 8, 8)] * 3 + [(2, 4, 3, 16, 16)] * 6
    steps = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "step"]
    assert [r["it"] for r in steps] == list(range(6))
    assert [(r["patch"], r["frames"], r["batch"]) for r in steps] == [(8, 3, 2)] * 3 + [(16, 4, 4)] * 3
    assert [r["lr"] for r in steps] == [plan.lr(it) for it in range(6)]
    assert steps[0]["lr"] == pytest.approx(0.5e-3, rel=1e-3)  # warmup from LR / m
    assert summary["it"] == 6 and summary["samples"] == 18
    assert summary["compute_seconds"] > 0 and summary["data_seconds"] >= 0
    assert len(summary["stage_compute_seconds"]) == 2 and all(s > 0 for s in summary["stage_compute_seconds"])
    assert (tmp_path / "final.pth").is_file() and (tmp_path / "last.pth").is_file()


def test_spynet_frozen_for_the_first_iterations_then_trained_at_its_multiplier(tmp_path, train_clips):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.spynet.state_dict().items()}
    seen = []

    def watch(m, args):
        seen.append(all(not p.requires_grad for p in m.spynet.parameters()))

    model.register_forward_pre_hook(watch)
    cfg = TrainConfig(progress=False, frozen_iters=2, flow_lr_mult=0.125)
    trainer = Trainer(model, Plan((Stage(4, 8, 3, 2, 1e-3),)), train_clips, tmp_path, cfg)
    trainer.run()
    assert seen == [True, True, False, False]
    after = model.spynet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k not in ("mean", "std"))
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["flow"]["lr"] == pytest.approx(0.125 * groups["main"]["lr"])


def test_resume_continues_exactly(tmp_path, train_clips):
    plan = two_stage_plan()
    cfg = dict(progress=False, micro_batch=2, checkpoint_every=2)
    _, full = run(tmp_path / "full", plan, train_clips, TrainConfig(**cfg))
    full_losses = [r["loss"] for r in read_log(tmp_path / "full" / "log.jsonl") if r["event"] == "step"]

    calls = []

    def interrupt(m, args):  # Ctrl-C in the middle of step 4 (the 6th forward)
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", plan, train_clips, TrainConfig(**cfg), hook=interrupt)
    state = torch.load(tmp_path / "cut" / "last.pth", weights_only=False)
    assert state["iteration"] == 4  # the checkpoint at iteration 4, not the half-done step
    _, resumed = run(tmp_path / "cut", plan, train_clips, TrainConfig(**cfg), resume=True)
    cut_losses = [r["loss"] for r in read_log(tmp_path / "cut" / "log.jsonl") if r["event"] == "step"]
    assert cut_losses == full_losses  # bit for bit on the CPU
    full_params = torch.load(tmp_path / "full" / "final.pth")["params"]
    cut_params = torch.load(tmp_path / "cut" / "final.pth")["params"]
    assert all(torch.equal(full_params[k], cut_params[k]) for k in full_params)


def test_resume_refuses_a_checkpoint_of_another_plan(tmp_path, train_clips):
    run(tmp_path, Plan((Stage(2, 8, 3, 2, 1e-3),)), train_clips)
    with pytest.raises(MgvsrError, match="different plan"):
        run(tmp_path, Plan((Stage(3, 8, 3, 2, 1e-3),)), train_clips, resume=True)


@pytest.mark.parametrize(
    "stage, message",
    [
        (Stage(2, 80, 3, 2, 1e-3), r"LR patch 80 is larger than the smallest LQ frame \(64x64\)"),
        (Stage(2, 8, 31, 2, 1e-3), r"needs 31 frames, but the shortest clip has 30"),
    ],
)
def test_plan_that_does_not_fit_the_data_is_refused_before_training(tmp_path, train_clips, stage, message):
    with pytest.raises(PlanError, match=message):
        Trainer(tiny_model(), Plan((stage,)), train_clips, tmp_path, TrainConfig(progress=False))
    assert not (tmp_path / "log.jsonl").exists()


def test_micro_batch_must_divide_the_batch(tmp_path, train_clips):
    with pytest.raises(PlanError, match="per-process batch 3 is not a multiple of micro_batch 2"):
        Trainer(tiny_model(), Plan((Stage(2, 8, 3, 3, 1e-3),)), train_clips, tmp_path,
                TrainConfig(progress=False, micro_batch=2))


def test_micro_batches_compute_the_large_batch_update(tmp_path, train_clips):
    plan = Plan((Stage(2, 8, 3, 4, 1e-3),))
    _, _ = run(tmp_path / "whole", plan, train_clips, TrainConfig(progress=False), model=tiny_model())
    _, _ = run(tmp_path / "micro", plan, train_clips, TrainConfig(progress=False, micro_batch=1), model=tiny_model())
    a = torch.load(tmp_path / "whole" / "final.pth")["params"]
    b = torch.load(tmp_path / "micro" / "final.pth")["params"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        plan = Plan((Stage(3, 8, 3, 4, 1e-3),))
        Trainer(tiny_model(), plan, sample_source("train"), out, TrainConfig(progress=False)).run()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_training_equals_the_single_process_large_batch(tmp_path, train_clips):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp")), nprocs=2, join=True)
    run(tmp_path / "single", Plan((Stage(3, 8, 3, 4, 1e-3),)), train_clips, TrainConfig(progress=False))
    ddp = torch.load(tmp_path / "ddp" / "final.pth")["params"]
    single = torch.load(tmp_path / "single" / "final.pth")["params"]
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-6)
    ddp_losses = [r["loss"] for r in read_log(tmp_path / "ddp" / "log.jsonl") if r["event"] == "step"]
    single_losses = [r["loss"] for r in read_log(tmp_path / "single" / "log.jsonl") if r["event"] == "step"]
    assert ddp_losses == pytest.approx(single_losses, rel=1e-5)
