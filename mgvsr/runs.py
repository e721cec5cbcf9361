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
- ``tensorboard/`` when the run was watched with TensorBoard (``mgvsr train --tensorboard``);
- ``.lock``: the folder's lock (:class:`RunLock`), held by the process training there.

The rule of the folder's state, :func:`check_folder`:

- nothing there: a new run;
- a ``spec.json`` equal to the one asked for: ``"finished"`` (its log ends with an ``end``
  record and ``final.pth`` exists: read it, train nothing) or ``"unfinished"`` (resume from
  ``last.pth`` if there is one);
- a different ``spec.json``: :class:`RunFolderError` naming the folder and what differs;
- a log or checkpoint without ``spec.json``: :class:`RunFolderError` (what it trained is
  unknown).

The one run decision, :func:`decide`, used by ``train``, ``reproduce``, ``demo`` and the dry run:
new, resume, finished, reuse (a finished run of the same training elsewhere), busy (another
process holds the folder's lock) or refused.  A decision to train takes the lock (``claim``) and
holds it for the life of the run: one writer per folder; the kernel releases it when the process
ends, however it ends.

Nothing is ever silently overwritten.  Two specs are the same run when they differ at most
in the preset's name (:func:`same_training`): Table 4's "w lr scaling" is Table 1's row (2),
and :func:`find_finished` finds such a twin under a folder of runs.  Torch-free.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from mgvsr.errors import MgvsrError
from mgvsr.options import TrainConfig
from mgvsr.presets import Preset
from mgvsr.provenance import code_identity, describe

SPEC_FILE = "spec.json"
LOG_FILE = "log.jsonl"
CHECKPOINT = "last.pth"
PREVIOUS = "previous.pth"
CHECKPOINTS = (CHECKPOINT, PREVIOUS)  # newest first
FINAL = "final.pth"
TENSORBOARD = "tensorboard"
LOCK_FILE = ".lock"  # the run folder's lock (:class:`RunLock`)
# keys of a spec that name a run without changing what it trains (the SpyNet file's path: its bytes,
# under "spynet", are what counts)
LABELS = ("preset", "spynet_file", "code")  # "code": compared on its own (:func:`other_code`)
# the fields of a Preset that name, place or describe a run without changing what it trains; every
# other field is written into the spec (:func:`run_spec`), which is why the presets are not part of
# the fingerprinted training code (:data:`mgvsr.provenance.TRAINING_CODE`)
PRESET_LABELS = ("name", "table", "row", "paper", "baseline", "notes", "paper_devices")


class RunFolderError(MgvsrError):
    """A run folder that holds another run than the one asked for, or one that cannot be read."""


def run_spec(preset: Preset, cfg: TrainConfig, *, device_type: str, root: str | Path | None = None,
             spynet: str | None = None, spynet_file: str | Path | None = None, world_size: int = 1,
             model_config: dict | None = None) -> dict:
    """What training ``preset`` with ``cfg`` means, as JSON-ready data: the one place a spec is built.

    ``device_type`` is the device *type* the run trains on (``"cpu"``, ``"cuda"``); ``root`` the dataset
    root (recorded only for datasets that have one).  Names, descriptions, notes and the paper's
    numbers are left out of the plan; the preset's name is kept as a label (:data:`LABELS`).
    ``spynet``: what SpyNet starts from where the model's recipe wants pretrained weights
    (``"sha256:<hex>"`` of the file, or ``"none"``: opted out; :class:`mgvsr.models.FlowInit`), with
    ``spynet_file`` the file's path as a label; both are left out when None (models that learn
    their own flow).  ``cfg.loss_eps`` (Charbonnier's eps) is recorded only where it is not
    BasicSR's 1e-12; ``world_size`` (the processes a distributed run trains on) only where it is more
    than one: a run is resumed, and its times read, on the device count it started on.  ``code``: the
    code that trains it (:func:`mgvsr.provenance.code_identity`): a run of other code is never reused
    (:func:`other_code`); ``model_config``: the model configuration's constructor arguments (its width,
    depth and initialisation: what the model's name alone does not say); ``ema_decay`` (an EMA of the
    weights, :attr:`Preset.ema_decay`) only where the preset has one.
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
        "micro_batch": cfg.micro_batch,
        "device": device_type,
        "seed": cfg.seed,
        "amp": cfg.amp,
        "augment": cfg.augment,
        "reverse": cfg.reverse,
    }
    if model_config is not None:
        spec["model_config"] = model_config
    if spynet is not None:
        spec["spynet"] = spynet
    if spynet_file is not None:
        spec["spynet_file"] = str(spynet_file)
    if cfg.loss_eps != 1e-12:
        spec["loss_eps"] = cfg.loss_eps
    if world_size > 1:
        spec["world_size"] = world_size
    if preset.ema_decay is not None:
        spec["ema_decay"] = preset.ema_decay
    spec["code"] = code_identity()
    return spec


def other_code(have: dict, want: dict) -> str | None:
    """Why a run of spec ``have`` was trained by other code than ``want``'s (None: the same training code)."""
    mine, theirs = want.get("code") or {}, have.get("code") or {}
    if theirs.get("source") == mine.get("source"):
        return None
    return f"trained by {describe(theirs)}, not by this code, {describe(mine)}"


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
    stale = other_code(have, spec)
    if stale is not None:
        also = "" if same_training(have, spec, ignore) else f"; it also {spec_difference(have, spec, ignore)}"
        raise RunFolderError(f"{folder} holds a run of {have.get('preset')} {stale}{also}: its numbers would not come "
                             "from this code. Remove the folder to train it again (mgvsr demo --fresh), or use "
                             "another folder; `mgvsr report` still reads it")
    if not same_training(have, spec, ignore):
        held, wanted = have.get("preset"), spec.get("preset")
        if same_training({**have, "world_size": 1}, {**spec, "world_size": 1}, ignore):
            raise RunFolderError(f"{folder} holds a run of {held} on {have.get('world_size', 1)} process(es); this "
                                 f"command has {spec.get('world_size', 1)}: resume it on as many (torchrun "
                                 "--nproc_per_node, --nnodes), or use another folder")
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
        if (have is not None and same_training(have, spec, ignore) and other_code(have, spec) is None
                and finished_summary(folder) is not None):
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
    explicit fresh start; refused (:class:`RunFolderBusy`) while another process trains there."""
    folder = Path(folder)
    holder = lock_holder(folder)
    if holder is not None:
        raise RunFolderBusy(busy_message(folder, holder))
    for name in (SPEC_FILE, LOG_FILE, *CHECKPOINTS, FINAL):
        (folder / name).unlink(missing_ok=True)
    for damaged in folder.glob("*.pth.damaged*"):
        damaged.unlink()
    shutil.rmtree(folder / TENSORBOARD, ignore_errors=True)



# ---- the run log ----------------------------------------------------------------------------------


class RunLog:
    """``log.jsonl`` as the trainer writes it: one JSON object a line; truncated to a checkpoint's
    iteration on resume.  ``enabled=False`` (the processes other than rank 0) writes nothing."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def _records(self) -> list[tuple[str, dict]]:
        """``(line, record)`` pairs; a last line cut short by a kill mid-write is dropped."""
        lines = self.path.read_text().splitlines()
        records = []
        for k, line in enumerate(lines):
            try:
                records.append((line, json.loads(line)))
            except json.JSONDecodeError:
                if k < len(lines) - 1:
                    raise MgvsrError(f"{self.path}, line {k + 1}: not a JSON record; the run log is damaged") from None
        return records

    def steps_done(self) -> int:
        """Optimizer steps the log records (the last ``step`` record's iteration + 1)."""
        if not self.path.exists():
            return 0
        return max((rec["it"] + 1 for _, rec in self._records() if rec.get("event") == "step"), default=0)

    def truncate_after(self, iteration: int) -> None:
        """Keep the records of iterations ``< iteration`` (and evaluations/stage ends at it)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line, rec in self._records()
                if rec["it"] < iteration or (rec["it"] == iteration and rec["event"] != "step")]
        self.path.write_text("".join(k + "\n" for k in kept))

    def clear(self) -> None:
        """An empty log (a fresh start)."""
        if self.enabled:
            self.path.write_text("")

    def write(self, **record) -> None:
        if self.enabled:
            try:
                with self.path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as exc:
                raise MgvsrError(f"cannot write the run log {self.path}: {exc.strerror or exc}") from exc


# ---- one writer per run folder ---------------------------------------------------------------------


class RunFolderBusy(RunFolderError):
    """Another process is training in the run folder (it holds the folder's lock)."""


def busy_message(folder: str | Path, holder: str) -> str:
    return (f"{folder} is in use: {holder} is training there (it holds {Path(folder) / LOCK_FILE}); "
            "wait for it to finish or stop it, or use another folder")


def _holder_text(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace").strip()
    return text or "another process"


class RunLock:
    """The exclusive lock of a run folder, held for the life of a run by the process that writes it.

    An ``flock`` on ``folder/.lock`` (the file names the holder: ``process 123 on host since ...``):
    the kernel releases it when the process ends, however it ends, so a ``kill -9`` leaves no stale
    lock.  :meth:`acquire` raises :class:`RunFolderBusy` naming the holder when another process has
    it.  A copy sent to another process (pickled: the run decision that rank 0 hands to the others)
    holds nothing."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd)
            os.close(fd)
            raise RunFolderBusy(busy_message(self.folder, holder)) from None
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()} since {since}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "_fd": None}


def lock_holder(folder: str | Path) -> str | None:
    """Who holds ``folder``'s lock (``"process 123 on host since ..."``), or None where nobody does."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ---- the run decision -----------------------------------------------------------------------------

DECISIONS = ("new", "resume", "finished", "reuse", "busy", "refused")


@dataclass(frozen=True)
class Decision:
    """What to do with a run folder (:func:`decide`): ``kind`` one of :data:`DECISIONS`, ``folder``
    where the run is (for ``"reuse"``: the other folder holding the same training), ``reason`` for
    people (why it is refused or busy), ``lock`` the folder's lock when the decision claimed it."""

    kind: str
    folder: Path
    reason: str = ""
    lock: RunLock | None = field(default=None, compare=False, repr=False)

    @property
    def trains(self) -> bool:
        """Whether the run trains (from scratch or from its checkpoint)."""
        return self.kind in ("new", "resume")

    def describe(self, search: str | Path | None = None) -> str:
        """One phrase: ``"new"``, ``"resumes"``, ``"finished"``, ``"reused: table4/lr-scaling"`` ..."""
        if self.kind == "reuse":
            where = relative_name(self.folder, search) if search is not None else str(self.folder)
            return f"reused: {where}"
        return {"resume": "resumes", "busy": f"busy ({self.reason})", "refused": f"refused ({self.reason})"}.get(
            self.kind, self.kind)

    def check(self) -> Decision:
        """This decision, or its reason raised (:class:`RunFolderBusy`, :class:`RunFolderError`)."""
        if self.kind == "busy":
            raise RunFolderBusy(self.reason)
        if self.kind == "refused":
            raise RunFolderError(self.reason)
        return self


def _decide_unlocked(folder: Path, spec: dict, search, resume: bool | None, ignore: tuple[str, ...]) -> Decision:
    try:
        state = check_folder(folder, spec, ignore)
    except RunFolderError as exc:
        return Decision("refused", folder, str(exc))
    if state == "finished":
        return Decision("finished", folder)
    if search is not None:
        same = find_finished(spec, search, ignore)
        if same is not None:
            return Decision("reuse", same)
    checkpoint = has_checkpoint(folder)
    if resume is None:
        resume = checkpoint
    elif resume and not checkpoint:
        return Decision("refused", folder, f"cannot resume: no checkpoint at {folder / CHECKPOINT}")
    elif not resume and checkpoint:
        return Decision("refused", folder, f"{folder} holds an unfinished run of this spec ({CHECKPOINT}); "
                                           "resume it (--resume) or use another folder")
    return Decision("resume" if resume else "new", folder)


def decide(folder: str | Path, spec: dict, *, search: str | Path | None = None, resume: bool | None = None,
           ignore: tuple[str, ...] = (), claim: bool = False) -> Decision:
    """The one run decision, for ``train``, ``reproduce``, ``demo`` and the dry run alike.

    In order: ``"busy"`` (another process holds the folder's lock); ``"refused"`` (the folder holds
    another run, or ``resume`` asks the impossible: True without a checkpoint, False with one);
    ``"finished"`` (this spec, done); ``"reuse"`` (a finished run of the same training under
    ``search``); ``"resume"`` (a checkpoint, and ``resume`` None or True); ``"new"``.  ``ignore``:
    spec keys not compared (:func:`same_training`).  ``claim``: a decision to train takes the folder's
    lock (``Decision.lock``; release it when the run ends) and is made again under it, so that no
    other process can have started in between."""
    folder = Path(folder)
    holder = lock_holder(folder)
    if holder is not None:
        return Decision("busy", folder, busy_message(folder, holder))
    decision = _decide_unlocked(folder, spec, search, resume, ignore)
    if not (claim and decision.trains):
        return decision
    try:
        lock = RunLock(folder).acquire()
    except RunFolderBusy as exc:
        return Decision("busy", folder, str(exc))
    decision = _decide_unlocked(folder, spec, search, resume, ignore)
    if not decision.trains:
        lock.release()
        return decision
    return Decision(decision.kind, folder, lock=lock)
