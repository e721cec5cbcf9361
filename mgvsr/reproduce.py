"""Reproducing a table of the paper: run its presets, then render our numbers beside the published ones.

    rows = reproduce_table("1", root="/data/REDS", scale="paper", out="runs/table1", device="cuda")
    print(render_table(rows))

``mgvsr reproduce --table 1 --root DIR --scale paper --out DIR`` and notebook 7 both call
:func:`reproduce_table`.  A table's runs are its presets (:func:`table_presets`) plus the
baselines its speedups are measured against (Tables 6-8 compare with Table 1's baseline).

Scales (:data:`SCALES`)
-----------------------
- ``paper``: the presets as they are: the paper's models, datasets (at ``root``), shapes,
  minibatches and iteration counts.  The full reproduction: a GPU job of days.
- ``ci``: the same presets shrunk so that a table trains on a 2-core CPU in minutes: the
  CPU models (``basicvsr_cpu`` for BasicVSR and BasicVSR-M, ``edvr_cpu`` for EDVR-M), the
  embedded sample clips (held-out sample clips for testing), iterations / 12,500, minibatch
  / 16, LR patches / 4 (64 -> 16 fits the sample clips' 64x64 LR frames) and LRs x 10 (the
  CPU models train from scratch at the demo's 2e-3).  Every ratio between the runs of a
  table stays: the linear scaling rule, the shares of the stages, the warmup's share of
  the run.  The numbers test the pipeline; they are **not comparable** with the paper's.

Speedups are measured as the paper does: training time without data loading
(``compute_seconds`` of the run log) of the preset's baseline divided by the run's.

Runs and reuse
--------------
Each preset trains into ``out/<preset name>/`` (with a ``spec.json`` saying exactly what was
trained).  A finished run (``final.pth`` and a log ending in an "end" record) is read, not
retrained; an interrupted one resumes from ``last.pth``; and a preset whose training is
identical to a finished run under ``out`` (Table 4's "w lr scaling" is Table 1's row ②) reuses
it.  A folder holding a different run than the one asked for is refused, not overwritten.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from mgvsr.errors import MgvsrError
from mgvsr.experiments import Preset, get_preset, list_presets
from mgvsr.schedule import Plan, shrink

SPEC_FILE = "spec.json"
TABLES = ("1", "2", "3", "4", "5", "6", "7", "7a", "7b", "8", "8a", "8b", "9")


@dataclass(frozen=True)
class Scale:
    """How the presets of a table are run.

    - ``models``: model substitutions (``{"basicvsr_m": "basicvsr_cpu"}``); None keeps the preset's.
    - ``dataset``: train (and test) on this dataset instead of the preset's; None keeps it.
    - ``iterations_div``, ``batch_div``, ``patch_div``: shrink factors (see
      :func:`mgvsr.schedule.shrink`): iterations / k (at least one per stage), minibatch / k
      (at least 1), LR patch / k.
    - ``lr_mult``: every stage's starting LR times this.
    - ``micro_batch_on_cpu``: on a CPU, split a step into micro-batches of the baseline's
      minibatch (the same update; a CPU is slower per sample on big batches).
    """

    name: str
    description: str
    models: dict | None = None
    dataset: str | None = None
    iterations_div: int = 1
    batch_div: int = 1
    patch_div: int = 1
    lr_mult: float = 1.0
    micro_batch_on_cpu: bool = False
    num_workers: int = 0
    checkpoint_every: int = 0
    comparable: bool = True

    @property
    def shrinks(self) -> bool:
        return (self.iterations_div, self.batch_div, self.patch_div, self.lr_mult) != (1, 1, 1, 1.0)


SCALES: dict[str, Scale] = {
    "ci": Scale("ci", "the presets shrunk for a CPU: CPU models, the sample clips, iterations / 12,500, "
                      "minibatch / 16, LR patch / 4, LR x 10",
                models={"basicvsr_m": "basicvsr_cpu", "basicvsr": "basicvsr_cpu", "edvr_m": "edvr_cpu"},
                dataset="sample", iterations_div=12_500, batch_div=16, patch_div=4, lr_mult=10.0,
                micro_batch_on_cpu=True, comparable=False),
    "paper": Scale("paper", "the paper's presets as they are (models, datasets, shapes, minibatches, iterations)",
                   num_workers=4, checkpoint_every=1000),
}


def get_scale(scale: str | Scale) -> Scale:
    """A :class:`Scale` by name (``"ci"`` or ``"paper"``), or the one given."""
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise MgvsrError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    return SCALES[scale]


# --------------------------------------------------------------------------------------
# Which presets, at which scale
# --------------------------------------------------------------------------------------


def table_presets(table: str | int) -> list[Preset]:
    """The presets of a table of the paper, in its row order.  ``"7"`` is 7a then 7b (likewise 8)."""
    table = str(table)
    if table not in TABLES:
        raise MgvsrError(f"unknown table {table!r}; the paper's tables are {', '.join(TABLES)}")
    parts = [table + "a", table + "b"] if table in ("7", "8") else [table]
    return [p for part in parts for p in list_presets(table=part)]


def table_runs(table: str | int) -> list[Preset]:
    """The presets to train for a table: its own, then the baselines its speedups need (once)."""
    presets = table_presets(table)
    names = [p.name for p in presets]
    extra = []
    for p in presets:
        wants_speedup = p.paper is not None and p.paper.get("speedup") is not None
        if wants_speedup and p.baseline and p.baseline not in names and p.baseline not in extra:
            extra.append(p.baseline)
    return presets + [get_preset(name) for name in extra]


def _scaled_lr_plan(plan: Plan, mult: float) -> Plan:
    if mult == 1.0:
        return plan
    stages = tuple(replace(s, lr=s.lr * mult, start=None) for s in plan.stages)
    return Plan(stages, eta_min=plan.eta_min, warmup=plan.warmup, name=plan.name, description=plan.description)


def ci_batch(batch: int, scale: Scale) -> int:
    return max(1, batch // scale.batch_div)


@dataclass(frozen=True)
class ScaledRun:
    """A preset at a scale: the :class:`Preset` to train (LRs scaled) and the keyword overrides of
    :func:`mgvsr.train.run_preset` (``model``, ``dataset``, ``iterations``, ``batch``,
    ``patch_div``); ``plan`` is the plan the trainer will follow."""

    preset: Preset
    overrides: dict
    plan: Plan
    model: str
    dataset: str


def scaled_run(preset: Preset, scale: str | Scale) -> ScaledRun:
    """``preset`` as it runs at ``scale`` (see the module docstring)."""
    scale = get_scale(scale)
    plan = _scaled_lr_plan(preset.plan, scale.lr_mult)
    scaled = replace(preset, plan=plan) if plan is not preset.plan else preset
    overrides: dict = {}
    model = (scale.models or {}).get(preset.model, preset.model)
    if model != preset.model:
        overrides["model"] = model
    if scale.dataset is not None and scale.dataset != preset.dataset:
        overrides["dataset"] = scale.dataset
    if scale.shrinks:
        batches = {s.batch for s in plan.stages}
        if len(batches) != 1:
            raise MgvsrError(f"preset {preset.name}: stages differ in minibatch {sorted(batches)}; "
                             "a shrunk run sets one minibatch for all")
        iterations = max(len(plan.stages), round(plan.total_iterations / scale.iterations_div))
        overrides.update(iterations=iterations, batch=ci_batch(batches.pop(), scale), patch_div=scale.patch_div)
        trained = shrink(plan, iterations=overrides["iterations"], batch=overrides["batch"],
                         patch_div=scale.patch_div)
    else:
        trained = plan
    return ScaledRun(scaled, overrides, trained, model, overrides.get("dataset", preset.dataset))


def _micro_batch(preset: Preset, run: ScaledRun, scale: Scale, device: str) -> int | None:
    """On a CPU at a scale that asks for it: micro-batches of the baseline's minibatch (when it
    divides the run's), else None (the whole minibatch at once)."""
    from mgvsr.train import resolve_device

    if not scale.micro_batch_on_cpu or resolve_device(device).type != "cpu":
        return None
    base = get_preset(preset.baseline) if preset.baseline else preset
    base_batch = scaled_run(base, scale).plan.stages[0].batch
    batch = run.plan.stages[0].batch
    return math.gcd(batch, base_batch)


def run_spec(preset: Preset, scale: str | Scale, root: str | Path | None = None, device: str = "auto",
             seed: int = 0) -> dict:
    """What training ``preset`` at ``scale`` means, as JSON-ready data: two presets with equal
    specs train the same thing (names and descriptions do not count)."""
    from mgvsr.train import resolve_device

    scale = get_scale(scale)
    run = scaled_run(preset, scale)
    plan = run.plan.to_dict()
    plan.pop("name")
    plan.pop("description")
    p = run.preset
    uses_root = run.dataset != "sample"
    return {
        "model": run.model,
        "dataset": run.dataset,
        "root": str(Path(root).resolve()) if (uses_root and root is not None) else None,
        "test_dataset": None if "dataset" in run.overrides else p.test_dataset,
        "plan": plan,
        "flow_frozen_iters": p.flow_frozen_iters,
        "flow_lr_mult": p.flow_lr_mult,
        "fusion_only_iters": p.fusion_only_iters,
        "overrides": run.overrides,
        "micro_batch": _micro_batch(preset, run, scale, device),
        "device": resolve_device(device).type,
        "seed": seed,
    }


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def finished_summary(folder: str | Path) -> dict | None:
    """The "end" record of a finished run in ``folder`` (``final.pth`` and a log whose last
    record is "end"), else None."""
    from mgvsr.train import read_log

    folder = Path(folder)
    log = folder / "log.jsonl"
    if not (folder / "final.pth").is_file() or not log.is_file():
        return None
    records = read_log(log)
    if not records or records[-1].get("event") != "end":
        return None
    return records[-1]


def run_folder(out: str | Path, preset_name: str) -> Path:
    """``out/<preset name>`` (the name's ``/`` become folders: ``out/table1/basicvsr_m/ours``)."""
    return Path(out).joinpath(*preset_name.split("/"))


def read_spec(folder: str | Path) -> dict | None:
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MgvsrError(f"{path} is not valid JSON ({exc}); remove the folder to retrain") from None


def find_identical_run(out: str | Path, spec: dict, exclude: Path | None = None) -> Path | None:
    """A finished run under ``out`` trained exactly as ``spec`` says (its ``spec.json``), or None."""
    for path in sorted(Path(out).rglob(SPEC_FILE)):
        folder = path.parent
        if exclude is not None and folder.resolve() == exclude.resolve():
            continue
        if read_spec(folder) == spec and finished_summary(folder) is not None:
            return folder
    return None


@dataclass
class RunResult:
    """One preset's run: where it is, its summary (the log's "end" record; None if not run),
    and how it was obtained (``"trained"``, ``"finished"`` (found done), ``"reused"`` (an
    identical run of another preset) or ``"missing"`` (not run: ``train=False``))."""

    preset: Preset
    folder: Path
    summary: dict | None
    status: str
    spec: dict = field(repr=False, default_factory=dict)


def run_one(preset: Preset, scale: str | Scale, out: str | Path, *, root: str | Path | None = None,
            device: str = "auto", train: bool = True, progress: bool = True, seed: int = 0,
            log: Callable[[str], None] = print) -> RunResult:
    """Train ``preset`` at ``scale`` into ``out/<name>`` unless it (or an identical run) is done."""
    from mgvsr.train import run_preset

    scale = get_scale(scale)
    spec = run_spec(preset, scale, root, device, seed)
    folder = run_folder(out, preset.name)
    have = read_spec(folder)
    if have is not None and have != spec:
        raise MgvsrError(f"{folder} holds a different run than {preset.name} at scale {scale.name} "
                         f"({_spec_difference(have, spec)}); use another --out or remove the folder")
    summary = finished_summary(folder)
    if summary is not None:
        if have is None:
            raise MgvsrError(f"{folder} holds a finished run without {SPEC_FILE}; cannot tell what it trained "
                             "(use another --out or remove the folder)")
        return RunResult(preset, folder, summary, "finished", spec)
    same = find_identical_run(out, spec, exclude=folder)
    if same is not None:
        log(f"{preset.name}: the same training as {same.relative_to(out)}, reused")
        return RunResult(preset, same, finished_summary(same), "reused", spec)
    if not train:
        return RunResult(preset, folder, None, "missing", spec)
    run = scaled_run(preset, scale)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    resume = (folder / "last.pth").is_file()
    log(f"{preset.name}: {'resuming' if resume else 'training'} {run.model} on {run.dataset}, "
        f"{run.plan.total_iterations:,} iterations, stages {' '.join(s.label for s in run.plan.stages)}, "
        f"batch {run.plan.stages[0].batch}")
    summary = run_preset(run.preset, folder, root=None if run.dataset == "sample" else root, device=device, resume=resume, seed=seed,
                         micro_batch=spec["micro_batch"], num_workers=scale.num_workers,
                         checkpoint_every=scale.checkpoint_every, progress=progress, **run.overrides)
    return RunResult(preset, folder, finished_summary(folder) or summary, "trained", spec)


def runs_text(table: str | int, scale: str | Scale) -> str:
    """What reproducing ``table`` at ``scale`` trains, one line per run: model, dataset,
    iterations, stages, minibatch and starting LRs (nothing is run)."""
    scale = get_scale(scale)
    lines = []
    for preset in table_runs(table):
        run = scaled_run(preset, scale)
        lrs = sorted({s.lr for s in run.plan.stages}, reverse=True)
        warm = run.plan.warmup
        lines.append(f"{preset.name}: {run.model} on {run.dataset}, {run.plan.total_iterations:,} iterations, "
                     f"stages {' '.join(s.label for s in run.plan.stages)}, batch {run.plan.stages[0].batch}, "
                     f"LR {'/'.join(f'{lr:.0e}' for lr in lrs)}"
                     + ("" if warm is None else f", {warm.kind} warmup {warm.iterations:,}"))
    return "\n".join(lines)


def _spec_difference(have: dict, want: dict) -> str:
    keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    return "differs in " + ", ".join(keys)


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One row of a reproduced table: the preset, the paper's numbers, ours.

    ``speedup``: the baseline's compute seconds over this run's (None where either is missing
    or the row has no baseline); ``baseline_row``: the row is the table's reference.
    """

    preset: str
    table: str | None
    row: str | None
    description: str
    paper: dict
    psnr: float | None
    ssim: float | None
    compute_seconds: float | None
    train_seconds: float | None
    iterations: int
    stages: list[str]
    batch: int
    speedup: float | None
    status: str
    folder: str
    baseline: str | None
    scale: str
    comparable: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _row(result: RunResult, scale: Scale, results: dict[str, RunResult]) -> Row:
    p = result.preset
    s = result.summary or {}
    plan = scaled_run(p, scale).plan
    base = results.get(p.baseline) if p.baseline else None
    speedup = None
    if base is not None and base.summary and s.get("compute_seconds"):
        speedup = base.summary["compute_seconds"] / s["compute_seconds"]
    return Row(preset=p.name, table=p.table, row=p.row, description=p.plan.description,
               paper=dict(p.paper or {}), psnr=s.get("psnr"), ssim=s.get("ssim"),
               compute_seconds=s.get("compute_seconds"), train_seconds=s.get("train_seconds"),
               iterations=plan.total_iterations, stages=[st.label for st in plan.stages],
               batch=plan.stages[0].batch, speedup=speedup, status=result.status, folder=str(result.folder),
               baseline=p.baseline, scale=scale.name, comparable=scale.comparable)


def reproduce_table(table: str | int, root: str | Path | None = None, scale: str | Scale = "ci",
                    out: str | Path = "runs/reproduce", device: str = "auto", *, train: bool = True,
                    progress: bool = True, seed: int = 0, log: Callable[[str], None] = print) -> list[Row]:
    """Run (or find) every preset of ``table`` at ``scale`` into ``out`` and return its rows.

    The rows are the table's presets in the paper's order, followed by the baselines that
    only its speedups need.  ``root``: the dataset root for the paper scale (REDS or
    Vimeo-90K; not needed for the sample clips).  ``train=False``: train nothing, report
    what is already finished under ``out``.
    """
    scale = get_scale(scale)
    out = Path(out)
    runs = table_runs(table)
    if scale.dataset is None and root is None and any(p.dataset != "sample" for p in runs):
        datasets = sorted({p.dataset for p in runs})
        raise MgvsrError(f"table {table} at scale {scale.name} trains on {', '.join(datasets)}: give its root "
                         "(--root DIR), or use scale 'ci' (the sample clips)")
    results: dict[str, RunResult] = {}
    for preset in runs:
        results[preset.name] = run_one(preset, scale, out, root=root, device=device, train=train,
                                       progress=progress, seed=seed, log=log)
    return [_row(results[p.name], scale, results) for p in runs]


def _fmt(value: float | None, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def render_table(rows: Sequence[Row], title: str | None = None) -> str:
    """The rows as a markdown table, ours beside the paper's, with a note on the scale.

    Columns: the paper's row label, the preset, its stages and minibatch as trained, PSNR
    and SSIM (ours / paper), speedup (ours / paper), compute seconds, how the run was obtained.
    """
    if not rows:
        raise MgvsrError("no rows to render")
    scale = rows[0].scale
    tables = sorted({r.table for r in rows if r.table})
    head = title or f"Table {', '.join(tables)} of the paper at scale {scale!r}"
    lines = [f"**{head}**", "",
             "| row | preset | stages (trained) | batch | PSNR ours | PSNR paper | SSIM ours | SSIM paper "
             "| speedup ours | speedup paper | compute (s) | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = r.row if r.row else "(baseline)"
        speed = "1.00x" if r.baseline is None and r.compute_seconds is not None else _fmt(r.speedup, 2, "x")
        lines.append(
            f"| {label} | {r.preset} | {' '.join(r.stages)} | {r.batch} | {_fmt(r.psnr, 2)} "
            f"| {_fmt(r.paper.get('psnr'), 2)} | {_fmt(r.ssim, 4)} | {_fmt(r.paper.get('ssim'), 4)} "
            f"| {speed} | {_fmt(r.paper.get('speedup'), 1, 'x')} | {_fmt(r.compute_seconds, 1)} | {r.status} |")
    lines.append("")
    if not rows[0].comparable:
        lines.append(f"Scale {scale!r}: {SCALES[scale].description if scale in SCALES else scale}. "
                     "These numbers exercise the pipeline; they are NOT comparable with the paper's "
                     "(other model, other data, a few iterations).")
    else:
        lines.append("Ours: PSNR/SSIM on the preset's test set under its protocol; speedup = the baseline's "
                     "training time without data loading over the run's (as the paper reports).")
    missing = [r.preset for r in rows if r.psnr is None]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)}.")
    return "\n".join(lines)


def write_results(rows: Sequence[Row], out: str | Path, table: str | int) -> tuple[Path, Path]:
    """``out/table<N>-<scale>.md`` (the rendered table) and ``.json`` (the rows)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"table{table}-{rows[0].scale}"
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    md.write_text(render_table(rows) + "\n")
    js.write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    return md, js
