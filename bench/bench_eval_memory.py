"""Peak memory of whole-clip BasicVSR inference vs segmented inference, on real 320x180 frames.

Each run is a fresh process (so its peak resident memory, ``ru_maxrss``, is its own): the
same BasicVSR-shaped model (64 features as BasicVSR and BasicVSR-M; ``--blocks`` residual
blocks, 1 by default: the depth changes the time, not the memory, since inference keeps one
block's activations at a time) super-resolves the same REDS-sized clip (the 21 frames of
``../shared/data/reds_demo_lr`` played forward and back to the asked length) with
``super_resolve_clip(segment=None)`` and with ``segment=S``.  The outputs' SHA-256 are
compared: segmented inference must give the same bytes.

    python bench/bench_eval_memory.py                       # 30 and 60 frames, segment 10
    python bench/bench_eval_memory.py --frames 100 --blocks 30
    python bench/bench_eval_memory.py --quick             # 4 frames cropped to 64x64, segment 2 (a smoke test)

On a CPU the numbers are host memory; on a GPU the same split bounds device memory.
Timings on a shared 2-core machine are noisy; the memory is not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

import numpy as np


def clip(frames: int, crop: int | None = None) -> np.ndarray:
    """``(frames, 180, 320, 3)`` uint8 real LR frames (synthetic if the shared data is absent); ``crop``: their
    top-left ``crop x crop`` pixels only."""
    from mgvsr.data.io import list_frames, read_frame
    from mgvsr.paths import shared_data_dir

    shared = shared_data_dir()
    if shared is not None and (shared / "reds_demo_lr").is_dir():
        real = np.stack([read_frame(p) for p in list_frames(shared / "reds_demo_lr")])
        loop = np.concatenate([real, real[::-1]])
        frames_ = np.stack([loop[i % len(loop)] for i in range(frames)])
    else:
        frames_ = np.random.default_rng(0).integers(0, 256, size=(frames, 180, 320, 3), dtype=np.uint8)
    return np.ascontiguousarray(frames_[:, :crop, :crop])


def child(frames: int, segment: int, blocks: int, crop: int | None = None) -> None:
    import torch

    from mgvsr.evaluate import super_resolve_clip
    from mgvsr.models import build_model

    torch.manual_seed(0)
    model = build_model("basicvsr", num_feat=64, num_block=blocks).eval()
    lq = clip(frames, crop)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: KB)
    start = time.perf_counter()
    sr = super_resolve_clip(model, lq, segment=segment or None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": frames, "segment": segment, "before_mb": before, "peak_mb": peak,
                      "seconds": seconds, "output_mb": sr.nbytes / 2**20,
                      "sha256": hashlib.sha256(sr.tobytes()).hexdigest()}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--segment", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--child", type=int, nargs=2, metavar=("FRAMES", "SEGMENT"), help=argparse.SUPPRESS)
    parser.add_argument("--crop", type=int, help="crop the LR frames to CROPxCROP (not REDS's memory then)")
    parser.add_argument("--quick", action="store_true", help="--frames 4 --segment 2 --crop 64 (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.segment, args.crop = [4], 2, 64
    if args.child:
        child(*args.child, args.blocks, args.crop)
        return 0
    size = f"{args.crop}x{args.crop} LR crops" if args.crop else "320x180 LR -> 1280x720"
    print(f"BasicVSR, 64 features, {args.blocks} block(s) per branch, {size}; peak resident memory "
          "of a fresh process (model, input and output included)")
    print(f"{'frames':>6} {'segment':>8} {'peak MB':>9} {'of which output':>16} {'seconds':>8}  same output")
    for frames in args.frames:
        runs = []
        for segment in (0, args.segment):
            crop = ["--crop", str(args.crop)] if args.crop else []
            out = subprocess.run([sys.executable, __file__, "--child", str(frames), str(segment),
                                  "--blocks", str(args.blocks), *crop], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        for r in runs:
            same = "-" if r is runs[0] else ("yes" if r["sha256"] == runs[0]["sha256"] else "NO")
            print(f"{r['frames']:>6} {r['segment'] or 'whole':>8} {r['peak_mb']:>9.0f} {r['output_mb']:>16.0f} "
                  f"{r['seconds']:>8.1f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
