"""Errors that name the file or value at fault and say what was expected."""


class MgvsrError(Exception):
    """Base class of mgvsr's own errors; the CLI prints these without a traceback."""


class DataError(MgvsrError, ValueError):
    """A dataset, clip or frame is missing, unreadable or not what it claims to be."""


class PlanError(MgvsrError, ValueError):
    """A training plan that cannot run (impossible sizes, or sizes its data or model refuse)."""


class CheckpointError(MgvsrError, ValueError):
    """A checkpoint that does not fit the model it is loaded into."""


# The exit status of a run stopped by a preemption signal (SIGTERM, SIGUSR1) after writing its
# checkpoint: 75 is EX_TEMPFAIL of sysexits.h, "a temporary failure; retry later".
EXIT_PREEMPTED = 75


class Preempted(MgvsrError):
    """Training stopped on a preemption signal after a completed step, its checkpoint written.

    The command line exits with :data:`EXIT_PREEMPTED`; ``mgvsr train --resume`` continues."""

    def __init__(self, message: str, signal: str, iteration: int) -> None:
        super().__init__(message)
        self.signal = signal
        self.iteration = iteration
