"""DCNv2Pack's forward with and without a host sync per call, side by side.

BasicSR's ``DCNv2Pack`` reads its mean ``|offset|`` with ``.item()`` at every call to warn of a
diverging alignment: on a GPU that waits for the device each time, so the host cannot queue the
next kernels ahead.  mgvsr's pack keeps the value on the device and reads it once every
``offset_check_every`` calls (:class:`mgvsr.models.dcn.OffsetCheck`, default 100).  This times
``--calls`` consecutive forwards (then one synchronisation) of three copies of one pack, in
rounds interleaved so that the machine's noise hits all alike: a read every call (BasicSR's
behaviour, ``offset_check_every=1``), the default, and no diagnostic at all (``None``), at
EDVR-M's alignment shapes (64 channels, 8 offset groups; L1 at LR 64x64, L3 at 16x16; 5 frames of
a clip).  It prints the medians and the ratios (> 1: the first is slower).

On a CPU there is no device to wait for: expect ~1.0x for the sync there; it costs only on a GPU.

    python bench/bench_dcn_sync.py                        # on CUDA when present
    python bench/bench_dcn_sync.py --device cpu --calls 20 --rounds 5
    python bench/bench_dcn_sync.py --quick                # a tiny case (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from mgvsr.device import DTYPES, synchronize
from mgvsr.models.dcn import OFFSET_CHECK_EVERY, DCNv2Pack, torchvision_available

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timed_step import bench_device  # noqa: E402


def measure(channels: int, groups: int, size: int, n: int, device: torch.device, precision: str,
            calls: int, rounds: int) -> dict[str, float]:
    """Median seconds of ``calls`` forwards (no grad) for each way of checking offsets."""
    torch.manual_seed(0)
    base = DCNv2Pack(channels, channels, 3, padding=1, deformable_groups=groups)
    with torch.no_grad():  # offsets of a few pixels, as a trained alignment has
        base.conv_offset.weight.normal_(0, 0.01)
        base.conv_offset.bias.normal_(0, 1.0)
    packs = {}
    for name, every in (("every call", 1), (f"every {OFFSET_CHECK_EVERY}", OFFSET_CHECK_EVERY), ("none", None)):
        packs[name] = copy.deepcopy(base).to(device)
        packs[name].offset_check.every = every
    x = torch.randn(n, channels, size, size, device=device)
    feat = torch.randn(n, channels, size, size, device=device)
    autocast = torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32")

    def run(pack) -> float:
        synchronize(device)
        t0 = time.perf_counter()
        with torch.no_grad(), autocast:
            for _ in range(calls):
                pack(x, feat)
        synchronize(device)
        return time.perf_counter() - t0

    for pack in packs.values():
        run(pack)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in packs}
    for _ in range(rounds):
        for k, pack in packs.items():
            times[k].append(run(pack))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32",
                        help="fp32, or autocast in bf16 / fp16 (default fp32)")
    parser.add_argument("--calls", type=int, default=50, help="consecutive forwards timed together")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is printed)")
    parser.add_argument("--threads", type=int, help="torch threads on a CPU (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="a tiny pack (16 channels, 2 groups, 16x16), "
                        "10 calls, 3 rounds (a smoke test)")
    args = parser.parse_args(argv)
    device = bench_device(args.device, args.threads)
    if device is None:
        return 2
    if args.quick:
        shapes, calls, rounds = [("tiny", 16, 2, 16, 2)], 10, 3
    else:
        shapes, calls, rounds = [("EDVR-M L1", 64, 8, 64, 5), ("EDVR-M L3", 64, 8, 16, 5)], args.calls, args.rounds
    backend = "torchvision" if torchvision_available() else "mgvsr's pure-PyTorch kernel"
    print(f"DCNv2Pack forward: {calls} calls timed together, median of {rounds} interleaved rounds; "
          f"device {device}, {args.precision}, deformable convolution by {backend}")
    if device.type == "cpu":
        print("on a CPU there is no device to wait for: the sync's ratio is ~1.0x here; the host sync costs "
              "only on a GPU (--device cuda)")
    print(f"{'shape':10} {'(n, c, h, w), groups':24} " + " ".join(f"{'offsets read ' + k:>24}" for k in
                                                                  ("every call", f"every {OFFSET_CHECK_EVERY}", "never")))
    results = []
    for label, channels, groups, size, n in shapes:
        med = measure(channels, groups, size, n, device, args.precision, calls, rounds)
        per_call = [v / calls * 1e3 for v in med.values()]
        print(f"{label:10} {str((n, channels, size, size)) + f', {groups}':24} "
              + " ".join(f"{v:21.3f} ms" for v in per_call))
        results.append((label, med))
    print()
    for label, med in results:
        every, default, none = med.values()
        print(f"ratio sync every call / every {OFFSET_CHECK_EVERY} calls  {label}: {every / default:.2f}x")
        print(f"ratio every {OFFSET_CHECK_EVERY} calls / no diagnostic  {label}: {default / none:.2f}x")
    print("(> 1: the first is slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
