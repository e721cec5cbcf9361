"""The notebooks' figures (Figs. 2, 4-5, Eq. 1 and Eq. 3-5 measurements, tables, crops): matplotlib
figures built without pyplot, from what :mod:`mgvsr.tutorial` computes.  The library's own
figures (plans, PSNR against time) are in :mod:`mgvsr.figures`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mgvsr.figures import stage_bands
from mgvsr.tutorial.fig2_shapes import relative_to

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
    stage_bands(lr_ax, first)
    stage_bands(psnr_ax, first, labels=False)
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
    their own axes: at the ``smoke`` scale they are not comparable."""
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
