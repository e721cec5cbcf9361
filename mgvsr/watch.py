"""Watch a run while it trains: a TensorBoard log beside ``log.jsonl`` (``mgvsr train --tensorboard``).

:class:`Board` writes into ``<run>/tensorboard/`` (``tensorboard --logdir runs/`` shows every
run under ``runs/``).  The scalars, each against the iteration (optimizer step):

===========================  ==========================================================
``train/loss``               the step's Charbonnier loss (mean over all processes)
``train/lr``                 the step's learning rate (Eq. 1 with its warmup)
``plan/stage``               the stage (1, 2, ...), ``plan/patch`` its LR patch side,
                             ``plan/frames`` its frames per clip, ``plan/batch`` its minibatch
``time/compute_s``           the step's compute seconds (forward, backward, update)
``time/data_s``              the step's seconds waiting for data
``time/wall_clock_s``        training wall-clock so far (compute + data, as the run log's
                             ``train_seconds``; evaluations and checkpoints excluded)
``time/device_s``            device-seconds so far: that wall-clock times the processes
                             (GPU-seconds on a GPU cluster)
``eval/psnr``, ``eval/ssim`` scores on the held-out clips at each evaluation
===========================  ==========================================================

The ``tensorboard`` package is optional (``pip install -e ".[tensorboard]"``) and imported only
when a board is opened.  On resume the board is opened with ``purge_step`` at the checkpoint's
iteration: TensorBoard drops what an interrupted attempt logged after it.
"""

from __future__ import annotations

from pathlib import Path

from mgvsr.errors import MgvsrError

TAGS = ("train/loss", "train/lr", "plan/stage", "plan/patch", "plan/frames", "plan/batch", "time/compute_s",
        "time/data_s", "time/wall_clock_s", "time/device_s", "eval/psnr", "eval/ssim")


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package
    except ImportError as exc:  # torch raises ImportError naming tensorboard when it is absent
        raise MgvsrError("--tensorboard needs the tensorboard package: pip install -e \".[tensorboard]\" "
                         f"(or pip install tensorboard); {exc}") from None
    return SummaryWriter


class Board:
    """TensorBoard scalars of one run, written by the main process (see the module docstring)."""

    def __init__(self, folder: str | Path, purge_step: int | None = None, world: int = 1) -> None:
        self.folder = Path(folder)
        self.world = world
        self.writer = _summary_writer()(log_dir=str(self.folder), purge_step=purge_step or None)

    def step(self, it: int, *, loss: float, lr: float, stage: int, patch: int, frames: int, batch: int,
             compute: float, data: float, train_seconds: float) -> None:
        """The scalars of optimizer step ``it`` (``stage`` counted from 0, shown from 1)."""
        add = self.writer.add_scalar
        add("train/loss", loss, it)
        add("train/lr", lr, it)
        add("plan/stage", stage + 1, it)
        add("plan/patch", patch, it)
        add("plan/frames", frames, it)
        add("plan/batch", batch, it)
        add("time/compute_s", compute, it)
        add("time/data_s", data, it)
        add("time/wall_clock_s", train_seconds, it)
        add("time/device_s", train_seconds * self.world, it)

    def evaluation(self, it: int, psnr: float, ssim: float) -> None:
        self.writer.add_scalar("eval/psnr", psnr, it)
        self.writer.add_scalar("eval/ssim", ssim, it)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
