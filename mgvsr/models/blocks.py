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

__all__ = ["default_init_weights", "ResidualBlockNoBN", "make_layer"]


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
