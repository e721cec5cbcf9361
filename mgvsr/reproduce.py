"""Reproducing a table of the paper: run its presets, then render our numbers beside the published ones.

    rows = reproduce_table("1", root="/data/REDS", scale="paper", out="runs/table1", device="cuda")
    print(render_table(rows))

``mgvsr reproduce --table 1 --root DIR --scale paper --out DIR`` and notebook 7 both call
:func:`reproduce_table`.  A table's runs are its presets (:func:`table_presets`) plus the
baselines its speedups are measured against (Tables 6-8 compare with Table 1's baseline).

Scales (:data:`mgvsr.presets.SCALES`, :meth:`mgvsr.presets.Preset.at_scale`)
----------------------------------------------------------------------------
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
Each preset trains into ``out/<preset name>/`` under the rule of :mod:`mgvsr.runs` (a
``spec.json`` saying exactly what was trained): a finished run is read, not retrained; an
interrupted one resumes from ``last.pth``; a preset whose training is identical to a finished
run under ``out`` (Table 4's "w lr scaling" is Table 1's row ②) reuses it.  A folder holding a
different run than the one asked for is refused, not overwritten.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from mgvsr import runs
from mgvsr.errors import MgvsrError
from mgvsr.presets import SCALES, TABLES, Preset, Scale, get_preset, get_scale, table_presets, table_runs
from mgvsr.train import RunResult, TrainConfig, preset_spec, resolve_device, run_preset

# --------------------------------------------------------------------------------------
# At which scale
# --------------------------------------------------------------------------------------


def micro_batch(preset: Preset, scale: str | Scale, device: str) -> int | None:
    """On a CPU at a scale that asks for it: micro-batches of the baseline's minibatch (when it
    divides the run's), else None (the whole minibatch at once)."""
    scale = get_scale(scale)
    if not scale.micro_batch_on_cpu or resolve_device(device).type != "cpu":
        return None
    base = get_preset(preset.baseline) if preset.baseline else preset
    base_batch = base.at_scale(scale).plan.stages[0].batch
    return math.gcd(preset.at_scale(scale).plan.stages[0].batch, base_batch)


def run_config(preset: Preset, scale: str | Scale, device: str = "auto", seed: int = 0) -> dict:
    """The :class:`~mgvsr.train.TrainConfig` fields (a dict) a run of ``preset`` at ``scale`` trains with
    (besides the preset's warm start)."""
    scale = get_scale(scale)
    return dict(device=device, seed=seed, micro_batch=micro_batch(preset, scale, device),
                num_workers=scale.num_workers, checkpoint_every=scale.checkpoint_every)


def run_spec(preset: Preset, scale: str | Scale, root: str | Path | None = None, device: str = "auto",
             seed: int = 0) -> dict:
    """What training ``preset`` at ``scale`` means (:func:`mgvsr.runs.run_spec`): two presets with
    equal specs train the same thing (names and descriptions do not count)."""
    run = preset.at_scale(scale)
    cfg = TrainConfig(**run_config(preset, scale, device, seed))
    return preset_spec(run, cfg, root=root)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


@dataclass
class TableRun:
    """One preset of a table: the preset, its run folder, its summary (None if not run) and how it
    was obtained (:class:`~mgvsr.train.RunResult`'s status, or ``"missing"``: not run, ``train=False``)."""

    preset: Preset
    folder: Path
    summary: dict | None
    status: str


def run_one(preset: Preset, scale: str | Scale, out: str | Path, *, root: str | Path | None = None,
            device: str = "auto", train: bool = True, progress: bool = True, seed: int = 0,
            log: Callable[[str], None] = print) -> TableRun:
    """Train ``preset`` at ``scale`` into ``out/<name>`` unless it (or an identical run under ``out``) is done."""
    scale = get_scale(scale)
    run = preset.at_scale(scale)
    folder = runs.run_folder(out, preset.name)
    config = run_config(preset, scale, device, seed)
    data_root = None if run.dataset == "sample" else root
    if not train:
        spec = run_spec(preset, scale, root, device, seed)
        state = runs.check_folder(folder, spec)
        if state == "finished":
            return TableRun(preset, folder, runs.finished_summary(folder), "finished")
        same = runs.find_finished(spec, out)
        if same is not None:
            log(f"{preset.name}: the same training as {runs.relative_name(same, out)}, reused")
            return TableRun(preset, same, runs.finished_summary(same), "reused")
        return TableRun(preset, folder, None, "missing")
    result: RunResult = run_preset(run, folder, root=data_root, search=out, progress=progress, log=log, **config)
    return TableRun(preset, result.folder, result.summary, result.status)


def runs_text(table: str | int, scale: str | Scale) -> str:
    """What reproducing ``table`` at ``scale`` trains, one line per run: model, dataset,
    iterations, stages, minibatch and starting LRs (nothing is run)."""
    lines = []
    for preset in table_runs(table):
        run = preset.at_scale(scale)
        plan = run.plan
        lrs = sorted({s.lr for s in plan.stages}, reverse=True)
        warm = plan.warmup
        lines.append(f"{preset.name}: {run.model} on {run.dataset}, {plan.total_iterations:,} iterations, "
                     f"stages {' '.join(s.label for s in plan.stages)}, batch {plan.stages[0].batch}, "
                     f"LR {'/'.join(f'{lr:.0e}' for lr in lrs)}"
                     + ("" if warm is None else f", {warm.kind} warmup {warm.iterations:,}"))
    return "\n".join(lines)


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


def _row(result: TableRun, scale: Scale, results: dict[str, TableRun]) -> Row:
    p = result.preset
    s = result.summary or {}
    plan = p.at_scale(scale).plan
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
    results: dict[str, TableRun] = {}
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
