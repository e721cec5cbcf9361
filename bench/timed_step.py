"""The benchmarks' training step: :class:`mgvsr.step.TrainStep`, the trainer's own, on one fixed batch.

- :class:`TimedStep`: a ``TrainStep`` of a model as a :class:`~mgvsr.options.TrainConfig` says
  (``amp``, ``channels_last``, ``micro_batch``, frozen parameters ...) fed the same ``(lq, gt)``
  batch at every call; a call trains one step and returns its seconds;
- :func:`interleaved`: variants' steps timed in turn (a, b, a, b, ...), so the machine's noise
  hits them alike; their medians and ratios are what the benchmarks print;
- :func:`precisions`: fp32 and the low precision the device computes natively, as the trainer
  would choose it with ``--amp`` (:func:`mgvsr.device.resolve_precision`);
- :func:`bench_device`: the device a script's ``--device`` (and ``--threads``) names.

Used by the scripts beside it; it is no script itself.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn

from mgvsr.device import resolve_precision
from mgvsr.options import TrainConfig
from mgvsr.step import StepResult, TrainStep

__all__ = ["TimedStep", "interleaved", "medians", "precisions", "bench_device"]


def bench_device(name: str, threads: int | None = None) -> torch.device | None:
    """The device a benchmark's ``--device`` names (None, with the reason on stderr, for CUDA where torch sees
    none: the script then exits 2), torch's CPU threads set to ``--threads`` where given."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible to torch", file=sys.stderr)
        return None
    if threads:
        torch.set_num_threads(threads)
    return device


class TimedStep:
    """:class:`~mgvsr.step.TrainStep` of ``model`` on ``device`` as ``cfg`` says, at LR ``lr``, on the fixed batch
    ``lq`` ``(b, t, 3, h, w)`` and ``gt`` ``(b, t, 3, 4h, 4w)`` (float in [0, 1] or uint8), split into
    micro-batches of ``cfg.micro_batch`` (gradients accumulated: the same update as the whole batch).

    Calling it trains one step (iteration ``it``, counted from 0) and returns the step's seconds (the
    whole call, the device synchronised); ``result`` is the last :class:`~mgvsr.step.StepResult`.
    ``step.precision`` and ``step.channels_last`` say how it ran.  ``model`` is moved and converted
    in place (pass a copy to compare variants of one model)."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, lq: torch.Tensor, gt: torch.Tensor, *,
                 lr: float = 1e-4, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.step = TrainStep(model, cfg, device)
        self.samples = lq.shape[0]
        micro = cfg.micro_batch or self.samples
        if self.samples % micro:
            raise ValueError(f"a batch of {self.samples} does not split into micro-batches of {micro}")
        lq, gt = lq.to(device), gt.to(device)
        self.batches = [(lq[i:i + micro], gt[i:i + micro]) for i in range(0, self.samples, micro)]
        self.lr = lr
        self.it = 0
        self.result: StepResult | None = None

    @property
    def model(self) -> nn.Module:
        return self.step.model

    def __call__(self) -> float:
        start = time.perf_counter()
        self.result = self.step(iter(self.batches), lr=self.lr, it=self.it, samples=self.samples)
        self.it += 1
        return time.perf_counter() - start  # the step ends with the loss read back: the device has finished


def interleaved(timed: dict[str, Callable[[], float]], steps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Each of ``timed``'s steps ``warmup`` times untimed, then ``steps`` times in turn: the seconds of each."""
    for _ in range(warmup):
        for step in timed.values():
            step()
    times: dict[str, list[float]] = {k: [] for k in timed}
    for _ in range(steps):
        for k, step in timed.items():
            times[k].append(step())
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    """The median of each entry of :func:`interleaved`'s result."""
    return {k: statistics.median(v) for k, v in times.items()}


def precisions(device: torch.device) -> list[str]:
    """``"fp32"`` and the precision ``--amp`` trains in on ``device`` when it differs (bf16 where the device
    computes it natively, fp16 on a CUDA device without; none on a CPU that would only emulate bf16)."""
    low = resolve_precision(device, True)
    return ["fp32"] if low == "fp32" else ["fp32", low]
