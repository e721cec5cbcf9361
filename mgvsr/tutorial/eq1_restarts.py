"""Eq. 1's restarts against one cosine over the same shapes: a short training of each (notebook 4).

The two runs differ only in the learning rate: the same model, seed, samples and multigrid
shapes, once with Eq. 1 (a restart at every stage) and once with one cosine over the whole
run, the schedule a multigrid plan would get from the baseline's recipe.

One cosine over several stages is :func:`mgvsr.schedule.one_cosine_over_stages` (stage by stage,
within a few percent of the peak LR: :func:`mgvsr.schedule.max_lr_gap`); the trainer needs no
special case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from mgvsr import runs
from mgvsr.presets import Preset, by_scale
from mgvsr.schedule import Plan, multigrid, one_cosine_over_stages
from mgvsr.launch import run_preset
from mgvsr.options import RunOptions


@dataclass(frozen=True)
class RestartSettings:
    """The short training of notebook 4 at one scale."""

    model: str
    spatial: tuple[int, ...]
    temporal: tuple[int, ...]
    iterations: int
    batch: int
    lr: float
    evals: int


SETTINGS = {
    # a minute on 2 CPU cores: tiny shapes, a few dozen steps
    "smoke": RestartSettings("basicvsr_cpu", (8, 16), (4, 6, 8), iterations=36, batch=2, lr=2e-3, evals=3),
    # the demo's multigrid shapes and clips (300 steps of 8): about a minute and a half per run on 2 CPU cores
    "lesson": RestartSettings("basicvsr_cpu", (16, 32), (4, 6, 8), iterations=300, batch=8, lr=2e-3, evals=6),
    # the demo's shapes and length (tens of minutes on a CPU, a few on a GPU)
    "paper": RestartSettings("basicvsr_cpu", (16, 32), (4, 6, 8), iterations=600, batch=8, lr=2e-3, evals=10),
}


def restart_plans(settings: RestartSettings) -> dict[str, Plan]:
    """``{"Eq. 1 (restarts)": multigrid plan, "one cosine": the same shapes without restarts}``."""
    s = settings
    plan = multigrid(s.iterations, max(s.spatial), max(s.temporal), s.batch, s.lr, spatial=s.spatial,
                     temporal=s.temporal, name="Eq. 1 (restarts)")
    return {"Eq. 1 (restarts)": plan, "one cosine": one_cosine_over_stages(plan)}


def restart_presets(settings: RestartSettings) -> dict[str, Preset]:
    """The two runs of :func:`restart_plans` as presets on the sample clips (no warm start)."""
    return {name: Preset(name=f"tutorial/eq1/{'eq1' if name.startswith('Eq') else 'one-cosine'}",
                         model=settings.model, dataset="sample", plan=plan)
            for name, plan in restart_plans(settings).items()}


def compare_restarts(out: str | Path, scale: str = "lesson", device: str = "auto", progress: bool = True,
                     seed: int = 0) -> dict[str, dict]:
    """Train the two plans of :func:`restart_plans` on the sample clips into ``out/<run>``.

    Returns ``{name: {"plan": Plan, "evals": [eval records], "summary": end record}}``; each
    run evaluates on the held-out sample clips ``evals`` times.  Finished runs of the same spec
    are read, not retrained (:mod:`mgvsr.runs`).
    """
    settings = by_scale(SETTINGS, scale, "restart settings")
    every = max(1, settings.iterations // settings.evals)
    results = {}
    for name, preset in restart_presets(settings).items():
        folder = Path(out) / preset.name.rsplit("/", 1)[1]
        result = run_preset(preset, folder, RunOptions(seed=seed, device=device, eval_every=every, progress=progress))
        results[name] = {"plan": preset.plan, "summary": result.summary, "evals": runs.read_run(folder).evals}
    return results


def restarts_text(results: dict[str, dict]) -> str:
    """PSNR on the held-out clips after each evaluation, one column per run."""
    names = list(results)
    its = sorted({e["it"] for r in results.values() for e in r["evals"]})
    lines = [f"{'iteration':>9}  " + "  ".join(f"{n:>17}" for n in names)]
    for it in its:
        cells = []
        for n in names:
            e = next((e for e in results[n]["evals"] if e["it"] == it), None)
            cells.append(f"{'-' if e is None else format(e['psnr'], '.2f'):>17}")
        lines.append(f"{it:>9}  " + "  ".join(cells))
    return "\n".join(lines)


def restarts_verdict(results: dict[str, dict], bicubic: float, noise: float | None = None) -> str:
    """What the two short trainings allow one to say, from their last evaluations: each against bicubic
    and the restarts against one cosine, against ``noise`` (twice the standard deviation of a run's PSNR
    over its seeds, where it was measured: :attr:`mgvsr.tables.Row.noise`'s ``band``)."""
    (name_a, a), (name_b, b) = list(results.items())[:2]
    last_a, last_b = a["evals"][-1]["psnr"], b["evals"][-1]["psnr"]
    text = (f"After {a['evals'][-1]['it']:,} steps: {name_a} {last_a:.2f} dB, {name_b} {last_b:.2f} dB "
            f"({last_a - bicubic:+.2f} and {last_b - bicubic:+.2f} dB from bicubic); "
            f"{name_a} {last_a - last_b:+.2f} dB from {name_b}")
    if min(last_a, last_b) <= bicubic:
        return text + ": a run at or below bicubic has not learnt enough for the comparison to mean anything."
    if noise is None:
        return text + " (the run-to-run noise is measured in notebook 7: compare this gap with it)."
    if abs(last_a - last_b) <= noise:
        return text + f", within the noise (2 sd of a run's seeds: ±{noise:.2f} dB): no difference."
    return text + f", {abs(last_a - last_b) / noise:.1f} times the noise (2 sd of a run's seeds: {noise:.2f} dB)."
