"""Steps to bicubic: how many optimizer steps a from-scratch model needs before it beats bicubic.

The demo's baseline (``demo/basicvsr/baseline``: LR 32x32, 8 frames, minibatch 4, LR 2e-3; or
``--run ours``, ``--family edvr_m``) is trained on the CPU by the real :class:`~mgvsr.train.Trainer`
(its training step, its callbacks, the run's configuration as ``mgvsr train`` derives it:
:func:`mgvsr.launch.train_config`) from the same seed, evaluated on the held-out sample clips (Y
channel) every ``--every`` steps, and stopped after ``--steps``; printed: the PSNR at every
evaluation and the first step whose PSNR is above bicubic's.

Compared, from the same seed and samples: the model as BasicSR initialises it (``--init basicsr``:
``build_model(..., fast_start=False)``, PyTorch's default init outside the residual blocks) and
mgvsr's fast start (``--init fast``: ``fast_start=True``, :func:`mgvsr.models.blocks.fast_start_init`),
each with Charbonnier's eps (``--loss-eps``; BasicSR's 1e-12 is an L1 loss).  PSNR does not depend
on the machine's load; the seconds printed do.

    python bench/bench_faster_start.py                               # basicvsr_cpu: basicsr and fast init, 150 steps
    python bench/bench_faster_start.py --init fast --loss-eps 1e-3 --steps 200 --every 10
    python bench/bench_faster_start.py --family edvr_m --steps 300 --every 20
    python bench/bench_faster_start.py --diagnose     # why: signal scales and gradients at initialisation
    python bench/bench_faster_start.py --quick        # 2 steps, evaluated at 0 and 2 (a smoke test)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from mgvsr.callbacks import Callback, default_callbacks
from mgvsr.data.datasets import open_sources
from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.evaluate import evaluate_bicubic
from mgvsr.launch import train_config
from mgvsr.models import build_model
from mgvsr.models.protocol import center_frame, target_frames
from mgvsr.options import RunOptions
from mgvsr.presets import get_preset
from mgvsr.step import charbonnier
from mgvsr.train import Trainer


def diagnose(family: str = "basicvsr", init: str = "basicsr", seed: int = 0) -> None:
    """Print, at initialisation, on one batch of the demo's baseline: the scale (std) of each reconstruction
    layer's output, the residual the network adds to its bilinear skip against the true one, and the RMS of
    the gradients of a few layers."""
    preset = get_preset(f"demo/{family}/baseline")
    torch.manual_seed(seed)
    net = build_model(preset.model, fast_start=(init == "fast"))
    train, _ = open_sources(preset.dataset, None, preset.test_dataset)
    stage = preset.plan.stages[0]
    windows = TrainingWindows(train.windows_source(stage.frames), stage.frames, stage.patch, length=stage.batch, seed=seed)
    lq = to_float(torch.stack([windows[i][0] for i in range(stage.batch)]))
    gt = target_frames(net, to_float(torch.stack([windows[i][1] for i in range(stage.batch)])))
    names = [n for n in ("conv_first", "pcd_align", "fusion", "reconstruction", "upconv1", "upconv2", "conv_hr", "conv_last")
             if hasattr(net, n)]
    outputs = {}
    for name in names:
        getattr(net, name).register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.detach()))
    out = net(lq)
    frames = lq if out.dim() == 5 else lq[:, center_frame(net)]
    skip = F.interpolate(frames.flatten(0, -4), scale_factor=4, mode="bilinear", align_corners=False).view_as(out)
    print(f"{preset.model}, init {init}: output std " + ", ".join(f"{n} {outputs[n].std():.3g}" for n in names))
    print(f"  mean |residual| the network adds {(out - skip).abs().mean():.4f}, the true residual's "
          f"{(gt - skip).abs().mean():.4f}")
    charbonnier(out, gt).backward()
    grads = {n: p.grad for n, p in net.named_parameters() if p.grad is not None}
    shown = [n for n in grads if n.endswith(("trunk.main.0.weight", "conv_first.weight", "fusion.weight",
                                            "conv_last.weight", "conv_last.bias"))]
    print("  gradient RMS " + ", ".join(f"{n} {grads[n].pow(2).mean().sqrt():.2g}" for n in shown))


class StopTraining(Exception):
    """Raised by :class:`PsnrCurve` once the asked number of steps is done."""


class PsnrCurve(Callback):
    """The trainer's callback that keeps ``(iteration, PSNR)`` of every evaluation and stops the run after
    the first evaluation at ``steps`` steps or more."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.points: list[tuple[int, float]] = []

    def on_eval(self, trainer, record: dict) -> None:
        self.points.append((record["it"], record["psnr"]))

    def on_step_end(self, trainer) -> None:
        if self.points and self.points[-1][0] >= self.steps:
            raise StopTraining


def steps_to_bicubic(family: str = "basicvsr", run: str = "baseline", init: str = "fast", loss_eps: float = 1e-12,
                     steps: int = 150, every: int = 10, seed: int = 0, lr_mult: float = 1.0) -> dict:
    """Train the demo's ``run`` (its LRs x ``lr_mult``) for ``steps`` steps from scratch; the PSNR curve and
    the first step above bicubic."""
    preset = get_preset(f"demo/{family}/{run}").shrunk(lr_mult=lr_mult)
    torch.manual_seed(seed)  # as a run starts its model (mgvsr.launch.initial_model), the init chosen here
    net = build_model(preset.model, fast_start=(init == "fast"))
    train, test = open_sources(preset.dataset, None, preset.test_dataset)
    bicubic = evaluate_bicubic(test, channel="y", progress=False).to_dict()["mean"]["psnr"]
    batch = preset.plan.stages[0].batch
    options = RunOptions(seed=seed, device="cpu", micro_batch=min(batch, 4), eval_every=every, progress=False)
    cfg = replace(train_config(preset, options), loss_eps=loss_eps, eval_channel="y")
    curve = PsnrCurve(steps)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(net, preset.plan, train, tmp, cfg, test=test, callbacks=[*default_callbacks(cfg), curve])
        trainer.evaluate()  # at initialisation: step 0 of the curve
        try:
            trainer.run()
        except StopTraining:
            pass
    first = next((it for it, psnr in curve.points if psnr > bicubic), None)
    return {"bicubic": bicubic, "curve": curve.points, "steps_to_bicubic": first,
            "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="basicvsr", choices=("basicvsr", "edvr_m"))
    parser.add_argument("--run", default="baseline", choices=("baseline", "ours"))
    parser.add_argument("--init", nargs="+", default=["basicsr", "fast"], choices=("basicsr", "fast"))
    parser.add_argument("--loss-eps", type=float, nargs="+", default=[1e-12])
    parser.add_argument("--lr-mult", type=float, nargs="+", default=[1.0], help="the run's LRs times this")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (1 on a shared machine)")
    parser.add_argument("--diagnose", action="store_true", help="only print the scales and gradients at init")
    parser.add_argument("--quick", action="store_true", help="--steps 2 --every 2 (a smoke test: no count to read)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.every = 2, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.diagnose:
        for init in args.init:
            diagnose(args.family, init)
        return 0
    for init, eps, lr_mult in [(i, e, m) for i in args.init for e in args.loss_eps for m in args.lr_mult]:
        r = steps_to_bicubic(args.family, args.run, init, eps, args.steps, args.every, lr_mult=lr_mult)
        found = r["steps_to_bicubic"]
        print(f"demo/{args.family}/{args.run}, init {init}, Charbonnier eps {eps:g}, LR x {lr_mult:g}: steps to "
              f"bicubic ({r['bicubic']:.2f} dB): {found if found is not None else f'more than {args.steps}'} "
              f"({r['seconds']:.0f} s)", flush=True)
        print("  " + " ".join(f"{it}:{psnr:.2f}" for it, psnr in r["curve"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
