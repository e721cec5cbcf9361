"""Preemption: a stop signal ends training at a step boundary, with a checkpoint, in every process.

A cluster takes a job back with a signal and, a grace period later, ``SIGKILL``: SLURM sends
``SIGTERM`` on preemption and ``scancel``, and (``#SBATCH --signal=...``) ``SIGUSR1`` a chosen
time before the time limit; Kubernetes and most batch systems send ``SIGTERM``.  While
:class:`StopSignals` is active the handler of :data:`SIGNALS` only records which one came; the
training loop asks :meth:`StopSignals.agreed` after every optimizer step, and, when a signal
came, writes its checkpoint, logs a ``preempted`` record and raises
:class:`~mgvsr.errors.Preempted` (``mgvsr`` exits with :data:`~mgvsr.errors.EXIT_PREEMPTED`).

Under ``torchrun`` the signal may reach some processes and not others (or reach them during
different steps): :meth:`StopSignals.agreed` takes the maximum of every process's flag
(an ``all_reduce`` of one number per step), so all stop after the same step, and rank 0 writes
the checkpoint.  DataLoader workers ignore the signals (:func:`ignore_in_worker`): the main
process finishes the step with them, then shuts them down.
"""

from __future__ import annotations

import signal
import threading

import torch
import torch.distributed as dist

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s is not None)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15 (the number as text when it has no name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class StopSignals:
    """A context in which :data:`SIGNALS` ask the training loop to stop after the current step.

    ``received`` is the number of the last signal that came (0: none).  Outside the main thread
    (where Python cannot install handlers) the context does nothing and signals act as usual.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.received = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        self.received = signum

    def install(self) -> None:
        """Catch :data:`SIGNALS` from now on (in the main thread; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Give the signals back the handlers they had before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def agreed(self, world: int = 1) -> int:
        """The signal every process stops on (0: go on).  With ``world > 1`` a collective: every
        rank must call it after the same step."""
        if world <= 1:
            return self.received
        flag = torch.tensor([self.received], dtype=torch.int64, device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())


def ignore_in_worker(worker_id: int) -> None:
    """A DataLoader ``worker_init_fn``: workers ignore :data:`SIGNALS` (a cluster signals every
    process of a job; the main process decides when to stop and shuts its workers down)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
