"""Reproducing a table of the paper: run its presets, then render our numbers beside the published ones.

    rows = reproduce_table("1", root="/data/REDS", scale="paper", out="runs/table1", device="cuda",
                           spynet="spynet_sintel_final-3d2a1287.pth")
    print(render_table(rows))

``mgvsr reproduce --table 1 --root DIR --scale paper --out DIR`` and notebook 7 both call
:func:`reproduce_table`.  A table's runs are its presets (:func:`table_presets`) plus the
baselines its speedups are measured against (Tables 6-8 compare with Table 1's baseline).

Scales (:data:`mgvsr.presets.SCALES`, :meth:`mgvsr.presets.Preset.at_scale`)
----------------------------------------------------------------------------
- ``paper``: the presets as they are: the paper's models, datasets (at ``root``), shapes,
  minibatches and iteration counts.  The full reproduction: a GPU job of days.
- ``lesson``: the CPU models on the sample clips, long enough to learn (iterations / 500,
  minibatch / 4, LR patch / 2, clip length / 2, LRs x 10: Table 1 in 25 minutes on 2 cores).
  Each baseline trains again with the next seed (``Scale.noise_seeds``), and every row gets a
  verdict against that measured noise and bicubic (:func:`add_verdicts`).
- ``smoke``: the same presets shrunk so that a table trains on a 2-core CPU in minutes: the
  CPU models (``basicvsr_cpu`` for BasicVSR and BasicVSR-M, ``edvr_cpu`` for EDVR-M), the
  embedded sample clips (held-out sample clips for testing), iterations / 12,500, minibatch
  / 16, LR patches / 4 (64 -> 16 fits the sample clips' 64x64 LR frames) and LRs x 10 (the
  CPU models train from scratch at the demo's 2e-3).  Every ratio between the runs of a
  table stays: the linear scaling rule, the shares of the stages, the warmup's share of
  the run.  The numbers test the pipeline; they are **not comparable** with the paper's.

Speedups are measured as the paper does: training time without data loading
(``compute_seconds`` of the run log) of the preset's baseline divided by the run's; and in
device-time too (those seconds times the run's devices), beside the paper's speedups turned
into device-time with the paper's device counts (:class:`~mgvsr.presets.PaperDevices`: its
4x minibatch ran on 4x the GPUs).  A run's log records its devices, samples per device,
micro-batches and precision, and the rendered table shows them.

SpyNet: the BasicVSR-family runs at scale ``paper`` need its pretrained weights
(``spynet=PATH``) or an explicit ``spynet="none"``, checked before anything trains
(:func:`table_flows`); the choice is in each run's spec and marked in the table.

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
from mgvsr.device import resolve_device
from mgvsr.launch import RunResult, run_preset, run_setup
from mgvsr.models import PRETRAINED_FLOW, FlowInit, SpynetRequiredError, flow_init, spynet_required_message
from mgvsr.options import RunOptions
from mgvsr.presets import BEYOND_PAPER, SCALES, PaperDevices, Preset, Scale, get_preset, get_scale, table_runs
from mgvsr.report import bicubic_scores

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


def run_options(preset: Preset, scale: str | Scale, options: RunOptions) -> RunOptions:
    """The options a run of ``preset`` at ``scale`` trains with, from the table's ``options``: the
    scale's micro-batches (unless ``options.micro_batch`` says) and checkpoint interval; no dataset root
    for the embedded clips."""
    scale = get_scale(scale)
    run = preset.at_scale(scale)
    return options.replace(micro_batch=options.micro_batch or micro_batch(preset, scale, options.device),
                           checkpoint_every=scale.checkpoint_every,
                           root=None if run.dataset == "sample" else options.root)


def scaled_spec(preset: Preset, scale: str | Scale, options: RunOptions) -> dict:
    """What training ``preset`` at ``scale`` with the table's ``options`` means (:func:`mgvsr.runs.run_spec`
    through :func:`mgvsr.launch.run_setup`): two presets with equal specs train the same thing."""
    return run_setup(preset.at_scale(scale), run_options(preset, scale, options)).spec


def table_flows(presets: Sequence[Preset], scale: str | Scale, spynet: str | Path | None,
                log: Callable[[str], None] = print) -> dict[str, FlowInit]:
    """What SpyNet starts from in each model configuration the runs of ``presets`` train at ``scale``
    (``{model: FlowInit}``), checked before anything trains: a table of BasicVSR-family runs refuses
    to start without ``spynet`` (a file, read and hashed once here, or ``"none"``); the CPU models and
    EDVR-M ignore it (said through ``log``)."""
    scale = get_scale(scale)
    models = list(dict.fromkeys(p.at_scale(scale).model for p in presets))
    needing = [m for m in models if m in PRETRAINED_FLOW]
    if spynet is None and needing:
        names = [p.name for p in presets if p.at_scale(scale).model in needing]
        what = f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''} ({', '.join(needing)})"
        raise SpynetRequiredError(spynet_required_message(needing[0], what))
    if spynet is not None and not needing:
        log(f"--spynet is not used: these runs train {', '.join(models)}, whose flow (if any) is learnt from "
            "scratch" + (" (the CPU models of this scale)" if scale.models else ""))
    return {m: flow_init(m, spynet if m in needing else None) for m in models}


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


def run_one(preset: Preset, scale: str | Scale, out: str | Path, options: RunOptions, *, train: bool = True,
            folder: Path | None = None) -> TableRun:
    """Train ``preset`` at ``scale`` into ``out/<name>`` (or ``folder``) unless it (or an identical run
    under ``out``) is done (:func:`mgvsr.runs.decide`).

    ``options.spynet``: what its SpyNet starts from (a :class:`~mgvsr.models.FlowInit` from
    :func:`table_flows`).  With ``train=False`` and no ``options.spynet``, a finished run is found
    whatever SpyNet it started from (its spec says which)."""
    scale = get_scale(scale)
    run = preset.at_scale(scale)
    folder = folder or runs.run_folder(out, preset.name)
    if train:
        result: RunResult = run_preset(run, folder, run_options(preset, scale, options), search=out)
        return TableRun(preset, result.folder, result.summary, result.status)
    ignore = ("spynet",) if options.spynet is None and run.model in PRETRAINED_FLOW else ()
    spec = scaled_spec(preset, scale, options.replace(spynet=options.spynet or FlowInit(run.model)))
    decision = runs.decide(folder, spec, search=out, ignore=ignore)
    if decision.kind == "refused":
        decision.check()
    if decision.kind == "finished":
        return TableRun(preset, folder, runs.finished_summary(folder), "finished")
    if decision.kind == "reuse":
        options.say(f"{preset.name}: the same training as {runs.relative_name(decision.folder, out)}, reused")
        return TableRun(preset, decision.folder, runs.finished_summary(decision.folder), "reused")
    return TableRun(preset, folder, None, "busy" if decision.kind == "busy" else "missing")


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
    """One row of a reproduced table: the preset, the paper's numbers, ours, and how ours were computed.

    Times are ``compute_seconds`` (training without data loading, the paper's measure) and
    ``device_seconds`` (the same times the devices).  ``speedup``: the baseline's compute seconds over
    this run's; ``speedup_device``: the same in device-seconds; ``paper_speedup_device``: the paper's
    wall-clock speedup turned into device-time with the paper's device counts (:class:`PaperDevices`).
    ``setup``: the run's :meth:`~mgvsr.train.Trainer.setup` (devices, per-device batch, micro-batches,
    precision); ``spynet``: what its SpyNet started from, as its spec records it (``"none"``: opted out).
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
    device_seconds: float | None = None
    speedup_device: float | None = None
    setup: dict | None = None
    paper_devices: dict | None = None
    baseline_paper_devices: dict | None = None
    paper_speedup_device: float | None = None
    spynet: str | None = None
    bicubic_psnr: float | None = None
    noise: dict | None = None
    verdict: str | None = None

    @property
    def devices(self) -> int | None:
        return (self.setup or {}).get("world_size")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _row(result: TableRun, scale: Scale, results: dict[str, TableRun]) -> Row:
    p = result.preset
    s = result.summary or {}
    plan = p.at_scale(scale).plan
    base_preset = get_preset(p.baseline) if p.baseline else None
    base = results.get(p.baseline) if p.baseline else None
    speedup = speedup_device = None
    if base is not None and base.summary and s.get("compute_seconds"):
        speedup = base.summary["compute_seconds"] / s["compute_seconds"]
        ours, theirs = s.get("device_seconds"), base.summary.get("device_seconds")  # None in a log without them
        if ours and theirs:
            speedup_device = theirs / ours
    paper_speedup = (p.paper or {}).get("speedup")
    paper_device = None
    if paper_speedup is not None and p.paper_devices and base_preset is not None and base_preset.paper_devices:
        paper_device = PaperDevices.device_speedup(paper_speedup, p.paper_devices.gpus, base_preset.paper_devices.gpus)
    spec = runs.read_spec(result.folder) if result.summary else None
    return Row(preset=p.name, table=p.table, row=p.row, description=p.plan.description,
               paper=dict(p.paper or {}), psnr=s.get("psnr"), ssim=s.get("ssim"),
               compute_seconds=s.get("compute_seconds"), train_seconds=s.get("train_seconds"),
               iterations=plan.total_iterations, stages=[st.label for st in plan.stages],
               batch=plan.stages[0].batch, speedup=speedup, status=result.status, folder=str(result.folder),
               baseline=p.baseline, scale=scale.name, comparable=scale.comparable,
               device_seconds=s.get("device_seconds"), speedup_device=speedup_device, setup=s.get("setup"),
               paper_devices=None if p.paper_devices is None else p.paper_devices.to_dict(),
               baseline_paper_devices=(None if base_preset is None or base_preset.paper_devices is None
                                       else base_preset.paper_devices.to_dict()),
               paper_speedup_device=paper_device, spynet=(spec or {}).get("spynet"))


def reproduce_table(table: str | int, scale: str | Scale = "smoke", out: str | Path = "runs/reproduce",
                    options: RunOptions | None = None, *, train: bool = True) -> list[Row]:
    """Run (or find) every preset of ``table`` at ``scale`` into ``out`` and return its rows.

    The rows are the table's presets in the paper's order, followed by the baselines that only its
    speedups need.  ``options``: how the runs are executed (:class:`~mgvsr.options.RunOptions`):
    ``options.root`` is the dataset root for the paper scale (REDS or Vimeo-90K; not needed for the
    sample clips); ``options.spynet`` pretrained SpyNet weights (or ``"none"``) for the
    BasicVSR-family runs, which refuse to train without (:func:`table_flows`).  ``train=False``: train
    nothing, report what is already finished under ``out``.
    """
    scale = get_scale(scale)
    out = Path(out)
    options = options or RunOptions()
    presets = table_runs(table)
    if scale.dataset is None and options.root is None and any(p.dataset != "sample" for p in presets):
        datasets = sorted({p.dataset for p in presets})
        raise MgvsrError(f"table {table} at scale {scale.name} trains on {', '.join(datasets)}: give its root "
                         "(--root DIR), or use scale 'smoke' (the sample clips)")
    say = options.log or (lambda message: None)
    flows = table_flows(presets, scale, options.spynet, say) if (train or options.spynet is not None) else {}

    def one(preset: Preset, seed: int, folder: Path | None = None) -> TableRun:
        flow = flows.get(preset.at_scale(scale).model)
        return run_one(preset, scale, out, options.replace(seed=seed, spynet=flow), train=train, folder=folder)

    results = {preset.name: one(preset, options.seed) for preset in presets}
    repeats: dict[str, list[TableRun]] = {}  # each baseline again with other seeds: the run-to-run noise
    for preset in (p for p in presets if p.baseline is None):
        repeats[preset.name] = [one(preset, options.seed + k, runs.run_folder(out, f"{preset.name}-seed{options.seed + k}"))
                                for k in range(1, scale.noise_seeds + 1)]
    rows = [_row(results[p.name], scale, results) for p in presets]
    finished = [r.folder for r in rows if r.psnr is not None]
    # bicubic on the clips (and channel) the runs were scored on; on the sample clips only (cheap)
    bicubic = bicubic_scores(finished)[0] if scale.dataset == "sample" and finished else None
    return add_verdicts(rows, {name: [results[name], *more] for name, more in repeats.items()},
                        None if bicubic is None else bicubic["psnr"])


def baseline_noise(trained: list[TableRun]) -> dict | None:
    """The run-to-run noise of one baseline trained with several seeds: ``seeds``, the spread (max -
    min) of its PSNR in dB, and of its compute time as a fraction of the fastest; None if fewer than
    two finished."""
    done = [t.summary for t in trained if t.summary and t.summary.get("psnr") is not None]
    if len(done) < 2:
        return None
    psnrs, times = [d["psnr"] for d in done], [d["compute_seconds"] for d in done]
    return {"seeds": len(done), "psnrs": psnrs, "psnr_spread": max(psnrs) - min(psnrs),
            "time_spread": max(times) / min(times) - 1}


def verdict(row: Row, base: Row, noise: dict | None, bicubic: float | None) -> str:
    """What a row shows against its baseline, decided against the measured noise: faster or not
    (the speedup against 1 +- the baseline's spread in time), and its PSNR above, below or within
    the baseline's spread between seeds (and against bicubic when known)."""
    parts = []
    t = noise["time_spread"] if noise else 0.0
    if row.speedup is not None:
        parts.append(f"{row.speedup:.2f}x faster" if row.speedup > 1 + t else
                     f"{1 / row.speedup:.2f}x slower" if row.speedup < 1 / (1 + t) else "not faster (within the noise)")
    if row.psnr is not None and base.psnr is not None:
        gap, n = row.psnr - base.psnr, noise["psnr_spread"] if noise else None
        if n is None:
            parts.append(f"PSNR {gap:+.2f} dB (noise not measured)")
        elif abs(gap) <= n:
            parts.append(f"PSNR {gap:+.2f} dB: within the noise (±{n:.2f})")
        else:
            parts.append(f"PSNR {gap:+.2f} dB: {'better' if gap > 0 else 'worse'} beyond the noise ({n:.2f})")
    if row.psnr is not None and bicubic is not None:
        parts.append(f"{row.psnr - bicubic:+.2f} dB vs bicubic")
    return "; ".join(parts)


def add_verdicts(rows: list[Row], trained: dict[str, list[TableRun]], bicubic: float | None) -> list[Row]:
    """Fill each row's ``bicubic_psnr``, ``noise`` (its baseline's, :func:`baseline_noise`) and
    ``verdict`` (:func:`verdict`; a baseline's says how far it is from bicubic)."""
    by_name = {r.preset: r for r in rows}
    noises = {name: baseline_noise(t) for name, t in trained.items()}
    for r in rows:
        r.bicubic_psnr = bicubic
        base_name = r.baseline or r.preset
        r.noise = noises.get(base_name)
        base = by_name.get(r.baseline) if r.baseline else None
        if base is not None and r.psnr is not None:
            r.verdict = verdict(r, base, r.noise, bicubic)
        elif r.baseline is None and r.psnr is not None and bicubic is not None:
            r.verdict = f"{r.psnr - bicubic:+.2f} dB vs bicubic"
    return rows


def _fmt(value: float | None, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _per_device(r: Row) -> str:
    """``"64 (8 x 8)"``: samples per device per step (micro-batches x their size), as trained."""
    setup = r.setup or {}
    if not setup.get("per_device_batch"):
        return "-"
    per, micro = setup["per_device_batch"][0], setup["micro_batch"][0]
    return str(per) if micro == per else f"{per} ({per // micro} x {micro})"


def _speedup_cell(r: Row, value: float | None) -> str:
    if r.baseline is None and r.compute_seconds is not None:
        return "1.00x"
    return _fmt(value, 2, "x")


def _paper_device_speedup(r: Row) -> str:
    if r.paper_speedup_device is not None:
        return _fmt(r.paper_speedup_device, 2, "x")
    return "1.00x" if r.baseline is None and r.paper.get("psnr") is not None else "-"


def device_notes(rows: Sequence[Row]) -> list[str]:
    """What the rendered table says under itself about devices: which devices ran the rows, and for
    every row with a speedup whose device counts differ from the paper's, on which axis to compare."""
    notes = []
    names = sorted({(r.setup or {}).get("device_name") for r in rows if r.setup} - {None})
    if names:
        notes.append("Devices: " + "; ".join(names) + ".")
    by_name = {r.preset: r for r in rows}
    differ: dict[tuple, list[str]] = {}  # (ours, our baseline's, the paper's, its baseline's) -> rows
    for r in rows:
        base = by_name.get(r.baseline) if r.baseline else None
        if r.paper_devices is None or r.devices is None or base is None or base.devices is None:
            continue
        counts = (r.devices, base.devices, r.paper_devices["gpus"], (r.baseline_paper_devices or {}).get("gpus"))
        if counts[:2] != counts[2:]:
            differ.setdefault(counts, []).append(r.row or r.preset)
    if differ:
        groups = [f"{' '.join(labels)} (ours {a} against {b}, the paper's {c} against {d})"
                  for (a, b, c, d), labels in differ.items()]
        notes.append("The device counts differ from the paper's for " + "; ".join(groups) + ". The paper's "
                     "speedups are wall-clock with its device counts (a 4x minibatch ran on 4x the GPUs): "
                     "compare ours with the paper's on the device-time axis (wall-clock x devices), "
                     "not on wall-clock.")
    return notes


def render_table(rows: Sequence[Row], title: str | None = None) -> str:
    """The rows as a markdown table, ours beside the paper's, with notes on the scale and the devices.

    Columns: the paper's row label, the preset, its stages and minibatch as trained, the devices
    and samples per device (micro-batches) and precision of our run, PSNR and SSIM (ours / paper),
    speedup in wall-clock time (ours / paper) and in device-time (ours / the paper's turned into
    device-time), the paper's devices, compute seconds, how the run was obtained.  A row trained
    with ``--spynet none`` is marked with a dagger.
    """
    if not rows:
        raise MgvsrError("no rows to render")
    scale = rows[0].scale
    tables = sorted({r.table for r in rows if r.table})
    head = title or (f"mgvsr's table {', '.join(tables)} (beyond the paper) at scale {scale!r}"
                     if set(tables) <= set(BEYOND_PAPER) else f"Table {', '.join(tables)} of the paper at scale {scale!r}")
    lines = [f"**{head}**", "",
             "| row | preset | stages (trained) | batch | devices | per device | precision | PSNR ours | PSNR paper "
             "| SSIM ours | SSIM paper | speedup ours | speedup paper | device-time speedup ours "
             "| device-time speedup paper | paper's devices | compute (s) | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = (r.row if r.row else "(baseline)") + (" †" if r.spynet == "none" else "")
        paper_devices = "-" if r.paper_devices is None else f"{r.paper_devices['gpus']} {r.paper_devices['kind']}"
        lines.append(
            f"| {label} | {r.preset} | {' '.join(r.stages)} | {r.batch} | {_fmt(r.devices, 0)} | {_per_device(r)} "
            f"| {(r.setup or {}).get('precision', '-')} | {_fmt(r.psnr, 2)} "
            f"| {_fmt(r.paper.get('psnr'), 2)} | {_fmt(r.ssim, 4)} | {_fmt(r.paper.get('ssim'), 4)} "
            f"| {_speedup_cell(r, r.speedup)} | {_fmt(r.paper.get('speedup'), 1, 'x')} | {_speedup_cell(r, r.speedup_device)} "
            f"| {_paper_device_speedup(r)} | {paper_devices} | {_fmt(r.compute_seconds, 1)} | {r.status} |")
    verdicts = [r for r in rows if r.verdict]
    if verdicts:
        lines += ["", "| row | preset | verdict (against its baseline, decided against the measured noise) |", "|---|---|---|"]
        lines += [f"| {r.row if r.row else '(baseline)'} | {r.preset} | {r.verdict} |" for r in verdicts]
    noises = {r.baseline or r.preset: r.noise for r in rows if r.noise}
    lines.append("")
    for name, n in noises.items():
        lines.append(f"Noise: {name} trained with {n['seeds']} seeds ended {n['psnr_spread']:.2f} dB apart "
                     f"(PSNR {', '.join(f'{p:.2f}' for p in n['psnrs'])}), its compute time {100 * n['time_spread']:.0f}% "
                     "apart; a row's PSNR gap or speedup inside that spread is not a difference.")
    if rows[0].bicubic_psnr is not None:
        lines.append(f"Bicubic on the same test clips: {rows[0].bicubic_psnr:.2f} dB.")
    if not rows[0].comparable:
        lines.append(f"Scale {scale!r}: {SCALES[scale].description if scale in SCALES else scale}. "
                     "These numbers exercise the pipeline; they are NOT comparable with the paper's "
                     "(other model, other data, a few iterations).")
    else:
        lines.append("Ours: PSNR/SSIM on the preset's test set under its protocol; speedup = the baseline's "
                     "training time without data loading over the run's (as the paper reports).")
    lines.append("Speedups: wall-clock = the baseline's compute seconds over the run's; device-time = the same "
                 "in device-seconds (compute seconds x devices). The paper's device-time speedups are its "
                 "wall-clock speedups times its baseline's GPUs over the run's (4 samples per V100, Table 6).")
    lines += device_notes(rows)
    opted_out = [r.row or r.preset for r in rows if r.spynet == "none"]
    if opted_out:
        lines.append(f"† {', '.join(opted_out)}: trained with --spynet none, SpyNet from random weights instead "
                     "of BasicVSR's pretrained flow; not the paper's recipe.")
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
