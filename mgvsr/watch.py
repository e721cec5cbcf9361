"""Watch a run while it trains: a TensorBoard log beside ``log.jsonl`` (``mgvsr train --tensorboard``).

:class:`TensorBoardLog` writes into ``<run>/tensorboard/`` (``tensorboard --logdir runs/`` shows every
run under ``runs/``).  The scalars, each against the optimizer steps done (a step's scalars at
its index + 1, an evaluation after ``k`` steps at ``k``):

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
when a board is opened.  A run resumed from a checkpoint after ``k`` steps opens its board with
``purge_step=k + 1``: TensorBoard drops what an interrupted attempt logged after the checkpoint
(its evaluation after ``k`` steps is part of the checkpoint and stays); a fresh start purges
from 0.
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


class TensorBoardLog:
    """TensorBoard scalars of one run, written by the main process (see the module docstring)."""

    def __init__(self, folder: str | Path, done: int = 0, world: int = 1) -> None:
        """A board for a run that has ``done`` steps (a resume: what was logged after them is purged)."""
        self.folder = Path(folder)
        self.world = world
        self.writer = _summary_writer()(log_dir=str(self.folder), purge_step=done + 1 if done else 0)

    def step(self, record: dict) -> None:
        """The scalars of a ``step`` record of the run log (``it`` 0-based, shown at ``it + 1``; ``stage``
        shown from 1)."""
        add, done = self.writer.add_scalar, record["it"] + 1
        add("train/loss", record["loss"], done)
        add("train/lr", record["lr"], done)
        add("plan/stage", record["stage"] + 1, done)
        add("plan/patch", record["patch"], done)
        add("plan/frames", record["frames"], done)
        add("plan/batch", record["batch"], done)
        add("time/compute_s", record["compute"], done)
        add("time/data_s", record["data"], done)
        add("time/wall_clock_s", record["train_seconds"], done)
        add("time/device_s", record["train_seconds"] * self.world, done)

    def evaluation(self, done: int, psnr: float, ssim: float) -> None:
        """The scores of the evaluation after ``done`` steps."""
        self.writer.add_scalar("eval/psnr", psnr, done)
        self.writer.add_scalar("eval/ssim", ssim, done)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
