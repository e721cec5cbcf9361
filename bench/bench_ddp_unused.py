"""DistributedDataParallel with ``find_unused_parameters=True`` against ``False``, side by side.

With ``True``, DDP walks the autograd graph after every forward to find the parameters that
will get no gradient (and marks them ready); with ``False`` it does not, but then every
parameter that requires a gradient must get one at every step or the step fails.  mgvsr's
trainer wraps with ``True``; it is needed only while some parameters take no part (a frozen
SpyNet is excluded from DDP when frozen before wrapping; SpyNet's coarsest levels take no part
below 32 px: the demo's 16-px stages).  This measures what ``True`` costs on a small BasicVSR:
2 processes (gloo on a CPU; on CUDA, NCCL with one GPU per rank when there are 2 GPUs or more,
else gloo with both ranks on the one GPU), each holding two DDP copies of one model, one per
setting, trained step by step in alternation (forward, Charbonnier loss, backward with its
all-reduce, Adam) so that the machine's noise hits both alike.  It prints each setting's median
step time (the slower rank's) and the ratio True / False (> 1: ``True`` is slower).  The step is
written here rather than :class:`mgvsr.step.TrainStep`, which always wraps with
``find_unused_parameters=True``; its loss is :func:`mgvsr.step.charbonnier`.

    python bench/bench_ddp_unused.py                      # basicvsr_cpu, 32 px, 5 frames, 2 clips a rank
    python bench/bench_ddp_unused.py --device cpu --model basicvsr_m --patch 64 --frames 7 --iters 10
    python bench/bench_ddp_unused.py --quick              # a tiny case (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mgvsr.device import synchronize
from mgvsr.models import build_model
from mgvsr.step import charbonnier

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(args) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(args.model)
    if args.freeze_spynet:
        model.spynet.requires_grad_(False)
    return model


def parameters_without_gradient(args) -> list[str]:
    """The trainable parameters one forward and backward at the bench's shape leaves without a gradient."""
    model = make_model(args)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # as the ranks will (a CPU shared with them: less contention)
    try:
        model(torch.rand(1, args.frames, 3, args.patch, args.patch)).mean().backward()
    finally:
        torch.set_num_threads(threads)
    return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


def backend_and_device(args, rank: int) -> tuple[str, torch.device]:
    if args.device == "cpu":
        return "gloo", torch.device("cpu")
    if torch.cuda.device_count() >= WORLD:
        return "nccl", torch.device("cuda", rank)
    return "gloo", torch.device("cuda", 0)  # NCCL refuses two ranks on one GPU


def worker(rank: int, args, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    backend, device = backend_and_device(args, rank)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=WORLD)
    try:
        base = make_model(args).to(device)
        ids = [device.index] if device.type == "cuda" else None
        ddps = {flag: DistributedDataParallel(copy.deepcopy(base), device_ids=ids, find_unused_parameters=flag)
                for flag in (True, False)}
        opts = {flag: torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-5, betas=(0.9, 0.99))
                for flag, m in ddps.items()}
        gen = torch.Generator().manual_seed(rank)
        lq = torch.rand(args.batch, args.frames, 3, args.patch, args.patch, generator=gen).to(device)
        gt = torch.rand(args.batch, args.frames, 3, 4 * args.patch, 4 * args.patch, generator=gen).to(device)

        def step(flag: bool) -> float:
            synchronize(device)
            t0 = time.perf_counter()
            opts[flag].zero_grad(set_to_none=True)
            out = ddps[flag](lq)
            charbonnier(out, gt).backward()
            opts[flag].step()
            synchronize(device)
            return time.perf_counter() - t0

        for _ in range(2):  # warm-up: DDP's first iterations rebuild its buckets
            for flag in ddps:
                step(flag)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.iters):
            for flag in ddps:
                times[flag].append(step(flag))
        medians = torch.tensor([statistics.median(times[True]), statistics.median(times[False])],
                               dtype=torch.float64, device=device if backend == "nccl" else "cpu")
        dist.all_reduce(medians, op=dist.ReduceOp.MAX)  # the slower rank's: the step waits for it
        if rank == 0:
            t_true, t_false = medians.tolist()
            print(f"{backend} on {device.type}, {WORLD} processes; median of {args.iters} steps each, the slower rank's")
            print(f"  find_unused_parameters=True   {t_true * 1e3:10.2f} ms a step")
            print(f"  find_unused_parameters=False  {t_false * 1e3:10.2f} ms a step")
            print(f"ratio find_unused_parameters True / False: {t_true / t_false:.2f}x  (> 1: True is slower)")
            sys.stdout.flush()
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--model", default="basicvsr_cpu", help="a BasicVSR configuration of mgvsr.models")
    parser.add_argument("--patch", type=int, default=32, help="LR patch (32 or more: every SpyNet level in use)")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2, help="clips per rank")
    parser.add_argument("--iters", type=int, default=10, help="timed steps of each setting, alternating")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank on a CPU (default 1)")
    parser.add_argument("--freeze-spynet", action="store_true",
                        help="freeze SpyNet before wrapping (DDP then leaves it out: False still works)")
    parser.add_argument("--quick", action="store_true", help="1 clip of 2 frames a rank, 2 steps (a smoke test)")
    args = parser.parse_args(argv)
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible to torch", file=sys.stderr)
        return 2
    if args.quick:
        args.batch, args.frames, args.iters = 1, 2, 2
    unused = parameters_without_gradient(args)
    if unused:
        print(f"at {args.patch} px, {len(unused)} trainable parameters get no gradient ({', '.join(unused[:3])}, ...): "
              f"find_unused_parameters=False would fail there; pick a larger --patch or --freeze-spynet", file=sys.stderr)
        return 2
    print(f"DDP find_unused_parameters True vs False: {args.model}, LR {args.patch}x{args.patch}, {args.frames} frames, "
          f"{args.batch} clip(s) a rank, SpyNet {'frozen' if args.freeze_spynet else 'trained'}; forward + backward + "
          f"Adam step, the two settings alternating step by step")
    mp.spawn(worker, args=(args, free_port()), nprocs=WORLD, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
