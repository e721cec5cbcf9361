"""mgvsr.tutorial.fig2_shapes: the cost of a minibatch shape (step time, FLOPs) and short fixed-shape trainings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.tutorial import explore
from mgvsr.errors import MgvsrError
from mgvsr.options import RunOptions
from mgvsr.schedule import multigrid
from mgvsr.tutorial.fig2_shapes import (
    SETTINGS,
    ShapeCost,
    cost_table_text,
    count_step_flops,
    make_train_step,
    measure_shape_costs,
    random_batch,
    shape_runs_text,
    step_times,
    sweep,
    time_train_step,
    train_shape,
    unique_shapes,
)
from mgvsr.tutorial.viz import plot_shape_costs, plot_shape_runs

CPU = RunOptions(device="cpu", progress=False)


class PerFrameConv(nn.Module):
    """A toy VSR model: one 3x3 conv (3 -> 3 channels) per frame, then nearest x4: FLOPs by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        y = F.interpolate(self.conv(x.flatten(0, 1)), scale_factor=4, mode="nearest")
        return y.view(b, t, c, 4 * h, 4 * w)


def test_random_batch_shapes_and_errors():
    lq, gt = random_batch(2, 3, 8)
    assert lq.shape == (2, 3, 3, 8, 8) and gt.shape == (2, 3, 3, 32, 32)
    assert 0 <= float(lq.min()) and float(lq.max()) <= 1
    assert torch.equal(lq, random_batch(2, 3, 8)[0])  # seeded
    with pytest.raises(MgvsrError, match="patch must be a positive integer"):
        random_batch(2, 3, 0)


def test_flops_of_a_conv_by_hand():
    b, t, s = 2, 3, 8
    flops = count_step_flops(PerFrameConv(), b, t, s)
    # a 3x3 conv 3 -> 3 on (b t) frames of s x s: 2 FLOPs per multiply-add
    assert flops["forward"] == 2 * (b * t) * s * s * 3 * 3 * 9
    assert flops["backward"] > 0 and flops["total"] == flops["forward"] + flops["backward"]


def test_flops_of_basicvsr_grow_with_frames_and_area():
    f = {shape: count_step_flops("basicvsr_cpu", 1, shape[1], shape[0])["total"] for shape in [(8, 4), (8, 8), (16, 8)]}
    assert 1.8 < f[8, 8] / f[8, 4] < 2.3  # about linear in frames (SpyNet sees t - 1 pairs)
    assert 3.5 < f[16, 8] / f[8, 8] < 4.5  # about linear in the patch area


def test_train_step_trains_and_times():
    torch.manual_seed(0)
    model = PerFrameConv()
    before = model.conv.weight.detach().clone()
    step = make_train_step(model, *random_batch(1, 2, 8))
    seconds = step()
    assert seconds > 0 and not torch.equal(before, model.conv.weight)
    times = time_train_step(PerFrameConv(), 1, 2, 8, steps=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)


def test_measured_costs_table_and_step_times():
    costs = measure_shape_costs(PerFrameConv(), [(8, 2), (8, 4), (16, 4)], batch=2, steps=2, progress=False)
    assert [c.label for c in costs] == ["8&2", "8&4", "16&4"]
    assert costs[2].pixels == 2 * 4 * 16 * 16 and costs[1].flops == 2 * costs[0].flops
    text = cost_table_text(costs)
    assert text.splitlines()[0].split()[:3] == ["shape", "batch", "LR"] and text.endswith("base: 16&4")
    assert "1.00" in text.splitlines()[3]
    with pytest.raises(MgvsrError, match="shape 32&4 was not measured"):
        cost_table_text(costs, base=(32, 4))
    # measured step times drive the expected speedup of notebook 3's explorer
    plan = multigrid(12, 16, 4, 2, 1e-3, spatial=(8, 16), temporal=(2, 4))
    shapes = [(s.patch, s.frames) for s in plan.stages]
    measured = measure_shape_costs(PerFrameConv(), shapes, batch=2, steps=1, warmup=0, progress=False)
    shares = explore.compute_shares(plan, step_times(measured))
    assert sum(shares) == pytest.approx(1.0) and len(shares) == 4


def test_sweep_around_the_base():
    s = sweep((16, 8), patches=(12, 8), frames=(4, 6))
    assert s == {"frames": [(16, 4), (16, 6), (16, 8)], "patch": [(8, 8), (12, 8), (16, 8)]}
    assert unique_shapes(s) == [(16, 4), (16, 6), (16, 8), (8, 8), (12, 8)]
    assert SETTINGS["smoke"].sweep() == s
    assert SETTINGS["paper"].sweep()["frames"] == [(64, 7), (64, 11), (64, 15)]


def test_figures_of_costs():
    def cost(p, t, sec):
        return ShapeCost(p, t, 2, sec, float(p * p * t), (sec,))

    costs = {"frames": [cost(16, 4, 0.2), cost(16, 8, 0.4)], "patch": [cost(8, 8, 0.15), cost(16, 8, 0.4)]}
    fig = plot_shape_costs(costs, base=(16, 8))
    assert len(fig.axes) == 2


@pytest.mark.slow
def test_short_training_at_a_shape_is_reused(tmp_path: Path):
    run = train_shape("basicvsr_cpu", (8, 3), tmp_path / "r", iterations=2, batch=1, lr=2e-3, options=CPU)
    assert (run.patch, run.frames, run.iterations) == (8, 3, 2)
    assert 10 < run.psnr < 50 and run.train_seconds > 0
    log = (tmp_path / "r" / "log.jsonl").read_text()
    again = train_shape("basicvsr_cpu", (8, 3), tmp_path / "r", iterations=2, batch=1, lr=2e-3, options=CPU)
    assert again == run and (tmp_path / "r" / "log.jsonl").read_text() == log
    other = train_shape("basicvsr_cpu", (4, 2), tmp_path / "s", iterations=2, batch=1, lr=2e-3, options=CPU)
    text = shape_runs_text([other, run], base=(8, 3))
    assert "8&3" in text and "1.00x" in text.splitlines()[2]
    fig = plot_shape_runs({"frames": [other, run], "patch": [run]}, base=(8, 3), bicubic=24.0)
    assert len(fig.axes) == 2
