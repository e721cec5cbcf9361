"""Our fp32 training steps against the field's reference architectures at the same shapes.

BasicSR is not importable here, so the reference is a faithful per-frame forward of BasicSR's code
on the same modules and weights (the test oracles, equal to ours in outputs and gradients):

- BasicVSR: ``tests/test_models_basicvsr.py::reference_forward`` (two SpyNet calls, the
  reconstruction frame by frame inside the forward loop, the sampling grid rebuilt at every warp);
- EDVR: ``tests/test_edvr.py::reference_forward`` (the PCD alignment frame by frame, with
  BasicSR's ``.clone()`` of every pyramid level).

One step = forward, Charbonnier loss, backward, Adam step, on copies of one model, timed
interleaved (reference, ours, ours as trained, reference, ...) so that the machine's noise hits
them alike; the ratios of the medians are printed (> 1: ours faster).  "ours" is our forward in
the default memory format, as the reference runs; "ours as trained" adds what the trainer does
on this device (``channels_last`` where the model measured it faster,
:func:`mgvsr.models.protocol.prefers_channels_last`).  Where torchvision imports, both use its
deformable convolution (as BasicSR does); elsewhere both use mgvsr's pure-PyTorch one.

    python bench/bench_reference.py                       # basicvsr and edvr_m at the paper's largest shapes, batch 1
    python bench/bench_reference.py --models basicvsr_m --shapes 32x7 64x15 --steps 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from mgvsr.models import build_model
from mgvsr.models.protocol import prefers_channels_last, sliding_window, target_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_edvr import reference_forward as edvr_reference  # noqa: E402
from test_models_basicvsr import mgvsr_spynet, reference_forward as basicvsr_reference  # noqa: E402

DEFAULT = {"basicvsr": [(64, 15)], "edvr_m": [(64, 5)]}


def charbonnier(out: torch.Tensor, gt: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return torch.sqrt((out - gt) ** 2 + eps).mean()


def reference_of(model: torch.nn.Module, patch: int):
    """The per-frame reference forward of ``model``'s family."""
    if sliding_window(model) is not None:
        return lambda m, x: edvr_reference(m, x)
    if patch <= 32:  # BasicSR's SpyNet fails at 32 px and below: the reference calls ours there (twice)
        return lambda m, x: basicvsr_reference(m, x, spynet_fn=mgvsr_spynet)
    return lambda m, x: basicvsr_reference(m, x)


def make_step(model, forward, lq, gt):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))

    def step() -> float:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        charbonnier(forward(model, lq), target_frames(model, gt)).backward()
        optimizer.step()
        return time.perf_counter() - t0

    return step


def compare(name: str, batch: int, patch: int, frames: int, steps: int = 3, warmup: int = 1) -> dict:
    """Median step seconds of the reference, of ours and of ours as the trainer runs it (``name`` at
    ``batch x frames x patch^2`` LR, fp32, CPU), and ``ratio`` / ``ratio_trained``: the reference's over ours."""
    torch.manual_seed(0)
    model = build_model(name)
    lq = torch.rand(batch, frames, 3, patch, patch)
    gt = torch.rand(batch, frames, 3, 4 * patch, 4 * patch)
    trained = copy.deepcopy(model)
    if prefers_channels_last(trained, "cpu", "fp32"):
        trained.to(memory_format=torch.channels_last)
    timed = {"reference": make_step(copy.deepcopy(model), reference_of(model, patch), lq, gt),
             "ours": make_step(copy.deepcopy(model), lambda m, x: m(x), lq, gt),
             "trained": make_step(trained, lambda m, x: m(x), lq, gt)}
    for _ in range(warmup):
        for step in timed.values():
            step()
    times: dict[str, list[float]] = {k: [] for k in timed}
    for _ in range(steps):
        for k, step in timed.items():
            times[k].append(step())
    result = {k: statistics.median(v) for k, v in times.items()}
    result["ratio"] = result["reference"] / result["ours"]
    result["ratio_trained"] = result["reference"] / result["trained"]
    return result


def parse_shape(text: str) -> tuple[int, int]:
    """``"64x15"`` -> (patch 64, frames 15)."""
    patch, frames = text.lower().split("x")
    return int(patch), int(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT))
    parser.add_argument("--shapes", nargs="+", type=parse_shape, help="PATCHxFRAMES (default: the paper's largest)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 train steps, batch {args.batch}")
    for name in args.models:
        for patch, frames in args.shapes or DEFAULT.get(name, [(64, 15)]):
            r = compare(name, args.batch, patch, frames, steps=args.steps)
            print(f"  {name:10s} {patch}&{frames}: reference {r['reference']:.3f} s, ours {r['ours']:.3f} s "
                  f"({r['ratio']:.2f}x the reference's speed), as trained {r['trained']:.3f} s "
                  f"({r['ratio_trained']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
