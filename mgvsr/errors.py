"""Errors that name the file or value at fault and say what was expected."""


class MgvsrError(Exception):
    """Base class of mgvsr's own errors; the CLI prints these without a traceback."""


class DataError(MgvsrError, ValueError):
    """A dataset, clip or frame is missing, unreadable or not what it claims to be."""


class PlanError(MgvsrError, ValueError):
    """A training plan that cannot run (impossible sizes, or sizes its data or model refuse)."""


class CheckpointError(MgvsrError, ValueError):
    """A checkpoint that does not fit the model it is loaded into."""
