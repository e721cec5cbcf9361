"""Reproducing a table of the paper: run its presets, then render our numbers beside the published ones.

    options = RunOptions(root="/data/REDS", device="cuda", spynet="spynet_sintel_final-3d2a1287.pth")
    rows = reproduce_table("1", "paper", "runs/table1", options)
    print(mgvsr.tables.render_table(rows))

``mgvsr reproduce --table 1 --root DIR --scale paper --out DIR`` and notebook 7 both call
:func:`reproduce_tables`.  A table's runs are its presets (:func:`mgvsr.presets.table_presets`) plus the
baselines its rows are compared with (Tables 4-8 compare with Table 1's baseline); every run trains
with the scale's seeds (:attr:`mgvsr.presets.Scale.noise_seeds`), the rows get the calibrated costs of
one pass (:func:`add_costs`, :mod:`mgvsr.costs`) and the verdicts of :mod:`mgvsr.tables`, and
:func:`summary` decides every claim of the paper from them (:mod:`mgvsr.claims`).

Scales (:data:`mgvsr.presets.SCALES`, :meth:`mgvsr.presets.Preset.at_scale`)
----------------------------------------------------------------------------
- ``paper``: the presets as they are: the paper's models, datasets (at ``root``), shapes,
  minibatches and iteration counts.  The full reproduction: a GPU job of days.
- ``lesson``: the CPU models on the sample clips, long enough to learn (iterations / 500,
  minibatch / 4, LR patch / 2, clip length / 2, bf16 on a CPU; see :data:`mgvsr.presets.SCALES`).  Every run trains
  with three seeds, and every row gets a verdict against both sides' measured noise and bicubic.
- ``smoke``: the same presets shrunk so that a table trains on a 2-core CPU in minutes: the
  CPU models (``basicvsr_cpu`` for BasicVSR and BasicVSR-M, ``edvr_cpu`` for EDVR-M), the
  embedded sample clips (held-out sample clips for testing), iterations / 12,500, minibatch
  / 8 (a minibatch splits over two processes), LR patches / 4 (64 -> 16 fits the sample clips' 64x64 LR frames) and LRs x 10 (the
  CPU models train from scratch at the demo's 2e-3).  Every ratio between the runs of a
  table stays: the linear scaling rule, the shares of the stages, the warmup's share of
  the run.  The numbers test the pipeline; they are **not comparable** with the paper's.

Speedups are measured as the paper does: training time without data loading
(``compute_seconds`` of the run log) of the preset's baseline divided by the run's; and in
device-time too (those seconds times the run's devices), beside the paper's speedups turned
into device-time with the paper's device counts (:class:`~mgvsr.presets.PaperDevices`: its
4x minibatch ran on 4x the GPUs).  Verdicts on speed use the calibrated speedup, which a shared
machine does not move (:mod:`mgvsr.costs`).  A run's log records its devices, samples per device,
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

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from mgvsr import runs
from mgvsr.claims import render_claims, what_reproduced
from mgvsr.costs import Measured, calibrate, compare
from mgvsr.device import resolve_device
from mgvsr.distributed import rank_world
from mgvsr.errors import MgvsrError
from mgvsr.launch import RunResult, run_preset, run_setup
from mgvsr.models import PRETRAINED_FLOW, FlowInit, SpynetRequiredError, flow_init, spynet_required_message
from mgvsr.options import RunOptions
from mgvsr.presets import ALL_TABLES, PaperDevices, Preset, Scale, get_preset, get_scale, table_runs
from mgvsr.report import bicubic_scores
from mgvsr.tables import Row, add_verdicts

# --------------------------------------------------------------------------------------
# At which scale
# --------------------------------------------------------------------------------------


def micro_batch(preset: Preset, scale: str | Scale, device: str) -> int | None:
    """On a CPU at a scale that asks for it: micro-batches of the baseline's share of a process (when it
    divides the run's), else None (the whole minibatch at once)."""
    scale = get_scale(scale)
    if not scale.micro_batch_on_cpu or resolve_device(device).type != "cpu":
        return None
    base = get_preset(preset.baseline) if preset.baseline else preset
    world = rank_world()[1]
    base_batch = base.at_scale(scale).plan.stages[0].batch // world
    return math.gcd(preset.at_scale(scale).plan.stages[0].batch // world, base_batch) or None


def scale_precision(scale: str | Scale, options: RunOptions) -> RunOptions:
    """``options`` with mixed precision on where ``scale`` asks for it on a CPU (``Scale.amp_on_cpu``)."""
    if get_scale(scale).amp_on_cpu and not options.amp and resolve_device(options.device).type == "cpu":
        return options.replace(amp=True)
    return options


def run_options(preset: Preset, scale: str | Scale, options: RunOptions) -> RunOptions:
    """The options a run of ``preset`` at ``scale`` trains with, from the table's ``options``: the
    scale's precision (:func:`scale_precision`), micro-batches (unless ``options.micro_batch`` says) and
    checkpoint interval; no dataset root for the embedded clips."""
    scale = get_scale(scale)
    run = preset.at_scale(scale)
    options = scale_precision(scale, options)
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


OTHER_CODE = "other code"  # the status of a finished run that other code trained (shown, not counted)


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
    :func:`table_flows`).  With ``train=False`` a finished run is found whatever number of processes and
    micro-batches it trained with, and without ``options.spynet`` whatever SpyNet it started from (its
    spec and log say which)."""
    scale = get_scale(scale)
    run = preset.at_scale(scale)
    folder = folder or runs.run_folder(out, preset.name)
    if train:
        result: RunResult = run_preset(run, folder, run_options(preset, scale, options), search=out)
        return TableRun(preset, result.folder, result.summary, result.status)
    # reading what is finished: whatever SpyNet (unless named), processes and micro-batches it trained with
    ignore = ("world_size", "micro_batch") + (("spynet",) if options.spynet is None and run.model in PRETRAINED_FLOW else ())
    spec = scaled_spec(preset, scale, options.replace(spynet=options.spynet or FlowInit(run.model)))
    decision = runs.decide(folder, spec, search=out, ignore=ignore)
    have = runs.read_spec(folder) if decision.kind == "refused" else None
    if have is not None and runs.other_code(have, spec) is not None and runs.finished_summary(folder) is not None:
        options.say(f"{preset.name}: {folder} was {runs.other_code(have, spec)}: shown, not counted")
        return TableRun(preset, folder, runs.finished_summary(folder), OTHER_CODE)
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
# A table's rows
# --------------------------------------------------------------------------------------


def table_seeds(scale: Scale, first: int) -> list[int]:
    """The seeds every run of a table trains with at ``scale``: ``first`` and the scale's ``noise_seeds`` more."""
    return [first + k for k in range(scale.noise_seeds + 1)]


def seed_folder(out: str | Path, preset: Preset, seed: int, first: int) -> Path:
    """Where seed ``seed`` of ``preset`` trains: ``out/<name>`` for the first seed, ``out/<name>-seed<k>``."""
    return runs.run_folder(out, preset.name if seed == first else f"{preset.name}-seed{seed}")


def train_runs(presets: Sequence[Preset], scale: Scale, out: Path, options: RunOptions, train: bool
               ) -> dict[str, list[TableRun]]:
    """Every preset at ``scale`` with the first seed and the scale's ``noise_seeds`` more (``{name: [runs]}``,
    the first seed's first): trained, resumed, found finished or reused (:func:`run_one`)."""
    say = options.log or (lambda message: None)
    flows = table_flows(presets, scale, options.spynet, say) if (train or options.spynet is not None) else {}
    seeds = table_seeds(scale, options.seed)
    trained: dict[str, list[TableRun]] = {}
    for seed in seeds:  # every preset with one seed, then the next: a table is readable after the first pass
        for preset in presets:
            flow = flows.get(preset.at_scale(scale).model)
            trained.setdefault(preset.name, []).append(
                run_one(preset, scale, out, options.replace(seed=seed, spynet=flow), train=train,
                        folder=seed_folder(out, preset, seed, seeds[0])))
    return trained


def _row(runs_of: list[TableRun], scale: Scale, results: dict[str, TableRun]) -> Row:
    result = runs_of[0]
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
               paper_speedup_device=paper_device, spynet=(spec or {}).get("spynet"),
               seeds=[t.summary["psnr"] for t in runs_of
                      if t.summary and t.summary.get("psnr") is not None and t.status != OTHER_CODE])


def add_costs(rows: list[Row], device: str, progress: bool = False) -> None:
    """Fill ``speedup_flops``, ``speedup_calibrated``, ``speedup_to_baseline_psnr`` and ``flags`` of every
    finished row with a finished baseline among ``rows`` (:func:`mgvsr.costs.compare`), with one
    calibration pass over all their step configurations on ``device``."""
    done = {r.preset: r for r in rows if r.psnr is not None and r.status != OTHER_CODE}
    measured = {name: Measured.read(r.folder, name) for name, r in done.items()}
    pairs = [(r, done[r.baseline]) for r in done.values() if r.baseline in done]
    if not pairs:
        return
    configs = [c for r, b in pairs for m in (measured[r.preset], measured[b.preset]) for c, _ in m.cost.stages]
    calibrated = calibrate(configs, device, progress=progress)
    for r, b in pairs:
        found = compare(measured[b.preset], measured[r.preset], calibrated)
        r.speedup_flops, r.speedup_calibrated = found["speedup_flops"], found["speedup_calibrated"]
        r.speedup_to_baseline_psnr, r.flags = found["speedup_to_baseline_psnr"], found["flags"]


def expand_tables(table: str | int) -> list[str]:
    """``"all"``: every table of :data:`mgvsr.presets.ALL_TABLES`; else the table itself."""
    return list(ALL_TABLES) if str(table) == "all" else [str(table)]


def reproduce_tables(tables: Sequence[str | int], scale: str | Scale = "smoke", out: str | Path = "runs/reproduce",
                     options: RunOptions | None = None, *, train: bool = True, costs: bool = True) -> dict[str, list[Row]]:
    """Run (or find) every preset of each of ``tables`` at ``scale`` into ``out`` (a run shared by two
    tables, or identical to another's, trains once) and return each table's rows, with the costs of
    one calibration pass (:func:`add_costs`; not with ``costs=False``) and the verdicts
    (:func:`mgvsr.tables.add_verdicts`)."""
    scale = get_scale(scale)
    out = Path(out)
    options = options or RunOptions()
    presets = {str(t): table_runs(t) for t in tables}
    every = list({p.name: p for ps in presets.values() for p in ps}.values())
    if scale.dataset is None and options.root is None and any(p.dataset != "sample" for p in every):
        datasets = sorted({p.dataset for p in every})
        raise MgvsrError(f"table {', '.join(presets)} at scale {scale.name} trains on {', '.join(datasets)}: give its "
                         "root (--root DIR), or use scale 'smoke' (the sample clips)")
    trained = train_runs(every, scale, out, options, train)
    firsts = {name: t[0] for name, t in trained.items()}
    rows = {name: _row(t, scale, firsts) for name, t in trained.items()}
    if costs:
        add_costs(list(rows.values()), options.device, options.progress)
    finished = [Path(r.folder) for r in rows.values() if r.psnr is not None]
    # bicubic on the clips (and channel) the runs were scored on; on the sample clips only (cheap)
    bicubic = bicubic_scores(finished)[0] if scale.dataset == "sample" and finished else None
    result = {}
    for table, ps in presets.items():
        result[table] = add_verdicts([_copy(rows[p.name]) for p in ps], None if bicubic is None else bicubic["psnr"])
    return result


def _copy(row: Row) -> Row:
    return Row(**{k: v for k, v in row.__dict__.items()})


def reproduce_table(table: str | int, scale: str | Scale = "smoke", out: str | Path = "runs/reproduce",
                    options: RunOptions | None = None, *, train: bool = True) -> list[Row]:
    """Run (or find) every preset of ``table`` at ``scale`` into ``out`` and return its rows
    (:func:`reproduce_tables`): the table's presets in the paper's order, followed by their baselines.

    ``options``: how the runs are executed (:class:`~mgvsr.options.RunOptions`): ``options.root`` is
    the dataset root for the paper scale (REDS or Vimeo-90K; not needed for the sample clips);
    ``options.spynet`` pretrained SpyNet weights (or ``"none"``) for the BasicVSR-family runs, which
    refuse to train without (:func:`table_flows`).  ``train=False``: train nothing, report what is
    already finished under ``out``.
    """
    return reproduce_tables([table], scale, out, options, train=train)[str(table)]


def summary_rows(scale: str | Scale, out: str | Path, options: RunOptions | None = None) -> list[Row]:
    """The rows of every table at ``scale`` as finished under ``out`` (nothing trains; one calibration pass),
    each run once."""
    tables = reproduce_tables(ALL_TABLES, scale, out, options, train=False)
    return list({r.preset: r for rows_of in tables.values() for r in rows_of}.values())


def summary(scale: str | Scale, out: str | Path, options: RunOptions | None = None) -> list:
    """What reproduced (:func:`mgvsr.claims.what_reproduced`): every claim of the paper decided from the
    finished runs of every table under ``out`` at ``scale`` (:func:`summary_rows`)."""
    rows = {r.preset: r for r in summary_rows(scale, out, options)}
    return what_reproduced(rows, comparable_datasets=get_scale(scale).dataset is None)


def write_summary(scale: str | Scale, out: str | Path, options: RunOptions | None = None) -> tuple[str, Path]:
    """:func:`summary` rendered (:func:`mgvsr.claims.render_claims`), and written to
    ``out/what-reproduced-<scale>.md``; returns the text and the path."""
    scale = get_scale(scale)
    text = render_claims(summary(scale, out, options), scale.name)
    path = Path(out) / f"what-reproduced-{scale.name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return text, path
