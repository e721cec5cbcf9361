"""What the tutorial notebooks share: the scale they run at, and where their training runs live.

Several notebooks use the same training runs: notebook 1 trains the demo (baseline against
ours on the sample clips), notebooks 5, 6 and 8 read it; notebooks 5 and 7 share the runs of
the paper's tables.  They find each other's runs through :func:`runs_dir`:

- run headless (``tools/run_notebooks.py`` gives every notebook ``output_dir =
  <artifacts>/<notebook>``): ``<artifacts>/runs``, beside the notebooks' own folders;
- run interactively (``output_dir`` empty): ``mgvsr.paths.cache_dir() / "tutorial"``.

A run that is already finished there is read, not retrained, so the first notebook that
needs it pays for it and the others are quick.

Scales (:data:`mgvsr.presets.SCALES`): ``"lesson"``, every notebook's default, trains long
enough for the models to beat bicubic on the held-out clips (minutes per notebook on a 2-core
CPU); ``"smoke"`` runs the mechanics only, for CI (the models learn nothing); ``"paper"`` uses
the sizes the experiments are meant to have (the paper's models on a GPU).  ``MGVSR_SCALE``
overrides a notebook's ``scale`` parameter (:func:`check_setup`: CI checks the notebooks at
``smoke`` with nbval).

At ``lesson`` and ``paper`` scale the demo runs are the ones ``mgvsr demo`` writes: the README's
first command (``mgvsr demo``, run in the repository root) trains them into ``runs/demo``
(:data:`DEMO_OUT`); a notebook's ``demo_out`` parameter points elsewhere.  The run folder rule
(:mod:`mgvsr.runs`) decides whether a run found there is the one the notebook needs; a run of
another recipe is an error, never read.  Likewise the table runs at ``lesson`` scale are those
of ``mgvsr reproduce --table N --scale lesson --out runs/lesson`` (:data:`REPRODUCE_OUT`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from mgvsr import demo as demo_module
from mgvsr import reproduce, runs
from mgvsr.errors import MgvsrError
from mgvsr.models import load_model
from mgvsr.options import RunOptions
from mgvsr.paths import REPO_DIR, cache_dir
from mgvsr.presets import ALL_TABLES, by_scale, get_preset, get_scale, list_presets
from mgvsr.schedule import Plan

# Baseline iterations of the demo at each scale (None: the preset's full length, as `mgvsr demo`).
DEMO_ITERATIONS = {"smoke": 24, "lesson": None, "paper": None}
DEMO_EVALS = {"smoke": 2, "lesson": 6, "paper": 6}  # 6: `mgvsr demo`'s default
DEMO_SEEDS = {"smoke": 1, "lesson": 3, "paper": 3}  # the demo's seeds in the notebooks: `mgvsr demo --seeds 3`

# Where `mgvsr demo` and `mgvsr reproduce --scale lesson --out runs/lesson`, run in the
# repository root as the README says, write their runs; the notebooks read them there.
DEMO_OUT = REPO_DIR / "runs" / "demo"
# BasicVSR++'s demo (beyond the paper), where `mgvsr demo --model basicvsrpp --out runs/demo-bvpp` writes
# (with the seeds `--seeds N` trained there; one is trained where none is)
BVPP_DEMO_OUT = REPO_DIR / "runs" / "demo-bvpp"
REPRODUCE_OUT = REPO_DIR / "runs" / "lesson"

SCALE_ENV = "MGVSR_SCALE"


def check_scale(scale: str) -> str:
    """``scale`` if it names one of :data:`mgvsr.presets.SCALES`, else MgvsrError."""
    return get_scale(scale).name


def check_setup(scale: str | None = None, data_root: str | None = None) -> str | None:
    """A notebook's first check: the scale it runs at (its ``scale`` parameter, or ``MGVSR_SCALE``
    when set), and what is missing, each with the command that fixes it, instead of a traceback
    later.  Prints one line per item; raises MgvsrError for what the notebook cannot run without."""
    if scale is not None:
        scale = check_scale(os.environ.get(SCALE_ENV) or scale)
    problems, notes = [], []
    for module, fix in (("ipywidgets", 'pip install -e ".[notebooks]"'),
                        ("jupyterlab_widgets", 'pip install -e ".[notebooks]"  (then reload the JupyterLab page)')):
        if importlib.util.find_spec(module) is None:
            notes.append(f"missing: {module} (the explorers' widgets will not display): {fix}")
    if importlib.util.find_spec("skimage") is None:  # the photographs the sample clips are rendered from
        problems.append('missing: scikit-image (the sample clips are rendered from its photographs): '
                        'pip install -e ".[notebooks]"')
    if data_root and not Path(data_root).is_dir():
        problems.append(f"missing: data_root {data_root!r} is not a folder (set the notebook's data_root "
                        "parameter to your dataset's root, or to \"\" for the sample clips)")
    for line in notes + problems:
        print(line)
    if problems:
        raise MgvsrError("; ".join(problems))
    at = "" if scale is None else f", scale {scale!r}" + (f" (from {SCALE_ENV})" if os.environ.get(SCALE_ENV) else "")
    print(f"setup ok{at}" + ("" if notes else "; widgets available"))
    return scale


def save_figure(fig, output_dir: str | Path | None, name: str) -> Path | None:
    """Save ``fig`` as ``output_dir/name`` (folders created) when ``output_dir`` is set (a
    notebook's ``output_dir`` parameter); return the path, or None when it is empty."""
    if not output_dir:
        return None
    path = Path(output_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def runs_dir(output_dir: str | Path | None) -> Path:
    """Where the series keeps the training runs its notebooks share (see the module docstring)."""
    if output_dir:
        return Path(output_dir).resolve().parent / "runs"
    return cache_dir() / "tutorial"


def demo_dir(scale: str, output_dir: str | Path | None, demo_out: str | Path | None = None,
             model: str = "basicvsr") -> Path:
    """The folder of the demo runs of ``model`` at ``scale``: ``runs/demo-smoke`` (``demo-<model>-smoke``)
    beside the notebooks' runs at ``smoke``; otherwise ``demo_out``, by default where the README's
    command writes (:data:`DEMO_OUT`; BasicVSR++: :data:`BVPP_DEMO_OUT`)."""
    if check_scale(scale) == "smoke":
        return runs_dir(output_dir) / ("demo-smoke" if model == "basicvsr" else f"demo-{model}-smoke")
    if demo_out:
        return Path(demo_out)
    return {"basicvsr": DEMO_OUT, "basicvsrpp": BVPP_DEMO_OUT}[model]


def demo(scale: str, output_dir: str | Path | None, device: str = "auto", progress: bool = True,
         demo_out: str | Path | None = None, model: str = "basicvsr") -> dict:
    """The demo's report (``report.json``'s dict) at ``scale``: read when both runs are finished
    in :func:`demo_dir`, trained (or resumed) otherwise, through :func:`mgvsr.demo.run_demo`.

    ``smoke``: both runs shrunk to :data:`DEMO_ITERATIONS` baseline iterations (the same number of
    samples each); ``lesson`` and ``paper``: the demo as ``mgvsr demo`` runs it, in the folder
    ``mgvsr demo`` writes, so that the README's demo is reused, with three seeds of baseline and ours
    (:data:`DEMO_SEEDS`, ``mgvsr demo --seeds 3``: the noise each notebook quotes, :func:`demo_noise`).
    The series teaches the paper: the demo's third run (ours + mixed precision, beyond the paper) is not
    trained here.  ``model="basicvsrpp"``: BasicVSR++'s demo (beyond the paper): the seeds ``mgvsr demo
    --model basicvsrpp --seeds N`` finished in the folder, one trained here where none is.
    """
    folder = demo_dir(scale, output_dir, demo_out, model)
    seeds = by_scale(DEMO_SEEDS, scale) if model == "basicvsr" else max(1, demo_module.finished_seeds(folder))
    return demo_module.run_demo(folder, model, RunOptions(device=device, progress=progress),
                                iterations=by_scale(DEMO_ITERATIONS, scale), evals=by_scale(DEMO_EVALS, scale),
                                fast=False, seeds=seeds)


def reproduce_dir(scale: str, output_dir: str | Path | None, reproduce_out: str | Path | None = None) -> Path:
    """The folder of the paper's table runs at ``scale`` that notebooks 5 and 7 share: beside the
    notebooks' runs at ``smoke`` and ``paper``; at ``lesson`` ``reproduce_out``, by default where
    ``mgvsr reproduce --scale lesson --out runs/lesson`` writes (:data:`REPRODUCE_OUT`)."""
    if check_scale(scale) == "lesson":
        return Path(reproduce_out) if reproduce_out else REPRODUCE_OUT
    return runs_dir(output_dir) / f"reproduce-{scale}"


# --------------------------------------------------------------------------------------
# The demo's results, for the notebooks' figures
# --------------------------------------------------------------------------------------


def paper_points(table: str = "1", model: str = "basicvsr_m") -> list[dict]:
    """The paper's published (speedup, PSNR) of a table's runs of ``model``: dicts with ``label``
    (the paper's row and setting), ``speedup`` (1 for the baseline) and ``psnr``."""
    points = []
    for p in list_presets(table=table, model=model):
        paper = p.paper or {}
        if paper.get("psnr") is None:
            continue
        speedup = 1.0 if p.baseline is None else paper.get("speedup")
        if speedup is None:
            continue
        points.append({"label": f"{p.row} {p.name.rsplit('/', 1)[-1]}", "speedup": speedup, "psnr": paper["psnr"]})
    if not points:
        raise MgvsrError(f"the paper publishes no speedup and PSNR for {model} in table {table}")
    return points


def demo_points(report: dict) -> list[dict]:
    """The demo's baseline and ours as (speedup, PSNR) points (speedup: training time without
    data loading, as the paper reports)."""
    return [{"label": "baseline", "speedup": 1.0, "psnr": report["baseline"]["psnr"]},
            {"label": "ours", "speedup": report["speedup_compute"], "psnr": report["ours"]["psnr"]}]


def demo_runs(scale: str, output_dir: str | Path | None, demo_out: str | Path | None = None) -> dict[str, dict]:
    """The demo's runs at ``scale`` as their logs tell: ``{run: {"plan": Plan, "evals": [...],
    "summary": end record}}`` (after :func:`demo` has trained them)."""
    folder = demo_dir(scale, output_dir, demo_out)
    found = {}
    for run in demo_module.RUNS:
        if not (folder / run / runs.LOG_FILE).is_file():
            raise MgvsrError(f"no demo run in {folder / run}: run series.demo({scale!r}, ...) first")
        record = runs.read_run(folder / run)
        found[run] = {"plan": Plan.from_dict(record.plan), "evals": record.evals, "summary": record.end}
    return found


def report_noise(report: dict) -> dict | None:
    """The run-to-run noise in a demo's report (:func:`demo`'s dict), where it trained baseline and ours with
    several seeds: ``{"baseline": {...}, "ours": {...}, "band", "verdict"}``, each run's ``seeds``,
    ``psnr_mean`` and ``psnr_sd``, ``band`` twice the baseline's standard deviation (the grey band of the
    figures) and ``verdict`` ours against the baseline under the verdict rule of :mod:`mgvsr.tables`;
    None where it trained one seed (``smoke``)."""
    if not report.get("psnr_verdict"):
        return None
    runs_noise = {run: {k: report[run][k] for k in ("seeds", "psnr_mean", "psnr_sd")} for run in demo_module.RUNS}
    return {**runs_noise, "band": 2 * report["baseline"]["psnr_sd"], "verdict": report["psnr_verdict"]}


def demo_noise(scale: str, output_dir: str | Path | None, demo_out: str | Path | None = None,
               model: str = "basicvsr") -> dict | None:
    """:func:`report_noise` of the demo of ``model`` at ``scale`` as its folder holds it (for a notebook that
    reads the demo another notebook trained); None where it has not run yet."""
    path = demo_dir(scale, output_dir, demo_out, model) / "report.json"
    return report_noise(json.loads(path.read_text())) if path.is_file() else None


def demo_verdict(report: dict) -> str:
    """What the demo's numbers allow one to say, in a sentence or two: a speed comparison means
    something only where both runs beat bicubic."""
    bic = report["bicubic"]["psnr"]
    base, ours = report["baseline"]["psnr"], report["ours"]["psnr"]
    speed = (f"ours trained {report['speedup_compute']:.2f}x faster than the baseline "
             f"({report['speedup_wall']:.2f}x in wall-clock time with data loading) on the same samples.")
    if base <= bic or ours <= bic:
        below = " and ".join(n for n, v in (("the baseline", base), ("ours", ours)) if v <= bic)
        return (f"{speed[0].upper()}{speed[1:]} But {below} did not beat bicubic ({bic:.2f} dB): these runs "
                "are too short to compare accuracy; train longer (scale='lesson') for that.")
    return (f"{speed[0].upper()}{speed[1:]} Both beat bicubic ({bic:.2f} dB); ours ended "
            f"{ours - base:+.2f} dB from the baseline.")


def demo_models(scale: str, output_dir: str | Path | None, demo_out: str | Path | None = None) -> dict:
    """The demo's trained models at ``scale`` (``{"baseline": model, "ours": model}``, eval mode),
    from the ``final.pth`` of each run (after :func:`demo` has trained them)."""
    folder = demo_dir(scale, output_dir, demo_out)
    models = {}
    for run, preset in demo_module.demo_presets().items():
        path = folder / run / runs.FINAL
        if not path.is_file():
            raise MgvsrError(f"no trained weights at {path}: run series.demo({scale!r}, ...) first")
        models[run] = load_model(preset.model, path)
    return models


def workload_text(names: tuple[str, ...] = ("table1/basicvsr_m/baseline", "table1/basicvsr_m/ours")) -> str:
    """How much a run of each preset processes: optimizer steps, training clips, LR frames and LR
    pixels (:attr:`mgvsr.schedule.Plan.work`), and each against the first."""
    plans = [get_preset(name).plan for name in names]
    first = plans[0]
    lines = []
    for name, plan in zip(names, plans):
        frames = sum(s.samples * s.frames for s in plan.stages)
        lines.append(f"{name}: {plan.total_iterations:,} steps of {plan.stages[0].batch} clips = {plan.samples:,} clips, "
                     f"{frames:,} LR frames, {plan.work / 1e9:,.0f} G LR pixels"
                     + ("" if plan is first else f" ({first.work / plan.work:.2f}x fewer pixels)"))
    return "\n".join(lines)


def stage_times_text(runs: dict[str, dict]) -> str:
    """The compute seconds of every stage of each run (:func:`demo_runs`' dict), one line per run."""
    lines = []
    for name, run in runs.items():
        seconds = (run["summary"] or {}).get("stage_compute_seconds")
        if seconds is None:
            raise MgvsrError(f"run {name!r} has not finished: no stage times yet")
        total = sum(seconds)
        stages = ", ".join(f"{s.label} {t:.1f} s ({100 * t / total:.0f}%)" for s, t in zip(run["plan"].stages, seconds))
        lines.append(f"{name}: {stages}; total {total:.1f} s")
    return "\n".join(lines)


def stage_costs(runs: dict[str, dict], reference: str = "baseline") -> list[dict]:
    """Every stage of every run (:func:`demo_runs`' dict) against the ``reference`` run's cost per
    training sample: what LR pixels predict and what the compute time measured.

    Rows: ``run``, ``stage`` (label), ``batch``, ``micro_batches`` (forward/backward passes per step, from
    the run's setup), ``samples``, ``pixels`` (LR pixels per sample relative to the reference's) and
    ``seconds`` (compute seconds per sample relative to the reference's; None before a run finished).
    """
    if reference not in runs:
        raise MgvsrError(f"no run {reference!r} among {', '.join(runs)}")

    def per_sample(run: dict) -> list[float | None]:
        seconds = (run["summary"] or {}).get("stage_compute_seconds")
        if seconds is None:
            return [None] * len(run["plan"])
        return [t / s.samples for t, s in zip(seconds, run["plan"].stages)]

    ref_plan = runs[reference]["plan"]
    ref_pixels = ref_plan.work / ref_plan.samples
    ref_total = (runs[reference]["summary"] or {}).get("compute_seconds")
    ref_seconds = ref_total / ref_plan.samples if ref_total else None
    rows = []
    for name, run in runs.items():
        micro = ((run["summary"] or {}).get("setup") or {}).get("micro_batches") or [None] * len(run["plan"])
        for s, t, m in zip(run["plan"].stages, per_sample(run), micro):
            rows.append({"run": name, "stage": s.label, "batch": s.batch, "micro_batches": m, "samples": s.samples,
                         "pixels": s.frames * s.patch**2 / ref_pixels,
                         "seconds": None if t is None or not ref_seconds else t / ref_seconds})
    return rows


def stage_costs_text(runs: dict[str, dict], reference: str = "baseline") -> str:
    """:func:`stage_costs` as a table, then the speedup of every other run over ``reference`` as LR
    pixels predict it and as compute time measured it (the two differ by what the pixel count leaves
    out: per-call and per-frame costs that do not shrink with the shape, and the minibatch's)."""
    rows = stage_costs(runs, reference)
    lines = [f"{'run':>10}  {'stage':>6}  {'batch':>5}  {'passes/step':>11}  {'samples':>7}  "
             f"{'LR pixels/sample':>16}  {'compute s/sample':>16}",
             f"{'':>10}  {'':>6}  {'':>5}  {'':>11}  {'':>7}  {f'(x {reference})':>16}  {f'(x {reference})':>16}"]
    for r in rows:
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
        passes = "-" if r["micro_batches"] is None else str(r["micro_batches"])
        lines.append(f"{r['run']:>10}  {r['stage']:>6}  {r['batch']:>5}  {passes:>11}  {r['samples']:>7,}  "
                     f"{r['pixels']:>16.2f}  {seconds:>16}")
    ref = runs[reference]
    for name, run in runs.items():
        if name == reference:
            continue
        predicted = ref["plan"].work / run["plan"].work
        ref_s, run_s = ((r["summary"] or {}).get("compute_seconds") for r in (ref, run))
        measured = f"{ref_s / run_s:.2f}x" if ref_s and run_s else "not measured yet"
        lines.append(f"{name} against {reference} (the same samples): {predicted:.2f}x by LR pixels, "
                     f"{measured} measured (compute time)")
    return "\n".join(lines)


# Notebook 7's tables where its ``table`` parameter is empty: every one at lesson and paper scale (the
# stored outputs), Table 1 alone at smoke (CI: the mechanics, in minutes).
TABLES_BY_SCALE = {"smoke": ("1",), "lesson": ALL_TABLES, "paper": ALL_TABLES}


def tables_for(table: str, scale: str) -> list[str]:
    """The tables notebook 7 reproduces: ``table`` (``"all"``: every one), or the scale's when empty."""
    if not table:
        return list(by_scale(TABLES_BY_SCALE, scale, "tables"))
    return reproduce.expand_tables(table)


def torchrun_command(argv: list[str], nproc: int) -> list[str]:
    """``torchrun --standalone --nproc_per_node NPROC -m mgvsr ARGV`` (as ``python -m torch.distributed.run``,
    in this kernel's Python)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "mgvsr", *argv]


def torchrun(argv: list[str], nproc: int, log: Callable[[str], None] = print) -> None:
    """Run ``mgvsr ARGV`` on ``nproc`` processes under torchrun (DDP: NCCL on GPUs, gloo on a CPU) as a
    subprocess of the notebook, its output streamed to ``log`` line by line as it comes; MgvsrError naming
    the command and its exit status when it fails.  On a CPU each process gets its share of the cores."""
    command = torchrun_command(argv, nproc)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))}
    log("$ " + " ".join(command[2:]))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=REPO_DIR) as process:
        for line in process.stdout:
            log(line.rstrip())
    if process.returncode:
        raise MgvsrError(f"{' '.join(command[2:])} exited with status {process.returncode} (its output is above)")


def reproduce_argv(tables: list[str], scale: str, out: Path, options: RunOptions) -> list[str]:
    """The ``mgvsr reproduce`` arguments that train ``tables`` as notebook 7 does (one invocation per table)."""
    if len(tables) > 1 and tables != list(ALL_TABLES):
        raise MgvsrError(f"one table or all of them, got {', '.join(tables)}")
    argv = ["reproduce", "--table", tables[0] if len(tables) == 1 else "all", "--scale", scale, "--out", str(out),
            "--device", options.device, "--no-progress"]
    if options.root is not None:
        argv += ["--root", str(options.root)]
    if options.spynet is not None:
        argv += ["--spynet", str(options.spynet)]
    return argv
