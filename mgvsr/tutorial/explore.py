"""What the notebook explorers show, computed from a :class:`~mgvsr.schedule.Plan`.

Plain functions, free of torch and of ipywidgets: the stage table, the share of compute
per stage, the expected speedup against the baseline, and Eq. 1 beside its printed form.
:mod:`mgvsr.widgets` only wires them to sliders; the notebooks and the tests call them
directly.

Cost model
----------
The cost of a stage is what one optimizer step costs times the stage's iterations.  By
default a step costs its LR pixels, ``batch * frames * patch**2`` (the same count as
:attr:`Plan.work`): the speedup an ideal device would give.  Real devices pay per-frame and
per-call overheads that do not shrink with the patch, so speedups from measured step times
are smaller (notebook 02, at the lesson scale: 1.89x for the demo's plan, 2.13x by pixels).
Pass ``step_times``, measured seconds per optimizer step keyed by ``(patch, frames, batch)``,
to use measurements instead::

    compute_shares(plan, step_times={(32, 7, 64): 0.21, (64, 15, 64): 1.3, ...})
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from mgvsr.errors import MgvsrError, PlanError
from mgvsr.figures import lr_axis, stage_bands
from mgvsr.presets import get_preset
from mgvsr.schedule import WARMUP_KINDS, Plan, Warmup, baseline, cosine, eq1_as_printed, multigrid

StepTimes = Mapping[tuple[int, int, int], float]  # (patch, frames, batch) -> seconds per optimizer step

PIXELS = "LR pixels (batch x frames x patch^2 per step)"
MEASURED = "measured seconds per step"

# --------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------


def parse_sizes(text: str, what: str = "sizes") -> tuple[int, ...]:
    """``"32, 64"`` (commas and/or spaces) -> ``(32, 64)``, in the order given.

    Raises PlanError naming ``text`` when it is empty or holds anything but positive integers.
    """
    items = [item for item in re.split(r"[,\s]+", str(text).strip()) if item]
    if not items:
        raise PlanError(f"{what}: expected positive integers such as '32, 64', got {text!r}")
    sizes = []
    for item in items:
        if not item.isdigit() or int(item) <= 0:
            raise PlanError(f"{what}: {item!r} in {text!r} is not a positive integer")
        sizes.append(int(item))
    return tuple(sizes)


# --------------------------------------------------------------------------------------
# Cost, shares, speedup
# --------------------------------------------------------------------------------------


def stage_costs(plan: Plan, step_times: StepTimes | None = None) -> list[float]:
    """The cost of every stage: LR pixels processed or, with ``step_times``, seconds.

    ``step_times`` must hold every stage's ``(patch, frames, batch)``; a missing shape is a
    PlanError naming it and the shapes that were given.
    """
    if step_times is None:
        return [float(s.iterations * s.batch * s.frames * s.patch**2) for s in plan.stages]
    costs = []
    for j, s in enumerate(plan.stages):
        key = (s.patch, s.frames, s.batch)
        if key not in step_times:
            given = ", ".join(f"{p}&{t} batch {b}" for p, t, b in step_times) or "none"
            raise PlanError(f"no measured step time for stage {j + 1} ({s.label}, batch {s.batch}); "
                            f"step_times has {given}")
        seconds = float(step_times[key])
        if not math.isfinite(seconds) or seconds <= 0:
            raise PlanError(f"step time of {s.label} batch {s.batch} must be a positive number of seconds, "
                            f"got {step_times[key]!r}")
        costs.append(s.iterations * seconds)
    return costs


def plan_cost(plan: Plan, step_times: StepTimes | None = None) -> float:
    """The whole plan's cost (LR pixels, or seconds with ``step_times``)."""
    return sum(stage_costs(plan, step_times))


def compute_shares(plan: Plan, step_times: StepTimes | None = None) -> list[float]:
    """Each stage's share of the plan's compute, in stage order; they sum to 1."""
    costs = stage_costs(plan, step_times)
    total = sum(costs)
    return [c / total for c in costs]


def expected_speedup(plan: Plan, baseline_plan: Plan, step_times: StepTimes | None = None) -> float:
    """How many times less ``plan`` costs than ``baseline_plan`` under the cost model."""
    return plan_cost(baseline_plan, step_times) / plan_cost(plan, step_times)


def same_samples_baseline(plan: Plan, patch: int | None = None, frames: int | None = None) -> Plan:
    """The baseline ``plan`` is measured against: one fixed shape and one cosine, the same
    iterations and batch, so it sees the same samples.

    ``patch`` and ``frames`` default to the largest of the plan (the paper's H and T).  The
    starting LR is the plan's largest.  A plan whose stages differ in batch has no such
    baseline (PlanError).
    """
    batches = {s.batch for s in plan.stages}
    if len(batches) != 1:
        raise PlanError(f"stages differ in batch ({sorted(batches)}): no same-samples baseline with one batch")
    patch = max(s.patch for s in plan.stages) if patch is None else patch
    frames = max(s.frames for s in plan.stages) if frames is None else frames
    return baseline(plan.total_iterations, patch, frames, batches.pop(), max(s.lr for s in plan.stages),
                    eta_min=plan.eta_min, name="baseline",
                    description=f"{patch}&{frames} throughout, one cosine")


# --------------------------------------------------------------------------------------
# The schedule explorer (notebook 3)
# --------------------------------------------------------------------------------------


def schedule_summary(
    spatial: Sequence[int],
    temporal: Sequence[int],
    combine: str = "hierarchical",
    iterations: int = 75_000,
    batch: int = 64,
    lr: float = 8e-4,
    step_times: StepTimes | None = None,
) -> dict:
    """Everything the schedule explorer shows, from one multigrid :class:`Plan`.

    ``spatial`` / ``temporal``: LR patch sides and clip lengths in training order;
    ``combine``: ``"hierarchical"`` or ``"synchronous"`` (see :func:`mgvsr.schedule.multigrid`).
    The baseline has the largest patch and frames throughout, the same iterations and
    batch.  Returns a dict with ``plan``, ``baseline``, ``shares`` (per stage), ``speedup``
    (baseline cost / plan cost), ``cost_model`` (a description) and ``table`` (text).
    """
    spatial, temporal = tuple(spatial), tuple(temporal)
    if not spatial or not temporal:
        raise PlanError(f"need at least one spatial and one temporal size, got {list(spatial)} and {list(temporal)}")
    plan = multigrid(iterations, max(spatial), max(temporal), batch, lr, spatial=spatial, temporal=temporal,
                     combine=combine, name=f"multigrid ({combine})")
    base = same_samples_baseline(plan)
    return dict(plan=plan, baseline=base, shares=compute_shares(plan, step_times),
                speedup=expected_speedup(plan, base, step_times),
                cost_model=PIXELS if step_times is None else MEASURED, table=plan.table())


def stage_table_html(plan: Plan, shares: Sequence[float] | None = None, scale: int = 4) -> str:
    """An HTML table of the plan's stages (the columns of :meth:`Plan.table`), with each
    stage's share of compute as a percentage and a bar when ``shares`` is given."""
    head = ["stage", "shape", "iterations", "from", "to", f"LR patch (GT x{scale})", "frames", "batch",
            "LR start", "LR end"]
    if shares is not None:
        if len(shares) != len(plan.stages):
            raise PlanError(f"{len(shares)} shares for a plan of {len(plan.stages)} stages")
        head.append("share of compute")
    cell = "padding:2px 8px;text-align:right"
    rows = ["<tr>" + "".join(f'<th style="{cell}">{html.escape(h)}</th>' for h in head) + "</tr>"]
    for j, s in enumerate(plan.stages):
        values = [str(j + 1), s.label, f"{s.iterations:,}", f"{s.start:,}", f"{s.end:,}",
                  f"{s.patch} ({s.patch * scale})", str(s.frames), str(s.batch),
                  f"{s.lr:.2e}", f"{cosine(s.lr, plan.eta_min, s.iterations, s.period):.2e}"]
        tds = "".join(f'<td style="{cell}">{html.escape(v)}</td>' for v in values)
        if shares is not None:
            pct = 100.0 * shares[j]
            bar = (f'<span style="display:inline-block;width:{pct:.1f}px;height:0.8em;'
                   f'background:#4c78a8;margin-right:4px"></span>')
            tds += f'<td style="{cell};text-align:left">{bar}{pct:.1f}%</td>'
        rows.append(f"<tr>{tds}</tr>")
    return '<table class="mgvsr-stages" style="border-collapse:collapse">' + "".join(rows) + "</table>"


def summary_text(summary: dict) -> str:
    """The explorer's numbers as plain text: the stage table, the shares, the speedup."""
    plan, base = summary["plan"], summary["baseline"]
    shares = ", ".join(f"{s.label} {100 * x:.1f}%" for s, x in zip(plan.stages, summary["shares"]))
    b = base.stages[0]
    return "\n".join([
        summary["table"],
        f"share of compute: {shares}",
        f"expected speedup against the baseline ({b.label} throughout, the same {base.samples:,} samples): "
        f"{summary['speedup']:.2f}x  [cost model: {summary['cost_model']}]",
    ])


def summary_html(summary: dict) -> str:
    """The explorer's numbers as HTML: the stage table with shares, then the speedup."""
    base = summary["baseline"]
    b = base.stages[0]
    return (stage_table_html(summary["plan"], summary["shares"])
            + f"<p><b>Expected speedup: {summary['speedup']:.2f}x</b> against the baseline "
              f"({html.escape(b.label)} throughout, the same {base.samples:,} samples); "
              f"cost model: {html.escape(summary['cost_model'])}.</p>")


def preset_speedups(names: Sequence[str], reference: str = "table1/basicvsr_m/large-batch",
                    step_times: StepTimes | None = None) -> list[dict]:
    """Expected speedups of the paper's multigrid presets over ``reference`` (the large-batch
    run with the same batch and samples), beside the paper's measured ratio.

    The paper reports speedups against the small-batch baseline; dividing a run's by the
    reference's isolates what the shapes bought.  Each row: ``name``, ``stages`` (labels),
    ``expected`` (cost model) and ``paper`` (None where the paper gives no speedup).
    """
    ref = get_preset(reference)
    ref_speedup = (ref.paper or {}).get("speedup")
    rows = []
    for name in names:
        preset = get_preset(name)
        paper = (preset.paper or {}).get("speedup")
        rows.append(dict(name=name, stages=[s.label for s in preset.plan.stages],
                         expected=expected_speedup(preset.plan, ref.plan, step_times),
                         paper=None if paper is None or ref_speedup is None else paper / ref_speedup))
    return rows


def preset_speedups_text(rows: Sequence[dict]) -> str:
    """:func:`preset_speedups` rows as an aligned text table."""
    table = [("preset", "stages", "expected", "paper (measured)")]
    for r in rows:
        table.append((r["name"], " ".join(r["stages"]), f"{r['expected']:.2f}x",
                      "-" if r["paper"] is None else f"{r['paper']:.2f}x"))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


# --------------------------------------------------------------------------------------
# Eq. 1 (notebook 4)
# --------------------------------------------------------------------------------------

# Stage counts the Eq. 1 explorer offers, each the layout of a run of the paper
# (BasicVSR-M on REDS, H = 64, T = 15): spatial sizes x temporal sizes, hierarchical.
EQ1_LAYOUTS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    1: ((64,), (15,)),  # the baseline's fixed shape: one cosine
    2: ((32, 64), (15,)),  # Multi-S (Table 1)
    3: ((64,), (7, 11, 15)),  # Multi-T (Table 1)
    4: ((32, 64), (7, 15)),  # Table 8b, 4 stages
    6: ((32, 64), (7, 11, 15)),  # ours (Table 1)
    8: ((32, 64), (7, 9, 11, 15)),  # spatial 32/64 with Table 7b's 4-size temporal cycle
}
WARMUP_CHOICES = ("none",) + WARMUP_KINDS

INTENDED = r"Eq. 1 intended: restarts, $D_j = I_{total}$, $D_p = P_p$"
PRINTED = "Eq. 1 as printed"
ONE_COSINE = "one cosine (no restarts)"
SGDR = r"restarts, every stage decays fully ($D_j = P_j$)"


def eq1_plan(
    stages: int = 6,
    iterations: int = 75_000,
    lr: float = 8e-4,
    warmup: str = "none",
    warmup_iterations: int = 5_000,
    warmup_start_factor: float = 0.25,
    batch: int = 64,
) -> Plan:
    """A multigrid plan of ``stages`` stages (one of :data:`EQ1_LAYOUTS`) with Eq. 1's LR.

    ``warmup``: ``"none"``, ``"linear"`` or ``"constant"`` over ``warmup_iterations`` from
    ``warmup_start_factor`` x LR (0.25: batch 16 -> 64, the paper's BasicVSR-M).
    """
    if stages not in EQ1_LAYOUTS:
        raise PlanError(f"number of stages must be one of {sorted(EQ1_LAYOUTS)}, got {stages!r}")
    if warmup not in WARMUP_CHOICES:
        raise PlanError(f"warmup must be one of {', '.join(WARMUP_CHOICES)}, got {warmup!r}")
    spatial, temporal = EQ1_LAYOUTS[stages]
    warm = None if warmup == "none" else Warmup(warmup, warmup_iterations, warmup_start_factor)
    return multigrid(iterations, max(spatial), max(temporal), batch, lr, spatial=spatial, temporal=temporal,
                     warmup=warm, name=f"{stages}-stage plan")


def restarts_per_stage(plan: Plan) -> Plan:
    """``plan`` with every stage's cosine decaying fully over its own length (SGDR,
    BasicSR's ``CosineAnnealingRestartLR``): the alternative Eq. 1 rejects for j < p."""
    stages = tuple(replace(s, period=s.iterations, start=None) for s in plan.stages)
    return Plan(stages, eta_min=plan.eta_min, warmup=plan.warmup, name=plan.name, description=plan.description)


def one_cosine(plan: Plan) -> Plan:
    """The LR without restarts: one cosine from the plan's largest LR over all its
    iterations (the shapes still change; only the LR is this plan's)."""
    last = plan.stages[-1]
    return baseline(plan.total_iterations, last.patch, last.frames, last.batch, max(s.lr for s in plan.stages),
                    eta_min=plan.eta_min, warmup=plan.warmup, name="one cosine")


def eq1_iterations(plan: Plan, points: int = 1_500) -> np.ndarray:
    """Integer iterations for drawing: an even grid plus every stage's first and last step."""
    edges = np.array(plan.boundaries)
    grid = np.linspace(0, plan.total_iterations, points).round()
    its = np.unique(np.concatenate([grid, edges, np.maximum(edges - 1, 0)]))
    return its.astype(np.int64)


def lr_curves(plan: Plan, its: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The LR over iterations ``its`` (default :func:`eq1_iterations`) under four readings:

    - :data:`INTENDED`: :meth:`Plan.lr` (Eq. 1 as docs/paper-reading.md reads it, with the
      plan's warmup);
    - :data:`PRINTED`: :func:`mgvsr.schedule.eq1_as_printed` (no warmup term: the printed
      equation has none);
    - :data:`ONE_COSINE`: :func:`one_cosine`;
    - :data:`SGDR`: :func:`restarts_per_stage`.

    Returns ``(its, {name: lrs})``, each array of ``its``' shape.
    """
    its = eq1_iterations(plan) if its is None else np.asarray(its, dtype=np.int64)
    return its, {
        INTENDED: plan.lrs(its),
        PRINTED: np.asarray(eq1_as_printed(plan, its), dtype=np.float64),
        ONE_COSINE: one_cosine(plan).lrs(its),
        SGDR: restarts_per_stage(plan).lrs(its),
    }


def eq1_rows(plan: Plan) -> list[dict]:
    """Eq. 1 intended against as printed at each stage's first, middle and last iteration,
    and at the end point ``I_total``.  Rows: ``iteration``, ``stage`` (label), ``intended``,
    ``printed``."""
    points = []
    for s in plan.stages:
        points += [s.start, s.start + s.iterations // 2, s.end - 1]
    points = sorted(set(points)) + [plan.total_iterations]
    return [dict(iteration=it, stage=plan.at(it).stage.label, intended=plan.lr(it),
                 printed=float(eq1_as_printed(plan, it))) for it in points]


def eq1_table_text(plan: Plan) -> str:
    """:func:`eq1_rows` as text, with each value also as a fraction of the stage's LR."""
    lines = [f"{'iteration':>10}  {'stage':>6}  {'intended':>9} {'(x eta_j)':>9}  {'printed':>9} {'(x eta_j)':>9}"]
    for r in eq1_rows(plan):
        eta = plan.at(r["iteration"]).stage.lr
        lines.append(f"{r['iteration']:>10,}  {r['stage']:>6}  {r['intended']:9.3e} {r['intended'] / eta:9.3f}  "
                     f"{r['printed']:9.3e} {r['printed'] / eta:9.3f}")
    return "\n".join(lines)


def eq1_facts(plan: Plan) -> dict:
    """The differences the notebook points at, as numbers.

    - ``printed_floor``: the smallest LR of the printed form over the whole plan, as a
      fraction of the LR it started its stage at (cos 1 = 0.540 for any plan);
    - ``intended_end``: the intended LR at ``I_total`` (eta_min: it decays fully);
    - ``intended_before_last``: the smallest intended LR before the last stage, as a
      fraction of the stage LR (never near zero: D_j = I_total);
    - ``printed_end``: the printed form at ``I_total``.
    """
    its, curves = lr_curves(plan, np.arange(plan.total_iterations + 1))
    eta = np.array([s.lr for s in plan.stages])[
        np.clip(np.searchsorted(plan.starts, its, side="right") - 1, 0, len(plan.stages) - 1)]
    before_last = its < plan.stages[-1].start
    return dict(
        printed_floor=float(np.min(curves[PRINTED] / eta)),
        printed_end=float(curves[PRINTED][-1]),
        intended_end=float(curves[INTENDED][-1]),
        intended_before_last=float(np.min(curves[INTENDED][before_last] / eta[before_last]))
        if before_last.any() else None,
    )


def eq1_facts_text(plan: Plan) -> str:
    """:func:`eq1_facts` in words."""
    f = eq1_facts(plan)
    lines = [f"printed form: never below {f['printed_floor']:.3f} x the stage's LR; "
             f"at the end of training {f['printed_end']:.3e}",
             f"intended form: ends at {f['intended_end']:.3e} (eta_min {plan.eta_min:g})"]
    if f["intended_before_last"] is not None:
        lines.append(f"intended form before the last stage: never below {f['intended_before_last']:.3f} "
                     "x the stage's LR")
    return "\n".join(lines)


SHORT_NAMES = {INTENDED: "Eq. 1", PRINTED: "as printed", ONE_COSINE: "no restarts", SGDR: "SGDR"}


def stage_mean_lrs(plan: Plan) -> list[dict]:
    """The average LR each stage trains at under each reading of :func:`lr_curves`.

    Rows: ``stage`` (label) and one mean per curve name, over the stage's iterations.
    """
    its, curves = lr_curves(plan, np.arange(plan.total_iterations))
    rows = []
    for s in plan.stages:
        inside = (its >= s.start) & (its < s.end)
        rows.append({"stage": s.label, **{name: float(lrs[inside].mean()) for name, lrs in curves.items()}})
    return rows


def stage_mean_lrs_text(plan: Plan) -> str:
    """:func:`stage_mean_lrs` as an aligned text table (columns: :data:`SHORT_NAMES`)."""
    rows = stage_mean_lrs(plan)
    names = list(SHORT_NAMES)
    lines = [f"{'stage':>6}  " + "  ".join(f"{SHORT_NAMES[n]:>11}" for n in names)]
    lines += [f"{r['stage']:>6}  " + "  ".join(f"{r[n]:11.2e}" for n in names) for r in rows]
    return "\n".join(lines)


def plot_eq1(plan: Plan, ax=None, *, curves: Sequence[str] = (INTENDED, PRINTED, ONE_COSINE)):
    """Eq. 1 intended against as printed (and the LR without restarts) over ``plan``'s
    stages, on ``ax`` or a new figure.  Returns the figure."""
    own = ax is None
    if own:
        fig = Figure(figsize=(8, 4), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    its, lrs = lr_curves(plan)
    styles = {INTENDED: dict(color="C3", lw=2), PRINTED: dict(color="C0", lw=1.5, ls="--"),
              ONE_COSINE: dict(color="0.45", lw=1.2, ls=":"), SGDR: dict(color="C2", lw=1.2, ls="-.")}
    unknown = [c for c in curves if c not in lrs]
    if unknown:
        raise MgvsrError(f"unknown curve(s) {unknown}; choose from {list(lrs)}")
    stage_bands(ax, plan)
    for name in curves:
        ax.plot(its, lrs[name], label=name, **styles[name])
    ax.set_xlabel("iteration (optimizer step)")
    ax.set_ylim(bottom=0)
    lr_axis(ax)
    if own:  # below the axes, clear of the curves
        fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        ax.legend(fontsize=8, loc="lower left")
    return fig
