"""The trainer's checkpoints on disk: written atomically, rotated, checksummed, verified on resume.

A run folder keeps two checkpoints (:data:`mgvsr.runs.CHECKPOINTS`): ``last.pth``, the newest,
and ``previous.pth``, the one before it.  A write (:func:`write_checkpoint`):

1. adds ``"checksum"``, a SHA-256 of the state's content (every tensor's bytes, dtype and shape,
   every other value's ``repr``, walked in a fixed order: :func:`content_checksum`);
2. saves it to ``last.pth.tmp`` and flushes it to the disk;
3. renames ``last.pth`` to ``previous.pth``, then ``last.pth.tmp`` to ``last.pth``.

A write that fails (a full disk, a file-size limit) removes its temporary file and raises
:class:`CheckpointWriteError`: the checkpoints already there are untouched.  A crash between
the two renames leaves ``previous.pth``.

On resume, :func:`newest_intact` reads ``last.pth`` and, when that is missing, unreadable
(truncated in a copy, half-written by a dying node) or does not match its checksum, falls
back to ``previous.pth``; each checkpoint passed over is named with its fault.  The files a
state is loaded into are checked too (:func:`check_model`): a checkpoint of another model is
refused with the names and shapes that differ, not a raw ``load_state_dict`` traceback.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from mgvsr import runs
from mgvsr.errors import CheckpointError
from mgvsr.models.checkpoints import load_state_dict_checked

TMP_SUFFIX = ".tmp"
DAMAGED_SUFFIX = ".damaged"


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, quota, file-size limit); nothing was replaced."""


# ---- checksums ------------------------------------------------------------------------------------


def _feed(h: "hashlib._Hash", obj: object, path: str) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"{path}:{t.dtype}:{tuple(obj.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"{path}:dict{len(obj)}\n".encode())
        for key in sorted(obj, key=repr):
            _feed(h, obj[key], f"{path}/{key!r}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{path}:{type(obj).__name__}{len(obj)}\n".encode())
        for k, value in enumerate(obj):
            _feed(h, value, f"{path}[{k}]")
    else:
        h.update(f"{path}={obj!r}\n".encode())


def content_checksum(state: dict) -> str:
    """SHA-256 (hex) of a checkpoint's content without its ``"checksum"`` entry: every tensor's
    dtype, shape and bytes and every other value's ``repr``, in key order.  The same state gives
    the same checksum whatever the device its tensors are on."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "checksum"}, "")
    return h.hexdigest()


# ---- writing ---------------------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(obj: object, path: Path) -> None:
    """Serialise ``obj`` in memory, then write its bytes to ``path`` and flush them to the disk
    (in memory first so that a failing write surfaces as the operating system's error, which
    ``torch.save`` onto a file reports as an internal position mismatch)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        with open(path, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise CheckpointWriteError(f"cannot write {path}: {exc.strerror or exc} (errno {exc.errno})") from exc


def save_atomic(obj: object, path: str | Path) -> None:
    """``torch.save`` into ``path + ".tmp"``, flushed to the disk, then renamed onto ``path``: a crash
    never leaves half a file under ``path``.  A failed write (disk full ...) removes the temporary
    file and raises :class:`CheckpointWriteError`; ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    _write_file(obj, tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_checkpoint(state: dict, folder: str | Path, saved_before: int | None = None) -> Path:
    """Write ``state`` (with its checksum) as ``folder/last.pth``; the ``last.pth`` there before
    becomes ``previous.pth``.  ``saved_before``: the iteration of that older checkpoint, named in
    the error when the write fails (the run then stops: its newest checkpoint is intact)."""
    folder = Path(folder)
    last, previous = folder / runs.CHECKPOINT, folder / runs.PREVIOUS
    state = dict(state)
    state["checksum"] = content_checksum(state)
    tmp = last.with_name(last.name + TMP_SUFFIX)
    try:
        _write_file(state, tmp)
    except CheckpointWriteError as exc:
        kept = (f"{last} (iteration {saved_before}) is intact" if saved_before is not None and last.is_file()
                else "nothing was replaced")
        raise CheckpointWriteError(f"{exc}: the checkpoint of iteration {state.get('iteration')} was not "
                                   f"written; {kept}. Free some space, then resume (mgvsr train --resume)") from exc
    if last.is_file():
        os.replace(last, previous)
    os.replace(tmp, last)
    _fsync_dir(folder)
    return last


# ---- reading ---------------------------------------------------------------------------------------


def read_verified(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`write_checkpoint` and verify its checksum.

    Raises :class:`CheckpointError` (one line naming the file) when it is missing, unreadable,
    not a trainer checkpoint, or its content does not match its checksum.  A checkpoint without a
    ``"checksum"`` is read unverified.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # zip, pickle, EOF and torch errors alike: a truncated or damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is damaged: it cannot be read ({reason}); "
                              f"{path.stat().st_size:,} bytes") from None
    if not isinstance(state, dict) or "iteration" not in state or "optimizer" not in state:
        raise CheckpointError(f"{path} is not a checkpoint written by mgvsr's trainer "
                              "(no iteration and optimizer state in it)")
    expected = state.pop("checksum", None)
    if expected is not None and content_checksum(state) != expected:
        raise CheckpointError(f"{path} is damaged: its content does not match its checksum")
    return state


@dataclass
class Found:
    """The newest intact checkpoint of a run folder: its ``path``, its ``state``, and the newer
    ones passed over as damaged (``damaged``: their paths, ``problems``: one line each)."""

    path: Path
    state: dict
    damaged: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def newest_intact(folder: str | Path) -> Found:
    """The newest checkpoint of ``folder`` that reads and matches its checksum (``last.pth``, then
    ``previous.pth``).  Raises :class:`CheckpointError` naming each file and its fault when none does."""
    folder = Path(folder)
    damaged, problems = [], []
    for name in runs.CHECKPOINTS:
        path = folder / name
        if not path.is_file():
            continue
        try:
            return Found(path, read_verified(path), damaged, problems)
        except CheckpointError as exc:
            damaged.append(path)
            problems.append(str(exc))
    if not problems:
        raise CheckpointError(f"cannot resume: no checkpoint in {folder} ({' or '.join(runs.CHECKPOINTS)})")
    raise CheckpointError("cannot resume: no intact checkpoint in " + str(folder) + ": " + "; ".join(problems)
                          + ". Train again in another folder, or remove this run")


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint to ``<name>.damaged`` (``.damaged.1`` ... if taken), so that the
    next write does not rotate it over the intact one; returns the new path."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    k = 1
    while target.exists():
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{k}")
        k += 1
    os.replace(path, target)
    return target


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes and bytes, in order): two runs start
    from the same weights exactly when their fingerprints are equal."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_model(model: nn.Module, state: dict, path: str | Path, model_name: str | None = None) -> None:
    """Load ``state["params"]`` into ``model``, or raise :class:`CheckpointError` naming ``path``,
    the model it was written for (when it says) and the parameter names and shapes that differ."""
    written_for = (state.get("config") or {}).get("extra", {}).get("model")
    source = str(path)
    if written_for and model_name and written_for != model_name:
        source = f"{path} (written for the model {written_for}, this run trains {model_name})"
    load_state_dict_checked(model, state["params"], strict=True, source=source)
