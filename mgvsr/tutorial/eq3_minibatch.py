"""Large minibatches (Sec. 3.2, Eq. 2-5): m small steps at LR eta against one step of the m-times
larger minibatch at LR m * eta, measured on a real model.

With plain SGD on the mean loss of a minibatch (Eq. 2), ``m`` steps on minibatches ``X_1..X_m``
of ``n`` samples each (Eq. 3) and one step on their union (``mn`` samples) at ``m`` times the
LR (Eq. 4) differ by

    w_{t+m} - w'_{t+1} = -(eta / n) * sum_i sum_{x in X_i} [grad l(x, w_{t+i-1}) - grad l(x, w_t)],

which is small when the weights move little during the m steps (Eq. 5's assumption
``w_{t+i} ~ w_t``).  :func:`linear_scaling_gap` computes both sides from the same weights and
the same samples and reports how far apart they land, relative to how far they moved, and
what each does to the loss on held-out samples.  Early in training the weights move fast and
the approximation is worse: the reason for the warmup.

The paper trains with Adam, whose update is not linear in the gradient; the derivation (and
Goyal et al.'s, which it follows) is for SGD, so the measurement uses SGD.  Everything here is
a pure function of the model's weights and the batches: the model passed in is not changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.errors import MgvsrError
from mgvsr.models.protocol import target_frames
from mgvsr.presets import by_scale
from mgvsr.step import charbonnier

Batch = tuple[torch.Tensor, torch.Tensor]  # (lq (n, t, 3, h, w), gt (n, t, 3, 4h, 4w)), RGB in [0, 1]


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that require gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_weights(model: nn.Module) -> torch.Tensor:
    """All trainable weights as one detached float64 vector (for distances between weights)."""
    return torch.cat([p.detach().reshape(-1).double() for p in trainable(model)])


def batch_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The trainer's loss (Charbonnier, mean over the minibatch; Eq. 2) of ``model`` on ``batch``."""
    lq, gt = batch
    return charbonnier(model(lq), target_frames(model, gt))


def sgd_step(model: nn.Module, batch: Batch, lr: float) -> None:
    """One plain SGD step of ``model`` in place: ``w <- w - lr * grad L(w)`` on ``batch``."""
    params = trainable(model)
    # parameters a shape does not reach (SpyNet's coarse levels on small patches) get no gradient
    grads = torch.autograd.grad(batch_loss(model, batch), params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p.sub_(lr * g)


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """The union of equal-sized minibatches: ``(m n, t, 3, h, w)`` LR and GT."""
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def small_steps(model: nn.Module, batches: Sequence[Batch], lr: float) -> tuple[nn.Module, list[float]]:
    """Eq. 3: a copy of ``model`` after one SGD step at ``lr`` on each minibatch in turn.

    Also returns the drift ``||w_{t+i} - w_t|| / ||w_t||`` after each step (Eq. 5's assumption
    is that it stays small)."""
    net = copy.deepcopy(model)
    start = flat_weights(net)
    drift = []
    for batch in batches:
        sgd_step(net, batch, lr)
        drift.append(float((flat_weights(net) - start).norm() / start.norm()))
    return net, drift


def large_step(model: nn.Module, batches: Sequence[Batch], lr: float) -> nn.Module:
    """Eq. 4: a copy of ``model`` after one SGD step at ``lr`` on the union of ``batches``."""
    net = copy.deepcopy(model)
    sgd_step(net, concat_batches(batches), lr)
    return net


@dataclass(frozen=True)
class ScalingGap:
    """How close m small steps at ``lr`` land to one large step at ``m * lr`` (see the module docstring).

    - ``step_small``, ``step_large``: ``||w_{t+m} - w_t||`` and ``||w'_{t+1} - w_t||``;
    - ``gap``: ``||w_{t+m} - w'_{t+1}||``; :attr:`relative_gap` = ``gap / step_small``;
    - ``cosine``: cosine of the angle between the two updates (1: the same direction);
    - ``drift``: ``max_i ||w_{t+i} - w_t|| / ||w_t||`` during the small steps;
    - ``loss_start``, ``loss_small``, ``loss_large``: the loss on held-out samples at ``w_t``,
      ``w_{t+m}`` and ``w'_{t+1}``.
    """

    m: int
    n: int
    lr: float
    step_small: float
    step_large: float
    gap: float
    cosine: float
    drift: float
    loss_start: float
    loss_small: float
    loss_large: float

    @property
    def relative_gap(self) -> float:
        return self.gap / self.step_small if self.step_small > 0 else float("inf")

    @property
    def loss_gap(self) -> float:
        """``loss_large - loss_small`` on the held-out samples (positive: the large step is worse)."""
        return self.loss_large - self.loss_small


def linear_scaling_gap(model: nn.Module, batches: Sequence[Batch], lr: float, heldout: Batch) -> ScalingGap:
    """Compare Eq. 3 (``len(batches)`` SGD steps at ``lr``) with Eq. 4 (one step at ``m * lr`` on their
    union), both from ``model``'s weights; ``model`` itself is not changed.

    ``batches``: m >= 1 minibatches of the same shape; ``heldout``: a minibatch the losses are
    measured on.
    """
    if not batches:
        raise MgvsrError("need at least one minibatch (m >= 1)")
    shapes = {tuple(b[0].shape) for b in batches}
    if len(shapes) != 1:
        raise MgvsrError(f"the m minibatches must have the same shape, got {sorted(shapes)}")
    if not lr > 0:
        raise MgvsrError(f"lr must be positive, got {lr!r}")
    m, n = len(batches), batches[0][0].shape[0]
    was_training = model.training
    model.train()
    try:
        start = flat_weights(model)
        small, drift = small_steps(model, batches, lr)
        large = large_step(model, batches, m * lr)
        d_small = flat_weights(small) - start
        d_large = flat_weights(large) - start
        with torch.no_grad():
            losses = [float(batch_loss(net, heldout)) for net in (model, small, large)]
    finally:
        model.train(was_training)
    denom = d_small.norm() * d_large.norm()
    return ScalingGap(m=m, n=n, lr=lr, step_small=float(d_small.norm()), step_large=float(d_large.norm()),
                      gap=float((d_small - d_large).norm()),
                      cosine=float(d_small @ d_large / denom) if denom > 0 else float("nan"),
                      drift=max(drift), loss_start=losses[0], loss_small=losses[1], loss_large=losses[2])


def training_batches(source, count: int, batch: int, frames: int, patch: int, seed: int = 0,
                     device: torch.device | str = "cpu") -> list[Batch]:
    """``count`` minibatches of ``batch`` real training windows (``frames`` frames, LR ``patch`` x
    ``patch``) from a :class:`~mgvsr.data.source.ClipSource`, as float RGB in [0, 1]; the windows
    are those of :class:`~mgvsr.data.windows.TrainingWindows` with ``seed``."""
    windows = TrainingWindows(source, frames, patch, length=count * batch, seed=seed)
    out = []
    for k in range(count):
        items = [windows[k * batch + i] for i in range(batch)]
        lq = torch.stack([to_float(it[0]) for it in items]).to(device)
        gt = torch.stack([to_float(it[1]) for it in items]).to(device)
        out.append((lq, gt))
    return out


HELDOUT_SEED = 10_000  # the held-out minibatch's windows: another stream than the training one's


def scaling_gaps(model: nn.Module, source, ms: Sequence[int], *, n: int, frames: int, patch: int, lr: float,
                 seed: int = 0) -> list[ScalingGap]:
    """:func:`linear_scaling_gap` for every m in ``ms``, on the first m minibatches of the same
    stream of training windows of ``source`` (and one held-out minibatch of another seed)."""
    if not ms:
        raise MgvsrError("give at least one m")
    stream = training_batches(source, max(ms), n, frames, patch, seed)
    heldout = concat_batches(training_batches(source, 1, n * 2, frames, patch, HELDOUT_SEED))
    return [linear_scaling_gap(model, stream[:m], lr, heldout) for m in ms]


def gaps_text(gaps: dict[str, Sequence[ScalingGap]]) -> str:
    """An aligned text table of :class:`ScalingGap` s grouped by a label (e.g. "early", "late")."""
    head = (f"{'weights':>8}  {'m':>2}  {'drift':>8}  {'|small step|':>12}  {'gap / |small|':>13}  {'cos':>6}  "
            f"{'loss: start':>11}  {'m small':>8}  {'1 large':>8}")
    lines = [head]
    for label, rows in gaps.items():
        for g in rows:
            lines.append(f"{label:>8}  {g.m:>2}  {g.drift:8.2e}  {g.step_small:12.3e}  {g.relative_gap:13.3f}  "
                         f"{g.cosine:6.3f}  {g.loss_start:11.5f}  {g.loss_small:8.5f}  {g.loss_large:8.5f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class GapSettings:
    """Notebook 5's measurement at one scale: the model, minibatches of ``n`` windows of
    ``frames`` x ``patch`` LR pixels, the ``ms`` compared, the SGD learning rate."""

    model: str
    n: int
    frames: int
    patch: int
    ms: tuple[int, ...]
    lr: float


SETTINGS = {
    # an SGD LR at which 8 small steps cut a fresh basicvsr_cpu's loss by about two thirds on these windows
    "smoke": GapSettings("basicvsr_cpu", n=2, frames=6, patch=16, ms=(2, 4, 8), lr=0.05),
    "lesson": GapSettings("basicvsr_cpu", n=4, frames=8, patch=32, ms=(2, 4, 8, 16), lr=0.05),
    "paper": GapSettings("basicvsr_cpu", n=4, frames=8, patch=32, ms=(2, 4, 8, 16), lr=0.05),
}


def get_settings(scale: str) -> GapSettings:
    """Notebook 5's measurement at ``scale`` (one of :data:`mgvsr.presets.SCALES`)."""
    return by_scale(SETTINGS, scale, "Eq. 3-5 settings")
