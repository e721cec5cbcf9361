"""Honest time in a distributed run: a process waiting for data stalls the others at the gradients'
all-reduce; the step's data time is the slowest process's wait (reduced, the maximum), and compute
excludes it on every process.  Two processes over gloo on the CPU, the real TrainStep and DDP."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.step import TrainStep

STALL = 1.5  # seconds rank 1 waits for each micro-batch: well above a step's compute on a loaded 2-core machine (0.66 s seen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_batches(rank: int, n: int):
    gen = torch.Generator().manual_seed(rank)
    for _ in range(n):
        if rank == 1:
            time.sleep(STALL)
        yield (torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8, generator=gen),
               torch.randint(0, 256, (1, 3, 3, 128, 128), dtype=torch.uint8, generator=gen))


def worker(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)
        step = TrainStep(model, TrainConfig(), torch.device("cpu"), world=2)
        batches = slow_batches(rank, 2)
        out = [step(batches, lr=1e-3, it=k, samples=1) for k in range(2)]
        results[rank] = [(r.loss, r.compute, r.data) for r in out]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_one_slow_loader_is_counted_as_data_on_every_process():
    results = mp.Manager().dict()
    mp.spawn(worker, args=(free_port(), results), nprocs=2, join=True)
    fast, slow = results[0], results[1]
    for (loss0, compute0, data0), (loss1, compute1, data1) in zip(fast, slow):
        assert loss0 == loss1  # the mean over both processes
        assert data0 == data1 >= STALL  # rank 0 waited at the all-reduce for rank 1's data: data, not compute
        assert compute0 < STALL and compute1 < STALL
