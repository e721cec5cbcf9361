"""The public training step (:class:`mgvsr.step.TrainStep`): one step equals the same step written
out by hand, micro-batches give the whole minibatch's update, the warm start freezes what it says,
the loss is fp32 under autocast, and the trainer's callbacks are called in the loop's order."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from mgvsr.callbacks import Callback, default_callbacks
from mgvsr.data.sample import sample_source
from mgvsr.models import build_model, protocol
from mgvsr.options import TrainConfig
from mgvsr.schedule import Plan, Stage
from mgvsr.step import TrainStep, charbonnier
from mgvsr.train import Trainer

CPU = torch.device("cpu")


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)


def batch(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 3, 8, 8), dtype=torch.uint8, generator=gen),
            torch.randint(0, 256, (n, 3, 3, 32, 32), dtype=torch.uint8, generator=gen))


def test_one_step_is_forward_fp32_charbonnier_backward_adam_by_hand():
    lq, gt = batch()
    by_hand, ours = tiny_model(), tiny_model()
    opt = torch.optim.Adam(by_hand.parameters(), lr=1e-3, betas=(0.9, 0.99))
    loss = charbonnier(by_hand(lq.float() / 255), gt.float() / 255)
    loss.backward()
    opt.step()
    step = TrainStep(ours, TrainConfig(channels_last=False), CPU)
    result = step(iter([(lq, gt)]), lr=1e-3, it=0, samples=4)
    assert result.loss == pytest.approx(loss.item(), rel=1e-6) and result.compute > 0 and result.data >= 0
    for (name, a), b in zip(by_hand.named_parameters(), ours.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_micro_batches_give_the_whole_minibatch_update():
    lq, gt = batch()
    whole, micro = tiny_model(), tiny_model()
    TrainStep(whole, TrainConfig(channels_last=False), CPU)(iter([(lq, gt)]), lr=1e-3, it=0, samples=4)
    parts = iter([(lq[:2], gt[:2]), (lq[2:], gt[2:])])
    result = TrainStep(micro, TrainConfig(micro_batch=2, channels_last=False), CPU)(parts, lr=1e-3, it=0, samples=4)
    assert result.loss > 0
    for a, b in zip(whole.parameters(), micro.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_flow_network_has_its_own_lr_and_is_frozen_for_the_warm_start():
    model = tiny_model()
    step = TrainStep(model, TrainConfig(frozen_iters=2, flow_lr_mult=0.125, channels_last=False), CPU)
    groups = {g["name"]: g for g in step.optimizer.param_groups}
    assert set(groups) == {"main", "flow"} and groups["flow"]["lr_mult"] == 0.125
    flow = protocol.flow_parameters(model)
    before = [p.detach().clone() for p in flow]
    lq, gt = batch(2)
    step(iter([(lq, gt)]), lr=1e-2, it=1, samples=2)  # inside the warm start
    assert all(torch.equal(a, b) for a, b in zip(before, flow))
    step(iter([(lq, gt)]), lr=1e-2, it=2, samples=2)  # after it the flow trains, at 1/8 of the LR
    assert groups["flow"]["lr"] == pytest.approx(1e-2 * 0.125)


def test_the_loss_stays_fp32_under_bf16_autocast(monkeypatch):
    monkeypatch.setenv("MGVSR_BF16", "1")
    seen = []
    model = tiny_model()
    model.conv_last.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    step = TrainStep(model, TrainConfig(amp=True), CPU)
    assert step.precision == "bf16"
    lq, gt = batch(2)
    result = step(iter([(lq, gt)]), lr=1e-3, it=0, samples=2)
    assert seen and set(seen) == {torch.bfloat16} and isinstance(result.loss, float)
    assert all(p.dtype == torch.float32 for p in model.parameters())


class Recorder(Callback):
    def __init__(self):
        self.calls: list[str] = []

    def on_start(self, trainer):
        self.calls.append("start")

    def on_step(self, trainer, record):
        self.calls.append(f"step {record['it']}")

    def on_eval(self, trainer, record):
        self.calls.append(f"eval {record['it']}")

    def on_stage_end(self, trainer, stage):
        self.calls.append(f"stage_end {stage}")

    def on_step_end(self, trainer):
        self.calls.append("step_end")

    def on_train_end(self, trainer):
        self.calls.append("train_end")

    def on_end(self, trainer, summary):
        self.calls.append(f"end {summary['it']}")

    def close(self, trainer):
        self.calls.append("close")


def test_callbacks_are_called_in_the_loops_order(tmp_path):
    recorder = Recorder()
    plan = Plan((Stage(2, 8, 3, 2, 1e-3), Stage(1, 8, 3, 2, 1e-3)))
    cfg = TrainConfig(progress=False, eval_every=1)
    scores = {"mean": {"psnr": 20.0, "ssim": 0.5}}
    trainer = Trainer(tiny_model(), plan, sample_source("train"), tmp_path, cfg, test=sample_source("test"),
                      evaluate=lambda model, source: scores, callbacks=[recorder, *default_callbacks(cfg)])
    trainer.run()
    assert recorder.calls == ["start", "step 0", "eval 1", "step_end", "step 1", "eval 2", "stage_end 0", "step_end",
                              "step 2", "stage_end 1", "step_end", "train_end", "eval 3", "end 3", "close"]
    events = [line.split('"event": "')[1].split('"')[0] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert events == ["start", "step", "eval", "step", "eval", "stage_end", "step", "stage_end", "eval", "end"]


def test_a_trainer_without_callbacks_still_trains_and_writes_its_weights(tmp_path):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    summary = Trainer(model, Plan((Stage(2, 8, 3, 2, 1e-3),)), sample_source("train"), tmp_path,
                      TrainConfig(progress=False), callbacks=[]).run()
    assert summary["it"] == 2 and (tmp_path / "final.pth").is_file() and not (tmp_path / "log.jsonl").exists()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
