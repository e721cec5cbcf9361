"""BasicVSR's reconstruction in chunks of frames against all frames at once: forward + backward, side by side.

``BasicVSR.reconstruct`` upsamples the ``b x t`` frames of a step in chunks of at most
``RECON_CHUNK_ELEMENTS`` per high-resolution tensor (a CPU cache measure) or in one call; by default
it chunks on a CPU and for inference, and runs all frames at once when training on a GPU
(:func:`mgvsr.models.basicvsr.reconstructs_in_chunks`).  This times both ways on the same weights
and the same inputs, the reconstruction alone (fusion, two upsamplers, ``conv_hr``, ``conv_last``,
the bilinear skip), forward and backward, interleaved (chunked, at once, chunked, ...) so that the
machine's noise hits both alike, at the stage shapes of the demo's plan (``demo/basicvsr/ours``,
``basicvsr_cpu``, 4 clips a step) and of the paper's (``table1/basicvsr_m/ours``, ``basicvsr_m``,
1 clip a step on a CPU, the plan's batch per GPU on CUDA).  It prints the medians and the ratio
chunked / at once (> 1: all at once is faster).

    python bench/bench_recon_chunk.py                      # every stage shape, on CUDA when present
    python bench/bench_recon_chunk.py --device cpu --plans demo --repeats 7
    python bench/bench_recon_chunk.py --quick              # a tiny case of each plan (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from mgvsr.device import DTYPES, synchronize
from mgvsr.models import basicvsr as basicvsr_module
from mgvsr.models import build_model
from mgvsr.presets import get_preset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timed_step import bench_device  # noqa: E402

PLANS = {"demo": ("demo/basicvsr/ours", "basicvsr_cpu"), "paper": ("table1/basicvsr_m/ours", "basicvsr_m")}
DEMO_BATCH = 4  # the demo's micro-batch of clips (bench/run.py's too)


def cases(plans: list[str], device: torch.device, quick: bool) -> list[tuple[str, str, int, int, int]]:
    """(plan, model, patch, frames, batch) for every stage of the plans; ``quick``: the smallest
    stage of each, 1 clip of 3 frames (not the plan's shape: a smoke test)."""
    out = []
    for plan in plans:
        preset_name, model = PLANS[plan]
        preset = get_preset(preset_name)
        for stage in preset.plan.stages[:1] if quick else preset.plan.stages:
            if quick:
                batch, frames = 1, 3
            elif plan == "demo":
                batch, frames = DEMO_BATCH, stage.frames
            else:
                batch = max(1, stage.batch // preset.paper_devices) if device.type == "cuda" else 1
                frames = stage.frames
            out.append((plan, model, stage.patch, frames, batch))
    return out


def frames_per_call(model, patch: int, n: int) -> int:
    """Frames per reconstruction call when chunked (the rule of ``BasicVSR.reconstruct``)."""
    per_frame = model.hr_feat * 16 * patch * patch
    return min(n, max(1, basicvsr_module.RECON_CHUNK_ELEMENTS // per_frame))


def measure(model_name: str, patch: int, frames: int, batch: int, device: torch.device, precision: str,
            repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(model_name).to(device)
    n = batch * frames
    feats = torch.randn(n, 2 * model.num_feat, patch, patch, device=device)
    lr = torch.rand(n, 3, patch, patch, device=device)
    autocast = torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32")

    def step(chunked: bool) -> float:
        f = feats.detach().requires_grad_()
        synchronize(device)
        t0 = time.perf_counter()
        with autocast:
            out = model.reconstruct(f, lr, chunked=chunked)
        out.float().square().mean().backward()
        synchronize(device)
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for chunked in (True, False):
        step(chunked)  # warm-up (allocator, cuDNN's algorithm choice)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for chunked in (True, False):
            times[chunked].append(step(chunked))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"chunked": med[True], "at_once": med[False], "ratio": med[True] / med[False],
            "per_call": frames_per_call(model, patch, n), "n": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--plans", nargs="+", choices=sorted(PLANS), default=sorted(PLANS))
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32",
                        help="fp32, or autocast in bf16 / fp16 (default fp32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each way, interleaved")
    parser.add_argument("--threads", type=int, help="torch threads on a CPU (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="a tiny case per plan, 2 repeats (a smoke test)")
    args = parser.parse_args(argv)
    device = bench_device(args.device, args.threads)
    if device is None:
        return 2
    repeats = 2 if args.quick else args.repeats
    print(f"BasicVSR reconstruction, forward + backward: chunks of <= {basicvsr_module.RECON_CHUNK_ELEMENTS:,} "
          f"elements per HR tensor against all frames at once; device {device}, {args.precision}, "
          f"median of {repeats} interleaved repeats" + (" (--quick: tiny cases, not the plans' shapes)" if args.quick else ""))
    print(f"default on this device: chunks when training: "
          f"{basicvsr_module.reconstructs_in_chunks(device, building_graph=True)}, "
          f"chunks for inference: {basicvsr_module.reconstructs_in_chunks(device, building_graph=False)}")
    print(f"{'plan':6} {'model':13} {'shape':>10} {'frames/call':>12} {'chunked ms':>11} {'at once ms':>11}")
    ratios = []
    for plan, model_name, patch, frames, batch in cases(args.plans, device, args.quick):
        r = measure(model_name, patch, frames, batch, device, args.precision, repeats)
        shape = f"{patch}&{frames}x{batch}"
        print(f"{plan:6} {model_name:13} {shape:>10} {r['per_call']:>5} of {r['n']:<4} "
              f"{r['chunked'] * 1e3:11.2f} {r['at_once'] * 1e3:11.2f}")
        ratios.append((plan, model_name, shape, r))
    print()
    for plan, model_name, shape, r in ratios:
        note = "  (one call either way: the chunk holds every frame)" if r["per_call"] >= r["n"] else ""
        print(f"ratio chunked / at once  {plan} {model_name} {shape}: {r['ratio']:.2f}x{note}")
    print("(> 1: all frames at once is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
