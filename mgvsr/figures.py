"""The library's figures: a plan over iterations, runs' PSNR against time.  Every figure reads the
same objects the trainer uses (a Plan, a run log); ``mgvsr plan``, ``mgvsr demo`` and the
notebooks draw with them (the notebooks' own figures are in :mod:`mgvsr.tutorial.viz`).

Functions return a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no GUI backend needed): in a notebook with ``%matplotlib inline`` the returned figure
displays itself as a cell's last value; from a script, ``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mgvsr.schedule import Plan

STAGE_COLORS = ("#e8f0fa", "#fbeee2")  # alternating stage bands


def stage_bands(ax: Axes, plan: Plan, labels: bool = True) -> None:
    """Shade alternate stages and write each stage's ``patch&frames`` on top of the axes."""
    edges = plan.boundaries
    for j, stage in enumerate(plan.stages):
        ax.axvspan(edges[j], edges[j + 1], color=STAGE_COLORS[j % 2], zorder=0, lw=0)
        if labels:
            ax.text((edges[j] + edges[j + 1]) / 2, 1.01, stage.label, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0, plan.total_iterations)


def lr_axis(ax: Axes, label: str = "learning rate") -> None:
    """Write the y axis's power of ten into its label ("learning rate ($\\times 10^{-4}$)") and plain
    numbers on its ticks: matplotlib's offset text ("1e-4") would sit in the top-left corner, on top
    of :func:`stage_bands`' labels."""
    from matplotlib.ticker import FuncFormatter

    top = max(abs(v) for v in ax.get_ylim())
    exponent = math.floor(math.log10(top)) if top > 0 else 0
    if exponent in (0, 1, 2):
        ax.set_ylabel(label)
        return
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v / 10.0**exponent:g}"))
    ax.set_ylabel(f"{label} ($\\times 10^{{{exponent}}}$)")


def _lr_curve(ax: Axes, plan: Plan, points: int = 2000) -> None:
    total = plan.total_iterations
    its = np.unique(np.concatenate([np.linspace(0, total, points), np.array(plan.boundaries, dtype=float),
                                    np.array(plan.starts[1:], dtype=float) - 1e-6 * total]))
    its = its[(its >= 0) & (its <= total)]
    ax.plot(its, plan.lrs(its), color="C3", lw=1.5, label="learning rate")
    ax.set_ylim(bottom=0)
    lr_axis(ax)
    ax.set_xlabel("iteration (optimizer step)")


def _shape_steps(patch_ax: Axes, frames_ax: Axes, plan: Plan) -> None:
    """The LR patch side and the clip length of every stage, each on its own axes (one unit each)."""
    edges = np.array(plan.boundaries)
    for ax, values, color, label in ((patch_ax, [s.patch for s in plan.stages], "C0", "LR patch side (px)"),
                                     (frames_ax, [s.frames for s in plan.stages], "C2", "frames per clip")):
        ax.stairs(values, edges, color=color, lw=2, baseline=None)
        ax.set_ylabel(label, fontsize=9)
        ax.set_ylim(0, max(values) * 1.3)
        ax.set_yticks(sorted(set(values)))
        ax.grid(axis="y", alpha=0.3)


def plot_plan(plan: Plan, ax: Axes | Sequence[Axes] | None = None, *, title: str | None = None) -> Figure:
    """The plan over iterations: the LR patch side (top) and the frames per clip (middle) as steps,
    the LR curve (bottom), each on its own axes.

    ``ax``: None (a new three-panel figure), three Axes ``(patch_ax, frames_ax, lr_ax)``, or a
    single Axes, on which only the LR curve is drawn over bands labelled ``patch&frames``.
    Returns the figure.
    """
    if ax is None:
        fig = Figure(figsize=(8, 5.8), layout="constrained")
        patch_ax, frames_ax, lr_ax = fig.subplots(3, 1, sharex=True, height_ratios=(0.8, 0.8, 1.3))
    elif isinstance(ax, Axes):
        stage_bands(ax, plan)
        _lr_curve(ax, plan)
        ax.set_title(title if title is not None else plan.name, pad=16)
        return ax.figure
    else:
        if len(ax) != 3:
            raise ValueError(f"plot_plan draws on three Axes (patch, frames, learning rate), got {len(ax)}")
        patch_ax, frames_ax, lr_ax = ax
        fig = patch_ax.figure
    stage_bands(patch_ax, plan)
    stage_bands(frames_ax, plan, labels=False)
    _shape_steps(patch_ax, frames_ax, plan)
    stage_bands(lr_ax, plan, labels=False)
    _lr_curve(lr_ax, plan)
    batches = sorted({s.batch for s in plan.stages})
    subtitle = f"batch {', '.join(map(str, batches))}; {plan.total_iterations:,} iterations"
    if plan.warmup is not None:
        subtitle += f"; {plan.warmup.kind} warmup {plan.warmup.iterations:,}"
    heading = title if title is not None else (plan.name or "training plan")
    patch_ax.set_title(f"{heading}\n{subtitle}", fontsize=10, pad=16)
    return fig


def plot_plans(plans: dict[str, Plan]) -> Figure:
    """Several plans side by side (one column each: patch, frames, LR)."""
    fig = Figure(figsize=(5.2 * len(plans), 5.8), layout="constrained")
    axes = fig.subplots(3, len(plans), height_ratios=(0.8, 0.8, 1.3), squeeze=False, sharex="col")
    for k, (name, plan) in enumerate(plans.items()):
        plot_plan(plan, tuple(axes[:, k]), title=name)
    return fig


def plot_psnr_vs_time(runs: dict[str, list[dict]], bicubic: float | None = None, *,
                      key: str = "train_seconds", ax: Axes | None = None, noise: float | None = None,
                      reference: str = "baseline") -> Figure:
    """PSNR on the held-out clips against training time, one line per run.

    ``runs`` maps a run's name to its evaluation records (``log.jsonl`` lines with
    ``event == "eval"``: ``psnr`` and ``train_seconds`` / ``compute_seconds``).  ``noise``: the PSNR
    spread between two seeds of the ``reference`` run, drawn as a band around its last PSNR (a
    run ending inside it is no different).
    """
    if ax is None:
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    for k, (name, evals) in enumerate(runs.items()):
        ax.plot([e[key] for e in evals], [e["psnr"] for e in evals], "o-", color=f"C{k}", label=name)
    if bicubic is not None:
        ax.axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
    if noise is not None and runs.get(reference):
        end = runs[reference][-1]["psnr"]
        ax.axhspan(end - noise, end + noise, color="0.5", alpha=0.2, lw=0,
                   label=f"noise: 2 sd of the {reference}'s seeds (±{noise:.2f} dB)")
    ax.set_xlabel("training time (s)" if key == "train_seconds" else "compute time (s)")
    ax.set_ylabel("PSNR on held-out clips (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_stage_times(entries: dict[str, dict], ax: Axes | None = None) -> Figure:
    """Seconds each run spent in each stage: a horizontal bar per run, one segment per stage
    (labelled ``patch&frames``), its data-loading part hatched.

    ``entries`` maps a run's name to :func:`mgvsr.report.run_entry`'s dict (``stages``,
    ``stage_compute_seconds``, ``stage_data_seconds``).
    """
    if ax is None:
        fig = Figure(figsize=(7.5, 0.9 + 0.7 * len(entries)), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    names = list(entries)
    for row, name in enumerate(names):
        e = entries[name]
        left = 0.0
        for j, (label, c, d) in enumerate(zip(e["stages"], e["stage_compute_seconds"], e["stage_data_seconds"])):
            color = f"C{j % 10}"
            ax.barh(row, c, left=left, color=color, edgecolor="white")
            ax.barh(row, d, left=left + c, color=color, alpha=0.45, hatch="//", edgecolor="white")
            if c + d > 0:
                ax.text(left + (c + d) / 2, row, label, ha="center", va="center", fontsize=7)
            left += c + d
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("training time (s): compute, then data (hatched), per stage")
    ax.grid(axis="x", alpha=0.3)
    return fig
