"""Matplotlib figures.  Every figure reads the same objects the trainer uses (a Plan, a run log).

Functions return a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no GUI backend needed): in a notebook with ``%matplotlib inline`` the returned figure
displays itself as a cell's last value; from a script, ``fig.savefig(path)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mgvsr.schedule import Plan

STAGE_COLORS = ("#e8f0fa", "#fbeee2")  # alternating stage bands


def _stage_bands(ax: Axes, plan: Plan, labels: bool = True) -> None:
    """Shade alternate stages and write each stage's ``patch&frames`` on top of the axes."""
    edges = plan.boundaries
    for j, stage in enumerate(plan.stages):
        ax.axvspan(edges[j], edges[j + 1], color=STAGE_COLORS[j % 2], zorder=0, lw=0)
        if labels:
            ax.text((edges[j] + edges[j + 1]) / 2, 1.01, stage.label, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0, plan.total_iterations)


def _lr_curve(ax: Axes, plan: Plan, points: int = 2000) -> None:
    total = plan.total_iterations
    its = np.unique(np.concatenate([np.linspace(0, total, points), np.array(plan.boundaries, dtype=float),
                                    np.array(plan.starts[1:], dtype=float) - 1e-6 * total]))
    its = its[(its >= 0) & (its <= total)]
    ax.plot(its, plan.lrs(its), color="C3", lw=1.5, label="learning rate")
    ax.set_ylabel("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("iteration (optimizer step)")


def _shape_steps(ax: Axes, plan: Plan) -> None:
    edges = np.array(plan.boundaries)
    patches = [s.patch for s in plan.stages]
    frames = [s.frames for s in plan.stages]
    ax.stairs(patches, edges, color="C0", lw=2, baseline=None, label="LR patch side")
    ax.set_ylabel("LR patch side (px)", color="C0")
    ax.set_ylim(0, max(patches) * 1.25)
    twin = ax.twinx()
    twin.stairs(frames, edges, color="C2", lw=2, ls="--", baseline=None, label="frames")
    twin.set_ylabel("frames per clip", color="C2")
    twin.set_ylim(0, max(frames) * 1.25)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower right", fontsize=8)


def plot_plan(plan: Plan, ax: Axes | Sequence[Axes] | None = None, *, title: str | None = None) -> Figure:
    """The plan over iterations: LR patch and frames as steps (top), the LR curve (bottom).

    ``ax``: None (a new two-panel figure), a pair of Axes ``(shape_ax, lr_ax)``, or a
    single Axes, on which only the LR curve is drawn over bands labelled ``patch&frames``.
    Returns the figure.
    """
    if ax is None:
        fig = Figure(figsize=(8, 5.2), layout="constrained")
        shape_ax, lr_ax = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.3))
    elif isinstance(ax, Axes):
        _stage_bands(ax, plan)
        _lr_curve(ax, plan)
        ax.set_title(title if title is not None else plan.name, pad=16)
        return ax.figure
    else:
        shape_ax, lr_ax = ax
        fig = shape_ax.figure
    _stage_bands(shape_ax, plan)
    _shape_steps(shape_ax, plan)
    _stage_bands(lr_ax, plan, labels=False)
    _lr_curve(lr_ax, plan)
    batches = sorted({s.batch for s in plan.stages})
    subtitle = f"batch {', '.join(map(str, batches))}; {plan.total_iterations:,} iterations"
    if plan.warmup is not None:
        subtitle += f"; {plan.warmup.kind} warmup {plan.warmup.iterations:,}"
    heading = title if title is not None else (plan.name or "training plan")
    shape_ax.set_title(f"{heading}\n{subtitle}", fontsize=10, pad=16)
    return fig


def plot_plans(plans: dict[str, Plan]) -> Figure:
    """Several plans side by side (one column each: shapes on top, LR below)."""
    fig = Figure(figsize=(5.2 * len(plans), 5.2), layout="constrained")
    axes = fig.subplots(2, len(plans), height_ratios=(1, 1.3), squeeze=False)
    for k, (name, plan) in enumerate(plans.items()):
        plot_plan(plan, (axes[0, k], axes[1, k]), title=name)
    return fig


def plot_psnr_vs_time(runs: dict[str, list[dict]], bicubic: float | None = None, *,
                      key: str = "train_seconds", ax: Axes | None = None) -> Figure:
    """PSNR on the held-out clips against training time, one line per run.

    ``runs`` maps a run's name to its evaluation records (``log.jsonl`` lines with
    ``event == "eval"``: ``psnr`` and ``train_seconds`` / ``compute_seconds``).
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
    ax.set_xlabel("training time (s)" if key == "train_seconds" else "compute time (s)")
    ax.set_ylabel("PSNR on held-out clips (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


# --------------------------------------------------------------------------------------
# Figures of the tutorial notebooks 1, 2, 4, 5, 7 and 8
# --------------------------------------------------------------------------------------


def plot_speedup_vs_psnr(paper: Sequence[dict], ours: Sequence[dict] | None = None, *,
                         bicubic: float | None = None, paper_title: str = "the paper (Table 1, BasicVSR-M, REDS4)",
                         ours_title: str = "this machine") -> Figure:
    """Speedup against PSNR: the paper's points (left) and, when given, ours (right).

    Each point is a dict with ``label``, ``speedup`` (1 for the baseline) and ``psnr``.
    ``bicubic``: a dotted line on our panel.  The two panels have their own PSNR axes
    (different models and test sets).
    """
    panels = [(paper_title, paper)] + ([(ours_title, ours)] if ours else [])
    fig = Figure(figsize=(5.2 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for j, (ax, (title, points)) in enumerate(zip(axes, panels)):
        for k, p in enumerate(points):
            ax.plot(p["speedup"], p["psnr"], "o", color=f"C{k}", ms=8, label=f"{p['label']} ({p['speedup']:.1f}x)")
        ax.set_xlabel("speedup against the baseline (x)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        speeds = [p["speedup"] for p in points]
        ax.set_xlim(0.8, max(speeds) * 1.25 + 0.2)
        psnrs = [p["psnr"] for p in points] + ([bicubic] if (j == 1 and bicubic is not None) else [])
        span = max(max(psnrs) - min(psnrs), 0.1)
        ax.set_ylim(min(psnrs) - 0.3 * span, max(psnrs) + 0.3 * span)
    if ours and bicubic is not None:
        axes[-1].axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
    return fig


def plot_shape_costs(costs: dict[str, Sequence], base: tuple[int, int]) -> Figure:
    """Fig. 2's cost side: measured seconds per step and counted FLOPs per step, both relative to
    the ``base`` shape, against clip length (left) and LR patch side (right).

    ``costs``: ``{"frames": [ShapeCost, ...], "patch": [...]}`` (:func:`mgvsr.shapes.sweep` order).
    """
    from mgvsr.shapes import relative_to

    every = [c for cs in costs.values() for c in cs]
    ref = relative_to(every, base)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (axis, xlabel) in zip(axes, (("frames", "frames per clip (T)"), ("patch", "LR patch side (S)"))):
        rows = costs.get(axis, [])
        xs = [c.frames if axis == "frames" else c.patch for c in rows]
        ax.plot(xs, [c.seconds / ref.seconds for c in rows], "o-", color="C0", label="measured step time")
        ax.plot(xs, [c.flops / ref.flops for c in rows], "s--", color="C1", label="FLOPs (forward + backward)")
        ax.plot(xs, [c.pixels / ref.pixels for c in rows], ":", color="0.5", label="LR pixels")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"relative to {ref.label}")
        ax.set_xticks(xs)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        fixed = f"patch {base[0]}" if axis == "frames" else f"{base[1]} frames"
        ax.set_title(f"({'a' if axis == 'frames' else 'b'}) {xlabel.split(' (')[0]}, {fixed}", fontsize=10)
    axes[0].legend(fontsize=8)
    return fig


def plot_shape_runs(runs: dict[str, Sequence], base: tuple[int, int], bicubic: float | None = None) -> Figure:
    """Fig. 2 itself: the PSNR of short fixed-shape trainings against clip length (left) and LR
    patch side (right), each point labelled with its speedup over the ``base`` shape's run.

    ``runs``: ``{"frames": [ShapeRun, ...], "patch": [...]}``.
    """
    every = [r for rs in runs.values() for r in rs]
    ref = next((r for r in every if (r.patch, r.frames) == tuple(base)), None)
    if ref is None:
        raise ValueError(f"no run of the base shape {base[0]}&{base[1]}")
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (axis, xlabel) in zip(axes, (("frames", "frames per clip (T)"), ("patch", "LR patch side (S)"))):
        rows = runs.get(axis, [])
        xs = [r.frames if axis == "frames" else r.patch for r in rows]
        ax.plot(xs, [r.psnr for r in rows], "o-", color="C3")
        for x, r in zip(xs, rows):
            ax.annotate(f"{ref.train_seconds / r.train_seconds:.2f}x", (x, r.psnr), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=8)
        if bicubic is not None:
            ax.axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
            ax.legend(fontsize=8, loc="center right")
        ax.set_xlabel(xlabel)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.set_title(f"({'a' if axis == 'frames' else 'b'}) PSNR vs {xlabel.split(' (')[0]}", fontsize=10)
    axes[0].set_ylabel("PSNR on held-out clips (dB)")
    return fig


def plot_restarts(results: dict[str, dict], bicubic: float | None = None) -> Figure:
    """Two short trainings on the same shapes: LR over iterations (top, the first run's stages
    shaded) and PSNR on the held-out clips against iterations (bottom).

    ``results``: ``{name: {"plan": Plan, "evals": [eval records with "it" and "psnr"]}}``.
    """
    fig = Figure(figsize=(7.5, 5.6), layout="constrained")
    lr_ax, psnr_ax = fig.subplots(2, 1, sharex=True)
    first = next(iter(results.values()))["plan"]
    _stage_bands(lr_ax, first)
    _stage_bands(psnr_ax, first, labels=False)
    for k, (name, r) in enumerate(results.items()):
        plan = r["plan"]
        its = np.arange(plan.total_iterations + 1)
        lr_ax.plot(its, plan.lrs(its), color=f"C{k}", lw=1.5, label=name)
        evals = r["evals"]
        psnr_ax.plot([e["it"] for e in evals], [e["psnr"] for e in evals], "o-", color=f"C{k}", label=name)
    if bicubic is not None:
        psnr_ax.axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
    lr_ax.set_ylabel("learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    lr_ax.legend(fontsize=8)
    psnr_ax.set_ylabel("PSNR on held-out clips (dB)")
    psnr_ax.set_xlabel("iteration (optimizer step)")
    psnr_ax.grid(alpha=0.3)
    psnr_ax.legend(fontsize=8)
    return fig


def plot_scaling_gaps(gaps: dict[str, Sequence]) -> Figure:
    """Eq. 3 against Eq. 4 on a real model: for each group of weights (e.g. "early", "late"), the
    held-out loss before, after m small steps at eta and after one step of the m-times batch at
    m*eta (left, relative to the loss before), and how far apart the two land (right).

    ``gaps``: ``{label: [ScalingGap, ...]}`` (:func:`mgvsr.minibatch.scaling_gaps`).
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    loss_ax, gap_ax = fig.subplots(1, 2)
    for k, (label, rows) in enumerate(gaps.items()):
        ms = [g.m for g in rows]
        loss_ax.plot(ms, [g.loss_small / g.loss_start for g in rows], "o-", color=f"C{k}",
                     label=f"{label}: m steps at eta")
        loss_ax.plot(ms, [g.loss_large / g.loss_start for g in rows], "s--", color=f"C{k}",
                     label=f"{label}: 1 step at m*eta")
        gap_ax.plot(ms, [g.relative_gap for g in rows], "o-", color=f"C{k}", label=f"{label}: |gap| / |m steps|")
    loss_ax.axhline(1.0, color="0.4", lw=0.8)
    loss_ax.set_xlabel("m (minibatches merged)")
    loss_ax.set_ylabel("held-out loss / loss before")
    loss_ax.set_xscale("log", base=2)
    loss_ax.set_xticks(sorted({g.m for rows in gaps.values() for g in rows}),
                       labels=[str(m) for m in sorted({g.m for rows in gaps.values() for g in rows})])
    loss_ax.legend(fontsize=7)
    loss_ax.grid(alpha=0.3)
    loss_ax.set_title("(a) where the loss lands", fontsize=10)
    gap_ax.set_xlabel("m (minibatches merged)")
    gap_ax.set_ylabel("||w_{t+m} - w'_{t+1}|| / ||w_{t+m} - w_t||")
    gap_ax.set_xscale("log", base=2)
    gap_ax.set_xticks(loss_ax.get_xticks(), labels=[t.get_text() for t in loss_ax.get_xticklabels()])
    gap_ax.legend(fontsize=7)
    gap_ax.grid(alpha=0.3)
    gap_ax.set_title("(b) how far apart the weights land", fontsize=10)
    return fig


def plot_table_rows(rows: Sequence, *, value: str = "psnr") -> Figure:
    """A reproduced table as bars: ours (left axis) beside the paper's (right axis) for every
    row, ``value`` ``"psnr"`` or ``"speedup"`` (:class:`mgvsr.reproduce.Row` s).  The two have
    their own axes: at the ``ci`` scale they are not comparable."""
    if value not in ("psnr", "speedup"):
        raise ValueError(f"value must be 'psnr' or 'speedup', got {value!r}")
    labels = [r.row or r.preset.split("/")[-1] for r in rows]
    ours = [getattr(r, value) for r in rows]
    paper = [r.paper.get(value) for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.2, [np.nan if v is None else v for v in ours], 0.4, color="C0", label=f"ours ({rows[0].scale} scale)")
    twin = ax.twinx()
    twin.bar(x + 0.2, [np.nan if v is None else v for v in paper], 0.4, color="C1", label="paper")
    for axis, values in ((ax, ours), (twin, paper)):
        known = [v for v in values if v is not None]
        if known and value == "psnr":
            spread = max(known) - min(known)
            axis.set_ylim(min(known) - max(0.3, spread), max(known) + max(0.1, spread / 2))
    name = "PSNR (dB)" if value == "psnr" else "speedup (x)"
    ax.set_ylabel(f"ours: {name}", color="C0")
    twin.set_ylabel(f"paper: {name}", color="C1")
    ax.set_xticks(x, labels=labels, rotation=20, ha="right", fontsize=8)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    return fig


def _show_image(ax: Axes, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_crops(crops: dict[str, np.ndarray], scores: dict[str, float] | None = None, *,
               context: np.ndarray | None = None, box: tuple[int, int, int, int] | None = None,
               title: str | None = None) -> Figure:
    """Zoomed crops side by side (nearest-neighbour: the pixels as they are), each titled with
    its PSNR when ``scores`` has one; ``context``: the whole frame first, with ``box`` drawn."""
    from matplotlib.patches import Rectangle

    scores = scores or {}
    n = len(crops) + (context is not None)
    fig = Figure(figsize=(2.4 * n, 2.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    k = 0
    if context is not None:
        _show_image(axes[0], context, "frame")
        if box is not None:
            top, left, h, w = box
            axes[0].add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, ec="yellow", lw=1.5))
        k = 1
    for ax, (name, crop) in zip(axes[k:], crops.items()):
        label = name if name not in scores else f"{name}\n{scores[name]:.2f} dB"
        _show_image(ax, crop, label)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_temporal_profiles(profiles: dict[str, np.ndarray], scores: dict[str, float] | None = None, *,
                           title: str | None = None) -> Figure:
    """Temporal profiles side by side: one row of pixels (x, left to right) from every frame
    (time, top to bottom), enlarged so that each frame is a few pixels tall."""
    scores = scores or {}
    n = len(profiles)
    first = next(iter(profiles.values()))
    t, w = first.shape[:2]
    aspect = max(1.0, 0.35 * w / max(t, 1))  # frames stretched so time reads as well as space
    fig = Figure(figsize=(2.4 * n, 2.4 * min(2.0, t * aspect / w + 0.4)), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, profile) in zip(axes, profiles.items()):
        ax.imshow(profile, interpolation="nearest", aspect=aspect)
        ax.set_title(name if name not in scores else f"{name}\n{scores[name]:.2f} dB", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([0, t - 1])
        ax.set_yticklabels(["t=0", f"t={t - 1}"], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
