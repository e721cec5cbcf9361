"""Training-step time of BasicVSR: BasicSR-style per-frame forward vs mgvsr's batched forward.

One step = forward, Charbonnier loss, backward, Adam step.  Both implementations share
the same weights (copies of one model) and are timed interleaved in one run (reference,
fast, reference, fast, ...) so that the machine's noise hits both alike; the ratio of
the medians is the speedup.  The reference is the test oracle of
``tests/test_models_basicvsr.py`` (BasicSR's loop: two SpyNet calls, reconstruction
frame by frame inside the forward loop).

    python bench/bench_basicvsr_step.py                       # 16 feat, 2 blocks, b4, 10 frames, 32x32
    python bench/bench_basicvsr_step.py --size 64 --frozen-spynet
    python bench/bench_basicvsr_step.py --only fast --size 64  # just time mgvsr's step
    python bench/bench_basicvsr_step.py --only fast --frozen-spynet --zero-init-spynet --hr-feat 16

Options that change the model or the arithmetic (``--hr-feat``, ``--bf16``) apply to both
implementations alike; they are there to size the CPU preset, not part of the comparison.

Timings on a shared 2-core machine are noisy; read the ratio, and rerun.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from mgvsr.models import basicvsr as basicvsr_module
from mgvsr.models.basicvsr import BasicVSR

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_models_basicvsr import reference_forward, mgvsr_spynet  # noqa: E402


def charbonnier(out: torch.Tensor, gt: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return torch.sqrt((out - gt) ** 2 + eps).mean()


def make_step(model, forward, lr_frames, gt_frames, bf16: bool = False):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=2e-4, betas=(0.9, 0.99))

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(model, lr_frames)
        loss = charbonnier(out.float(), gt_frames)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feat", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=32, help="LR patch side")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per implementation first")
    parser.add_argument("--frozen-spynet", action="store_true", help="SpyNet requires_grad False")
    parser.add_argument("--zero-init-spynet", action="store_true", help="BasicVSR(spynet_zero_init=True)")
    parser.add_argument("--hr-feat", type=int, default=64, help="channels of the HR tail (BasicSR: 64)")
    parser.add_argument("--bf16", action="store_true", help="forward under torch.autocast(cpu, bfloat16)")
    parser.add_argument("--recon-chunk-elements", type=int, default=None,
                        help="override basicvsr.RECON_CHUNK_ELEMENTS (fast implementation only)")
    parser.add_argument("--only", choices=["both", "fast", "reference"], default="both")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.recon_chunk_elements:
        basicvsr_module.RECON_CHUNK_ELEMENTS = args.recon_chunk_elements
    model = BasicVSR(num_feat=args.feat, num_block=args.blocks, spynet_zero_init=args.zero_init_spynet,
                     hr_feat=args.hr_feat)
    if args.frozen_spynet:
        model.spynet.requires_grad_(False)
    lr_frames = torch.rand(args.batch, args.frames, 3, args.size, args.size)
    gt_frames = torch.rand(args.batch, args.frames, 3, 4 * args.size, 4 * args.size)
    # BasicSR's SpyNet fails at 32 px; the reference then calls mgvsr's SpyNet (twice, as BasicSR does).
    spynet_fn = mgvsr_spynet if args.size <= 32 else None

    def ref_forward(m, x):
        return reference_forward(m, x, spynet_fn=spynet_fn) if spynet_fn else reference_forward(m, x)

    steps = {}
    if args.only in ("both", "reference"):
        steps["reference"] = make_step(copy.deepcopy(model), ref_forward, lr_frames, gt_frames, args.bf16)
    if args.only in ("both", "fast"):
        steps["fast"] = make_step(copy.deepcopy(model), lambda m, x: m(x), lr_frames, gt_frames, args.bf16)

    print(f"BasicVSR num_feat={args.feat} num_block={args.blocks} hr_feat={args.hr_feat}, batch {args.batch}, "
          f"{args.frames} frames, LR {args.size}x{args.size}, SpyNet "
          f"{'frozen' if args.frozen_spynet else 'trained'}{', zero-init' if args.zero_init_spynet else ''}"
          f"{', bf16 autocast' if args.bf16 else ''}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.steps):
        for name, step in steps.items():
            times[name].append(step())
    for name, ts in times.items():
        print(f"  {name:9s} median {statistics.median(ts):.3f} s/step  (min {min(ts):.3f}, max {max(ts):.3f}, "
              f"{len(ts)} steps)")
    if len(times) == 2:
        ratio = statistics.median(times["reference"]) / statistics.median(times["fast"])
        print(f"  speedup (reference / fast, medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
