"""The process group of a multi-process run (``torchrun``), and the decisions rank 0 makes for all.

Launched by ``torchrun`` (``WORLD_SIZE > 1``), each process joins one group (NCCL on CUDA, gloo on
CPU), takes ``batch / world_size`` samples of every step, and DistributedDataParallel averages
the gradients: the same update as one process with the whole batch.

- :func:`distributed`: the group for the length of a command, left together and torn down in order;
- :func:`rank_world`: ``(rank, world_size)``, ``(0, 1)`` without a group;
- :func:`decided_by_rank0`: a decision (train, resume, reuse ...) computed once by rank 0 and handed
  to every process, so that all of them act alike whatever their file systems show.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist

from mgvsr.errors import Preempted

# How long a process waits for the others: rank 0 evaluates alone at the end of a run (REDS4 in minutes,
# Vimeo-90K-T's 7,824 clips far longer) while the others wait for it (the next run of `mgvsr reproduce`).
DIST_TIMEOUT = datetime.timedelta(hours=3)


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str = "auto") -> tuple[int, int, str]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE > 1``); NCCL on CUDA, gloo on CPU.

    Returns ``(rank, world_size, device)``; each CUDA process uses GPU ``LOCAL_RANK``.
    A single process (no ``WORLD_SIZE``) returns ``(0, 1, device)`` untouched.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=DIST_TIMEOUT)
    return dist.get_rank(), dist.get_world_size(), device


@contextlib.contextmanager
def distributed(device: str = "auto"):
    """:func:`init_distributed` for the length of a command: yields ``(rank, world_size, device)``.

    Where the command ends as every rank does (finished, or :class:`Preempted` after the step all
    ranks agreed on), the ranks leave together (a barrier) and the process group is torn down in
    order: left to interpreter exit, gloo's threads could still be running, and a rank whose peer
    had already exited aborted ("terminate called without an active exception") or was killed by
    torchrun mid-exit, turning a clean stop into a failure.  An error leaves the group as it is."""
    rank, world, device = init_distributed(device)
    try:
        yield rank, world, device
    except Preempted:
        leave_together(world)
        raise
    leave_together(world)


def leave_together(world: int) -> None:
    """A barrier, then the process group destroyed (nothing to do for one process)."""
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def decided_by_rank0(decide):
    """``decide()`` computed once, by rank 0, and handed to every process of a distributed run (so that
    all of them train, resume or skip alike whatever their file systems show); an error raised there
    is raised everywhere.  Without a process group: ``decide()``."""
    rank, world = rank_world()
    if world == 1:
        return decide()
    box: list = [None]
    if rank == 0:
        try:
            box[0] = ("ok", decide())
        except Exception as exc:  # handed to the other ranks, then raised here too
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def barrier(world: int) -> None:
    """Wait for every process (nothing to wait for alone)."""
    if world > 1:
        dist.barrier()


def max_over_ranks(value: float, world: int, device: torch.device | str = "cpu") -> float:
    """The largest ``value`` of the processes (itself alone).  ``device``: where the collective's tensor lives,
    the process's own device (NCCL reduces CUDA tensors only: a CPU tensor raises "No backend type associated
    with device type cpu")."""
    if world <= 1:
        return value
    box = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return float(box.item())


def mean_over_ranks(value: torch.Tensor, world: int) -> torch.Tensor:
    """``value`` averaged over the processes (itself alone)."""
    if world > 1:
        dist.all_reduce(value)
        value = value / world
    return value
