"""What a trusted checkpoint costs: ``write_checkpoint`` (checksum, serialise in memory, write, fsync,
rotate) and ``read_verified`` (load, verify) against a plain ``torch.save`` / ``torch.load``.

The state is the trainer's for a model (parameters and Adam moments after one
:class:`mgvsr.step.TrainStep` on a tiny batch).  Writes and
reads are interleaved (plain, trusted, plain, trusted, ...) and the medians printed with their
ratio.  A run writes a checkpoint every ``--checkpoint-every`` steps (1000 by default) and at
stage ends, so even seconds per write are a small share of a run.

    python bench/bench_checkpoint.py                 # BasicVSR (6.3M parameters)
    python bench/bench_checkpoint.py --model basicvsr_cpu --repeats 9
    python bench/bench_checkpoint.py --quick     # basicvsr_cpu, 1 repeat (a smoke test)

Timings on a shared 2-core machine are noisy; read the ratio, and rerun.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from mgvsr import checkpointing
from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.step import TrainStep


def trainer_state(model_name: str) -> dict:
    """A checkpoint's state as the trainer writes it, after one training step of ``model_name``."""
    step = TrainStep(build_model(model_name), TrainConfig(), torch.device("cpu"))
    step(iter([(torch.rand(1, 5, 3, 16, 16), torch.rand(1, 5, 3, 64, 64))]), lr=1e-4, it=0, samples=1)
    return {"version": 1, "params": step.model.state_dict(), **step.state_dict(), "iteration": 1,
            "evals": [], "plan": {}, "config": {}, "torch_rng": torch.get_rng_state()}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="basicvsr")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="basicvsr_cpu, 1 repeat (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.repeats = "basicvsr_cpu", 1
    state = trainer_state(args.model)
    times = {"torch.save": [], "write_checkpoint": [], "torch.load": [], "read_verified": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeats):
            times["torch.save"].append(timed(lambda: torch.save(state, folder / "plain.pth")))
            times["write_checkpoint"].append(timed(lambda: checkpointing.write_checkpoint(state, folder)))
            times["torch.load"].append(timed(lambda: torch.load(folder / "plain.pth", weights_only=False)))
            times["read_verified"].append(timed(lambda: checkpointing.read_verified(folder / "last.pth")))
        size = (folder / "last.pth").stat().st_size
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.model}: checkpoint of {size / 1e6:.1f} MB, medians of {args.repeats}")
    for k, v in median.items():
        print(f"  {k:17s} {v:.3f} s")
    print(f"  write: {median['write_checkpoint'] / median['torch.save']:.1f}x a plain torch.save; "
          f"read: {median['read_verified'] / median['torch.load']:.1f}x a plain torch.load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
