"""mgvsr.tutorial.eq3_minibatch: Eq. 3 (m small SGD steps) against Eq. 4 (one step of the m-times batch at m*eta)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mgvsr.data.datasets import open_dataset
from mgvsr.errors import MgvsrError
from mgvsr.tutorial.eq3_minibatch import (
    batch_loss,
    concat_batches,
    flat_weights,
    gaps_text,
    large_step,
    linear_scaling_gap,
    scaling_gaps,
    small_steps,
    training_batches,
)
from mgvsr.models import build_model
from mgvsr.tutorial.viz import plot_scaling_gaps


class PixelNet(nn.Module):
    """A toy x4 VSR model: a 1x1 conv, tanh, a 1x1 conv per frame, then nearest upsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        y = self.b(torch.tanh(self.a(x.flatten(0, 1))))
        return F.interpolate(y, scale_factor=4, mode="nearest").view(b, t, c, 4 * h, 4 * w)


def batches(m: int, n: int = 2, seed: int = 0) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 2, 3, 4, 4, generator=gen), torch.rand(n, 2, 3, 16, 16, generator=gen)) for _ in range(m)]


def model() -> PixelNet:
    torch.manual_seed(0)
    return PixelNet()


def test_steps_are_the_equations():
    net, xs, lr = model(), batches(3), 0.3
    # Eq. 3 by hand: one SGD step per minibatch, in turn
    manual = copy.deepcopy(net)
    for batch in xs:
        grads = torch.autograd.grad(batch_loss(manual, batch), list(manual.parameters()))
        with torch.no_grad():
            for p, g in zip(manual.parameters(), grads):
                p -= lr * g
    small, drift = small_steps(net, xs, lr)
    assert torch.allclose(flat_weights(small), flat_weights(manual), atol=1e-7)
    assert len(drift) == 3 and 0 < drift[0]
    # Eq. 4 by hand: the mean loss over the union of the minibatches
    union = concat_batches(xs)
    assert union[0].shape == (6, 2, 3, 4, 4)
    grads = torch.autograd.grad(batch_loss(net, union), list(net.parameters()))
    expected = torch.cat([(p.detach() - 3 * lr * g).reshape(-1).double() for p, g in zip(net.parameters(), grads)])
    assert torch.allclose(flat_weights(large_step(net, xs, 3 * lr)), expected, atol=1e-7)


def test_one_minibatch_makes_both_sides_equal_and_the_model_is_untouched():
    net = model()
    before = flat_weights(net)
    gap = linear_scaling_gap(net, batches(1), 0.5, heldout=batches(1, seed=1)[0])
    assert gap.m == 1 and gap.n == 2
    assert gap.gap == pytest.approx(0.0, abs=1e-9) and gap.cosine == pytest.approx(1.0)
    assert gap.loss_small == pytest.approx(gap.loss_large)
    assert torch.equal(flat_weights(net), before)


def test_the_gap_is_second_order_in_the_learning_rate():
    """Eq. 5's approximation error comes from the gradient changing along the m small steps:
    a tenth of the LR gives about a tenth of the relative gap (a hundredth of the gap)."""
    net, xs, held = model(), batches(4), batches(1, seed=1)[0]
    big = linear_scaling_gap(net, xs, 0.05, held)
    small = linear_scaling_gap(net, xs, 0.005, held)
    assert big.relative_gap > 0
    assert 0.05 < small.relative_gap / big.relative_gap < 0.2
    assert small.cosine > big.cosine > 0.9


def test_bad_input():
    net = model()
    with pytest.raises(MgvsrError, match="at least one minibatch"):
        linear_scaling_gap(net, [], 0.1, batches(1)[0])
    mixed = batches(1) + batches(1, n=3)
    with pytest.raises(MgvsrError, match="same shape"):
        linear_scaling_gap(net, mixed, 0.1, batches(1)[0])
    with pytest.raises(MgvsrError, match="lr must be positive"):
        linear_scaling_gap(net, batches(2), 0.0, batches(1)[0])


def test_training_batches_are_real_windows():
    source = open_dataset("sample")
    xs = training_batches(source, 2, 3, frames=4, patch=8, seed=5)
    assert len(xs) == 2 and xs[0][0].shape == (3, 4, 3, 8, 8) and xs[0][1].shape == (3, 4, 3, 32, 32)
    assert xs[0][0].dtype == torch.float32 and 0 <= float(xs[0][0].min()) and float(xs[0][0].max()) <= 1
    again = training_batches(source, 2, 3, frames=4, patch=8, seed=5)
    assert torch.equal(xs[1][1], again[1][1])
    assert not torch.equal(xs[0][0], training_batches(source, 1, 3, frames=4, patch=8, seed=6)[0][0])


def test_on_basicvsr_and_real_windows():
    torch.manual_seed(0)
    net = build_model("basicvsr_cpu", fast_start=False)  # BasicSR's init: the early regime notebook 5 shows
    gaps = scaling_gaps(net, open_dataset("sample"), (1, 2), n=1, frames=3, patch=8, lr=0.05)
    assert [g.m for g in gaps] == [1, 2]
    assert gaps[0].gap == pytest.approx(0.0, abs=1e-6)
    assert gaps[1].gap > 0 and gaps[1].drift > 0 and gaps[1].loss_small < gaps[1].loss_start
    text = gaps_text({"early": gaps})
    assert text.splitlines()[0].split()[:3] == ["weights", "m", "drift"] and len(text.splitlines()) == 3
    assert len(plot_scaling_gaps({"early": gaps}).axes) == 2
