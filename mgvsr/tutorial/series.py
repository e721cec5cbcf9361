"""What the tutorial notebooks share: the scale they run at, and where their training runs live.

Several notebooks use the same training runs: notebook 1 trains the demo (baseline against
ours on the sample clips), notebooks 5, 6 and 8 read it; notebooks 5 and 7 share the runs of
the paper's tables.  They find each other's runs through :func:`runs_dir`:

- run headless (``tools/run_notebooks.py`` gives every notebook ``output_dir =
  <artifacts>/<notebook>``): ``<artifacts>/runs``, beside the notebooks' own folders;
- run interactively (``output_dir`` empty): ``mgvsr.paths.cache_dir() / "tutorial"``.

A run that is already finished there is read, not retrained, so the first notebook that
needs it pays for it and the others are quick.

Scales: ``"ci"`` runs each notebook top to bottom on a 2-core CPU in a minute or two (the
numbers show the mechanics, not the paper's results); ``"paper"`` uses the sizes the
experiments are meant to have (the demo's full length; the paper's models on a GPU).
"""

from __future__ import annotations

from pathlib import Path

from mgvsr import demo as demo_module
from mgvsr import runs
from mgvsr.errors import MgvsrError
from mgvsr.models import load_model
from mgvsr.paths import cache_dir
from mgvsr.presets import by_scale, get_preset, get_scale, list_presets
from mgvsr.schedule import Plan

# Baseline iterations of the demo at each scale (None: the preset's full length).
DEMO_ITERATIONS = {"ci": 24, "paper": None}
DEMO_EVALS = {"ci": 2, "paper": 6}


def check_scale(scale: str) -> str:
    """``scale`` if it names one of :data:`mgvsr.presets.SCALES`, else MgvsrError."""
    return get_scale(scale).name


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


def demo_dir(scale: str, output_dir: str | Path | None) -> Path:
    """The folder of the demo runs at ``scale`` (``runs/demo-ci`` or ``runs/demo``)."""
    check_scale(scale)
    return runs_dir(output_dir) / ("demo-ci" if scale == "ci" else "demo")


def demo(scale: str, output_dir: str | Path | None, device: str = "auto", progress: bool = True) -> dict:
    """The demo's report (``report.json``'s dict) at ``scale``: read when both runs are finished
    in :func:`demo_dir`, trained (or resumed) otherwise, through :func:`mgvsr.demo.run_demo`.

    ``ci``: both runs shrunk to :data:`DEMO_ITERATIONS` baseline iterations (the same number of
    samples each); ``paper``: the demo as ``mgvsr demo`` runs it.  The series teaches the paper:
    the demo's third run (ours + mixed precision, beyond the paper) is not trained here.
    """
    folder = demo_dir(scale, output_dir)
    return demo_module.run_demo(folder, device=device, iterations=by_scale(DEMO_ITERATIONS, scale),
                                evals=by_scale(DEMO_EVALS, scale), progress=progress, fast=False)


def reproduce_dir(scale: str, output_dir: str | Path | None) -> Path:
    """The folder of the paper's table runs at ``scale`` that notebooks 5 and 7 share."""
    check_scale(scale)
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


def demo_runs(scale: str, output_dir: str | Path | None) -> dict[str, dict]:
    """The demo's runs at ``scale`` as their logs tell: ``{run: {"plan": Plan, "evals": [...],
    "summary": end record}}`` (after :func:`demo` has trained them)."""
    folder = demo_dir(scale, output_dir)
    found = {}
    for run in demo_module.RUNS:
        if not (folder / run / runs.LOG_FILE).is_file():
            raise MgvsrError(f"no demo run in {folder / run}: run series.demo({scale!r}, ...) first")
        record = runs.read_run(folder / run)
        found[run] = {"plan": Plan.from_dict(record.plan), "evals": record.evals, "summary": record.end}
    return found


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
                "are too short to compare accuracy; train longer (scale='paper') for that.")
    return (f"{speed[0].upper()}{speed[1:]} Both beat bicubic ({bic:.2f} dB); ours ended "
            f"{ours - base:+.2f} dB from the baseline.")


def demo_models(scale: str, output_dir: str | Path | None) -> dict:
    """The demo's trained models at ``scale`` (``{"baseline": model, "ours": model}``, eval mode),
    from the ``final.pth`` of each run (after :func:`demo` has trained them)."""
    folder = demo_dir(scale, output_dir)
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
