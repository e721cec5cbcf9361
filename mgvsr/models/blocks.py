"""Building blocks shared by BasicVSR and EDVR (BasicSR's ``arch_util``): init and residual blocks.

BasicSR initialises its residual blocks with :func:`default_init_weights` (kaiming-normal
weights times 0.1, zero biases), after PyTorch's own init of each layer has drawn from the
random generator.  The random numbers are drawn in the same order here, so that a seed gives
BasicSR's initial weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

__all__ = ["default_init_weights", "fast_start_init", "ResidualBlockNoBN", "make_layer"]


@torch.no_grad()
def default_init_weights(modules: nn.Module | Iterable[nn.Module], scale: float = 1.0,
                         bias_fill: float = 0.0) -> None:
    """BasicSR's init: every ``Conv2d`` / ``Linear`` inside ``modules`` gets kaiming-normal weights
    times ``scale`` and biases ``bias_fill``, in the order of ``module.modules()``."""
    if isinstance(modules, nn.Module):
        modules = [modules]
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)


@torch.no_grad()
def fast_start_init(convs: Iterable[nn.Conv2d], shuffled: Iterable[nn.Conv2d], last: nn.Conv2d,
                    slope: float = 0.1, upscale: int = 2) -> None:
    """An initialisation that starts a residual SR network learning at once (``fast_start``).

    PyTorch's default init of a plain conv (BasicSR keeps it outside its residual blocks) has
    weight variance ``1 / (3 fan_in)``: through a LeakyReLU each such layer passes about 0.4 of its
    input's scale, so after the five convs of BasicVSR's reconstruction the frame's content is ~1%
    of the output's residual, which is the layers' random biases (a constant colour offset), and
    the early layers' gradients are as small.  Here:

    - ``convs`` (followed by LeakyReLU ``slope``): He-normal weights for that slope (fan in), zero
      biases: every layer passes its input's scale;
    - ``shuffled`` (followed by a pixel shuffle x ``upscale``): the same, ICNR (Aitken et al.
      2017): the ``upscale**2`` sub-pixel filters of each output channel start equal, so the
      shuffle starts as a nearest-neighbour upsampling, without checkerboard;
    - ``last``: zero: the network starts exactly at its skip connection (bilinear x4) and its
      first steps move the residual from there, not from a random offset.

    Shapes and parameter names are untouched (checkpoints load either way); only the initial
    weights differ.
    """
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, a=slope, nonlinearity="leaky_relu")
        nn.init.zeros_(conv.bias)
    for conv in shuffled:
        out, *rest = conv.weight.shape
        sub = torch.empty(out // upscale ** 2, *rest)
        nn.init.kaiming_normal_(sub, a=slope, nonlinearity="leaky_relu")
        conv.weight.copy_(sub.repeat_interleave(upscale ** 2, dim=0))  # pixel shuffle: channel c * r^2 + k
        nn.init.zeros_(conv.bias)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


class ResidualBlockNoBN(nn.Module):
    """conv3x3 - ReLU - conv3x3, plus the identity: ``(n, c, h, w) -> (n, c, h, w)``; kaiming init x 0.1.

    Keys ``conv1.weight``, ``conv1.bias``, ``conv2.weight``, ``conv2.bias`` (BasicSR's).
    """

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


def make_layer(num_blocks: int, num_feat: int) -> nn.Sequential:
    """``num_blocks`` :class:`ResidualBlockNoBN` in an ``nn.Sequential`` (keys ``{i}.conv1.weight`` ...)."""
    return nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_blocks)])
