"""Small tensor operations shared by the models: warping by optical flow.

Conventions (BasicSR's): a flow is ``(n, h, w, 2)`` in pixels, channel 0 the x (column)
displacement and channel 1 the y (row) displacement; ``flow_warp(x, flow)[.., i, j]``
samples ``x`` at ``(i + flow[.., i, j, 1], j + flow[.., i, j, 0])`` with bilinear
interpolation, ``align_corners=True`` (pixel centres at integer coordinates).

Deformable convolution lives in :mod:`mgvsr.models.dcn`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Turn a pixel flow ``(n, h, w, 2)`` into the normalised sampling grid of ``grid_sample``.

    The result ``(n, h, w, 2)`` holds ``2 * (base + flow) / max(size - 1, 1) - 1`` per axis,
    computed in the same order as BasicSR's ``flow_warp`` so that both give the same bits.
    Computing the grids of many flows in one call (e.g. all frames of a clip) and then
    calling :func:`grid_warp` per frame saves rebuilding the base grid every time.
    """
    if flow.dim() != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (n, h, w, 2), got {tuple(flow.shape)}")
    _, h, w, _ = flow.shape
    ys = torch.arange(0, h, dtype=flow.dtype, device=flow.device)
    xs = torch.arange(0, w, dtype=flow.dtype, device=flow.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack((grid_x, grid_y), dim=2)  # (h, w, 2), x first
    vgrid = base + flow
    vgrid_x = 2.0 * vgrid[..., 0] / max(w - 1, 1) - 1.0
    vgrid_y = 2.0 * vgrid[..., 1] / max(h - 1, 1) - 1.0
    return torch.stack((vgrid_x, vgrid_y), dim=3)


def grid_warp(x: torch.Tensor, grid: torch.Tensor, interp_mode: str = "bilinear",
              padding_mode: str = "zeros") -> torch.Tensor:
    """Sample ``x`` ``(n, c, h, w)`` at a grid from :func:`flow_to_grid` (``align_corners=True``)."""
    return F.grid_sample(x, grid, mode=interp_mode, padding_mode=padding_mode, align_corners=True)


def flow_warp(x: torch.Tensor, flow: torch.Tensor, interp_mode: str = "bilinear",
              padding_mode: str = "zeros") -> torch.Tensor:
    """Warp an image or feature map ``x`` ``(n, c, h, w)`` by a pixel flow ``(n, h, w, 2)``.

    Output ``(n, c, h, w)``: at every pixel, ``x`` sampled at that pixel plus the flow
    (flow channel 0 = x).  ``padding_mode`` decides samples outside the image: ``"zeros"``
    (features in BasicVSR) or ``"border"`` (images inside SpyNet).
    """
    if x.dim() != 4 or flow.shape[:1] + flow.shape[1:3] != x.shape[:1] + x.shape[2:]:
        raise ValueError(f"flow_warp needs x (n, c, h, w) and flow (n, h, w, 2) of the same n, h, w; "
                         f"got x {tuple(x.shape)} and flow {tuple(flow.shape)}")
    return grid_warp(x, flow_to_grid(flow), interp_mode, padding_mode)
