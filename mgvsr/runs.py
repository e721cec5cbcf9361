"""A run folder, and the one rule that says whether the run in it is finished and the same run.

A run folder (``mgvsr train --out DIR``, each run of ``mgvsr demo`` and ``mgvsr reproduce``,
each training of a notebook) holds:

- ``spec.json``: what is trained there (:func:`run_spec`): the transformed
  :class:`~mgvsr.presets.Preset` (model, data, plan, warm starts) and the settings that change
  the numbers (device type, seed, micro-batches, precision, augmentation), written before the
  first step;
- ``log.jsonl``: a JSON line per event: ``start`` (the plan and the configuration), ``step``,
  ``eval``, ``stage_end``, ``end`` (the summary);
- ``last.pth`` (the state to resume from), ``previous.pth`` (the one before it, for when
  ``last.pth`` is damaged: :mod:`mgvsr.checkpointing`) and, once finished, ``final.pth`` (the
  weights);
- ``tensorboard/`` when the run was watched with TensorBoard (``mgvsr train --tensorboard``).

The rule, :func:`check_folder`, applied by everything that trains:

- nothing there: a new run;
- a ``spec.json`` equal to the one asked for: ``"finished"`` (its log ends with an ``end``
  record and ``final.pth`` exists: read it, train nothing) or ``"unfinished"`` (resume from
  ``last.pth`` if there is one);
- a different ``spec.json``: :class:`RunFolderError` naming the folder and what differs;
- a log or checkpoint without ``spec.json``: :class:`RunFolderError` (what it trained is
  unknown).

Nothing is ever silently overwritten.  Two specs are the same run when they differ at most
in the preset's name (:func:`same_training`): Table 4's "w lr scaling" is Table 1's row (2),
and :func:`find_finished` finds such a twin under a folder of runs.  Torch-free.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mgvsr.errors import MgvsrError
from mgvsr.presets import Preset

SPEC_FILE = "spec.json"
LOG_FILE = "log.jsonl"
CHECKPOINT = "last.pth"
PREVIOUS = "previous.pth"
CHECKPOINTS = (CHECKPOINT, PREVIOUS)  # newest first
FINAL = "final.pth"
TENSORBOARD = "tensorboard"
# keys of a spec that name a run without changing what it trains (the SpyNet file's path: its bytes,
# under "spynet", are what counts)
LABELS = ("preset", "spynet_file")


class RunFolderError(MgvsrError):
    """A run folder that holds another run than the one asked for, or one that cannot be read."""


def run_spec(preset: Preset, *, device: str, seed: int = 0, root: str | Path | None = None,
             micro_batch: int | None = None, amp: bool = False, augment: bool = True,
             reverse: bool = False, spynet: str | None = None, spynet_file: str | Path | None = None,
             loss_eps: float = 1e-12) -> dict:
    """What training ``preset`` means, as JSON-ready data.

    ``device`` is the device *type* the run trains on (``"cpu"``, ``"cuda"``); ``root`` the dataset
    root (recorded only for datasets that have one).  Names, descriptions, notes and the paper's
    numbers are left out of the plan; the preset's name is kept as a label (:data:`LABELS`).
    ``spynet``: what SpyNet starts from where the model's recipe wants pretrained weights
    (``"sha256:<hex>"`` of the file, or ``"none"``: opted out; :class:`mgvsr.models.FlowInit`), with
    ``spynet_file`` the file's path as a label; both are left out when None (models that learn
    their own flow), so the specs of those runs are as before.
    ``loss_eps`` (Charbonnier's eps) is recorded only where it is not BasicSR's 1e-12, so that the
    specs of runs written before it was a setting still match.
    """
    plan = preset.plan.to_dict()
    plan.pop("name")
    plan.pop("description")
    spec = {
        "preset": preset.name,
        "model": preset.model,
        "dataset": preset.dataset,
        "root": str(Path(root).resolve()) if (root is not None and preset.dataset != "sample") else None,
        "test_dataset": preset.test_dataset,
        "plan": plan,
        "flow_frozen_iters": preset.flow_frozen_iters,
        "flow_lr_mult": preset.flow_lr_mult,
        "fusion_only_iters": preset.fusion_only_iters,
        "micro_batch": micro_batch,
        "device": device,
        "seed": seed,
        "amp": amp,
        "augment": augment,
        "reverse": reverse,
    }
    if spynet is not None:
        spec["spynet"] = spynet
    if spynet_file is not None:
        spec["spynet_file"] = str(spynet_file)
    if loss_eps != 1e-12:
        spec["loss_eps"] = loss_eps
    return spec


def _training(spec: dict, ignore: tuple[str, ...] = ()) -> dict:
    return {k: v for k, v in spec.items() if k not in LABELS and k not in ignore}


def same_training(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> bool:
    """Whether two specs train the same thing (they may differ in the preset's name, and in the keys
    ``ignore`` names: ``("spynet",)`` finds a run whatever SpyNet it started from, to report it)."""
    return _training(a, ignore) == _training(b, ignore)


def spec_difference(have: dict, want: dict, ignore: tuple[str, ...] = ()) -> str:
    """``"differs in plan, seed"``: the keys in which two specs' trainings differ."""
    a, b = _training(have, ignore), _training(want, ignore)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "differs in " + ", ".join(keys)


def run_folder(out: str | Path, preset_name: str) -> Path:
    """``out/<preset name>`` (the name's ``/`` become folders: ``out/table1/basicvsr_m/ours``)."""
    return Path(out).joinpath(*preset_name.split("/"))


# ---- reading a run ------------------------------------------------------------------------------


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``log.jsonl`` (a path to the file, or the run folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / LOG_FILE
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path} is not a run log (line {exc.lineno}: {exc.msg})") from None


@dataclass
class RunRecord:
    """What a run's log tells: the plan as trained (a dict), the configuration, the evaluation
    records, and the ``end`` record (the summary), None while unfinished."""

    plan: dict
    config: dict
    evals: list[dict]
    end: dict | None


def read_run(folder: str | Path) -> RunRecord:
    """The :class:`RunRecord` of the run in ``folder``."""
    records = read_log(folder)
    if not records or records[0].get("event") != "start":
        raise RunFolderError(f"{Path(folder) / LOG_FILE} does not start with a 'start' record")
    return RunRecord(plan=records[0]["plan"], config=records[0].get("config", {}),
                     evals=[r for r in records if r["event"] == "eval"],
                     end=records[-1] if records[-1]["event"] == "end" else None)


def finished_summary(folder: str | Path) -> dict | None:
    """The ``end`` record of a finished run in ``folder`` (``final.pth`` and a log whose last record
    is ``end``), else None."""
    folder = Path(folder)
    log = folder / LOG_FILE
    if not (folder / FINAL).is_file() or not log.is_file():
        return None
    records = read_log(log)
    if not records or records[-1].get("event") != "end":
        return None
    return records[-1]


def read_spec(folder: str | Path) -> dict | None:
    """The ``spec.json`` of ``folder``, or None where there is none."""
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path} is not valid JSON ({exc}); remove the folder to retrain") from None


# ---- the rule -------------------------------------------------------------------------------------


def check_folder(folder: str | Path, spec: dict, ignore: tuple[str, ...] = ()) -> str:
    """``"new"``, ``"unfinished"`` or ``"finished"`` for a run of ``spec`` in ``folder``; a
    :class:`RunFolderError` when the folder holds another run (see the module docstring).
    ``ignore``: spec keys not compared (:func:`same_training`)."""
    folder = Path(folder)
    have = read_spec(folder)
    if have is None:
        traces = [name for name in (LOG_FILE, *CHECKPOINTS, FINAL) if (folder / name).is_file()]
        if traces:
            raise RunFolderError(f"{folder} holds a run ({', '.join(traces)}) without {SPEC_FILE}: what it trained "
                                 "is unknown; use another folder or remove this one")
        return "new"
    if not same_training(have, spec, ignore):
        held, wanted = have.get("preset"), spec.get("preset")
        what = f"another run of {wanted}" if held == wanted else f"a run of {held}, not of {wanted}"
        raise RunFolderError(f"{folder} holds {what} ({spec_difference(have, spec, ignore)}); "
                             "use another folder or remove this one")
    return "finished" if finished_summary(folder) is not None else "unfinished"


def find_finished(spec: dict, search: str | Path, ignore: tuple[str, ...] = ()) -> Path | None:
    """A finished run anywhere under ``search`` trained exactly as ``spec`` says (but for the keys
    ``ignore`` names), or None."""
    for path in sorted(Path(search).rglob(SPEC_FILE)):
        folder = path.parent
        have = read_spec(folder)
        if have is not None and same_training(have, spec, ignore) and finished_summary(folder) is not None:
            return folder
    return None


def relative_name(folder: str | Path, search: str | Path) -> str:
    """``folder`` relative to ``search`` (``table4/lr-scaling``) where it lies inside, else as it is."""
    folder, search = Path(folder), Path(search)
    try:
        return folder.resolve().relative_to(search.resolve()).as_posix()
    except ValueError:
        return str(folder)


def write_spec(folder: str | Path, spec: dict) -> None:
    """Record ``spec`` in ``folder`` (after :func:`check_folder` said the folder may take it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # atomically (a temporary file renamed): under torchrun every process writes it while the others
    # may be reading it (check_folder after an elastic restart)
    tmp = folder / f"{SPEC_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(spec, indent=1) + "\n")
    os.replace(tmp, folder / SPEC_FILE)


def has_checkpoint(folder: str | Path) -> bool:
    """Whether ``folder`` holds a checkpoint to resume from (``last.pth`` or ``previous.pth``)."""
    return any((Path(folder) / name).is_file() for name in CHECKPOINTS)


def remove_run(folder: str | Path) -> None:
    """Delete a run's files from ``folder`` (spec, log, checkpoints, the TensorBoard log): an
    explicit fresh start."""
    folder = Path(folder)
    for name in (SPEC_FILE, LOG_FILE, *CHECKPOINTS, FINAL):
        (folder / name).unlink(missing_ok=True)
    for damaged in folder.glob("*.pth.damaged*"):
        damaged.unlink()
    shutil.rmtree(folder / TENSORBOARD, ignore_errors=True)
