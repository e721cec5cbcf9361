"""The notebooks' figures (Figs. 2, 4-5, Eq. 1 and Eq. 3-5 measurements, tables, crops): matplotlib
figures built without pyplot, from what :mod:`mgvsr.tutorial` computes.  The library's own
figures (plans, PSNR against time) are in :mod:`mgvsr.figures`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mgvsr.figures import lr_axis, stage_bands
from mgvsr.presets import get_preset
from mgvsr.tutorial.fig2_shapes import relative_to

# --------------------------------------------------------------------------------------
# Figures of the tutorial notebooks 1, 2, 4, 5, 7 and 8
# --------------------------------------------------------------------------------------


CIRCLED = {chr(0x2460 + k): f"({k + 1})" for k in range(20)}  # ① .. ⑳


def plain_label(text: str) -> str:
    """``text`` with the paper's circled row numbers written ``(1)`` .. ``(20)``: common fonts lack
    some of them (⑪ draws as a box in DejaVu Sans, matplotlib's default)."""
    return "".join(CIRCLED.get(c, c) for c in text)


def equal_db_spans(axes: Sequence[Axes], ranges: Sequence[tuple[float, float]], minimum: float = 0.3,
                   margin: float = 0.15) -> float:
    """Give every axes the same number of dB (the largest of ``ranges``' spans, at least ``minimum``),
    each centred on its own ``(low, high)``: a 0.1 dB gap is drawn the same height in every panel, so
    that panels on different absolute scales (other models, other data) compare honestly.  Returns the span."""
    span = max([minimum] + [hi - lo for lo, hi in ranges]) * (1 + 2 * margin)
    for ax, (lo, hi) in zip(axes, ranges):
        mid = (lo + hi) / 2
        ax.set_ylim(mid - span / 2, mid + span / 2)
    return span


def plot_speedup_vs_psnr(paper: Sequence[dict], ours: Sequence[dict] | None = None, *,
                         bicubic: float | None = None, noise: float | None = None,
                         paper_title: str = "the paper (Table 1, BasicVSR-M, REDS4)",
                         ours_title: str = "this machine") -> Figure:
    """Speedup against PSNR: the paper's points (left) and, when given, ours (right).

    Each point is a dict with ``label``, ``speedup`` (1 for the baseline) and ``psnr``.  Each panel
    has its own PSNR axis (other models, other test clips) but both span the same number of dB
    (:func:`equal_db_spans`), with the baseline's level drawn across.  ``bicubic``: a dotted line on
    our panel; ``noise``: twice the standard deviation of our baseline's seeds, drawn as a band around
    its level (a gap inside it is no difference).
    """
    panels = [(paper_title, paper)] + ([(ours_title, ours)] if ours else [])
    fig = Figure(figsize=(5.2 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    ranges = []
    for j, (ax, (title, points)) in enumerate(zip(axes, panels)):
        base = next((p for p in points if p["speedup"] == 1.0), points[0])
        mine = j == 1
        ax.axhline(base["psnr"], color="0.3", lw=0.8, label=f"baseline's PSNR ({base['psnr']:.2f} dB)")
        values = [p["psnr"] for p in points]
        if mine and noise is not None:
            ax.axhspan(base["psnr"] - noise, base["psnr"] + noise, color="0.5", alpha=0.18, lw=0,
                       label=f"noise: 2 sd of the baseline's seeds (±{noise:.2f} dB)")
            values += [base["psnr"] - noise, base["psnr"] + noise]
        if mine and bicubic is not None:
            ax.axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
            values.append(bicubic)
        for k, p in enumerate(points):
            ax.plot(p["speedup"], p["psnr"], "o", color=f"C{k}", ms=8,
                    label=f"{plain_label(p['label'])} ({p['speedup']:.1f}x)")
        ranges.append((min(values), max(values)))
        ax.set_xlabel("speedup against the baseline (x)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xlim(0.8, max(p["speedup"] for p in points) * 1.25 + 0.2)
        ax.legend(fontsize=7, loc="best")
    span = equal_db_spans(axes, ranges)
    if len(axes) > 1:
        fig.suptitle(f"each panel spans {span:.2f} dB: the same gap is drawn the same height in both", fontsize=9)
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
    lr_ax.set_ylim(bottom=0)
    lr_axis(lr_ax)
    lr_ax.legend(fontsize=8, loc="lower left")
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
                     label=rf"{label}: $m$ steps at $\eta$")
        loss_ax.plot(ms, [g.loss_large / g.loss_start for g in rows], "s--", color=f"C{k}",
                     label=rf"{label}: 1 step at $m\eta$")
        gap_ax.plot(ms, [g.relative_gap for g in rows], "o-", color=f"C{k}", label=f"{label}")
    loss_ax.axhline(1.0, color="0.4", lw=0.8)
    loss_ax.set_xlabel(r"$m$ (minibatches merged)")
    loss_ax.set_ylabel("held-out loss / loss before")
    loss_ax.set_xscale("log", base=2)
    loss_ax.set_xticks(sorted({g.m for rows in gaps.values() for g in rows}),
                       labels=[str(m) for m in sorted({g.m for rows in gaps.values() for g in rows})])
    loss_ax.legend(fontsize=7)
    loss_ax.grid(alpha=0.3)
    loss_ax.set_title("(a) where the loss lands", fontsize=10)
    gap_ax.set_xlabel(r"$m$ (minibatches merged)")
    gap_ax.set_ylabel(r"$\Vert w_{t+m} - w'_{t+1} \Vert \,/\, \Vert w_{t+m} - w_t \Vert$")
    gap_ax.set_xscale("log", base=2)
    gap_ax.set_xticks(loss_ax.get_xticks(), labels=[t.get_text() for t in loss_ax.get_xticklabels()])
    gap_ax.legend(fontsize=7)
    gap_ax.grid(alpha=0.3)
    gap_ax.set_title("(b) how far apart the weights land", fontsize=10)
    return fig


def _row_label(row) -> str:
    return plain_label(row.row or row.preset.split("/")[-1])


def _paper_baseline_psnr(row) -> float | None:
    return ((get_preset(row.baseline).paper or {}).get("psnr")) if row.baseline else (row.paper or {}).get("psnr")


def _speedup_bars(rows: Sequence, x, ours_ax, paper_ax) -> None:
    """Bars from 0: ours calibrated (left), the paper's (right); the baselines at 1."""
    for ax, values, color in ((ours_ax, [r.speedup_calibrated for r in rows], "C0"),
                              (paper_ax, [(r.paper or {}).get("speedup") for r in rows], "C1")):
        bars = [1.0 if r.baseline is None else (np.nan if v is None else v) for r, v in zip(rows, values)]
        ax.bar(x, bars, 0.6, color=[("0.6" if r.baseline is None else color) for r in rows])
        ax.axhline(1.0, color="0.3", lw=0.8, label="baseline (1x)")
    ours_ax.set_ylabel("speedup against the baseline (x, calibrated)")
    ours_ax.set_ylim(bottom=0)


def plot_table_rows(rows: Sequence, *, value: str = "psnr", baselines: Sequence = ()) -> Figure:
    """A reproduced table (:class:`mgvsr.reproduce.Row` s): ours (left panel) beside the paper's
    (right panel), never on a shared or twin axis.

    ``value="psnr"``: a dot per row (ours: the mean of its seeds, with their standard deviation); each
    baseline's PSNR drawn as a level across the rows compared with it, ours with the noise band of
    twice its seeds' standard deviation (``row.noise``: a gap inside the band is no difference) and the
    bicubic line (``row.bicubic_psnr``).  The two panels have their own absolute axes (below the
    ``paper`` scale they are not comparable) but span the same number of dB.  ``value="speedup"``: bars
    from 0 on one shared axis (a ratio is a ratio), the baseline at 1; ours are the calibrated speedups
    (:mod:`mgvsr.costs`), which a shared machine does not move.  ``baselines``: rows of baselines the
    table's rows compare with but that are not among them, used for the levels only.
    """
    if value not in ("psnr", "speedup"):
        raise ValueError(f"value must be 'psnr' or 'speedup', got {value!r}")
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to draw")
    x = np.arange(len(rows))
    labels = [_row_label(r) for r in rows]
    known = {r.preset: r for r in list(baselines) + rows}
    groups: dict[str, list[int]] = {}  # baseline name -> the positions of its rows (itself included)
    for k, r in enumerate(rows):
        groups.setdefault(r.baseline or r.preset, []).append(k)
    fig = Figure(figsize=(max(8.0, 1.1 * len(rows) + 3), 3.9), layout="constrained")
    ours_ax, paper_ax = fig.subplots(1, 2, sharey=(value == "speedup"))
    scale = rows[0].scale
    if value == "speedup":
        _speedup_bars(rows, x, ours_ax, paper_ax)
    else:
        ranges, levels = [], {}
        for ax, mine in ((ours_ax, True), (paper_ax, False)):
            values, levels[mine] = [], 0
            for name, members in groups.items():
                base = known.get(name)
                level = (base.psnr_mean if base is not None else None) if mine else _paper_baseline_psnr(rows[members[0]])
                if level is None:
                    continue
                left, right = min(members) - 0.4, max(members) + 0.4
                ax.hlines(level, left, right, color="0.3", lw=1.0)
                values.append(level)
                levels[mine] += 1
                if mine and base is not None and base.noise:
                    n = base.noise["band"]
                    ax.fill_between([left, right], level - n, level + n, color="0.5", alpha=0.25, lw=0)
                    values += [level - n, level + n]
            points = [r.psnr_mean if mine else (r.paper or {}).get("psnr") for r in rows]
            spreads = [(r.psnr_sd or 0.0) if mine else 0.0 for r in rows]
            shown = [k for k, v in enumerate(points) if v is not None]
            ax.errorbar([x[k] for k in shown], [points[k] for k in shown], yerr=[spreads[k] for k in shown], fmt="o",
                        color="C0" if mine else "C1", ms=7, zorder=3, capsize=3)
            values += [v for v in points if v is not None]
            bicubic = next((r.bicubic_psnr for r in rows if r.bicubic_psnr is not None), None) if mine else None
            if bicubic is not None:
                ax.axhline(bicubic, color="0.4", ls=":", label=f"bicubic ({bicubic:.2f} dB)")
                values.append(bicubic)
            ranges.append((min(values), max(values)) if values else (0.0, 1.0))
            ax.set_ylabel("PSNR (dB)")
        equal_db_spans((ours_ax, paper_ax), ranges)
        # legend entries for the levels and the band (drawn as segments above)
        if levels[True]:
            ours_ax.plot([], [], color="0.3", lw=1.0, label="the baseline's PSNR")
        if any(known.get(name) is not None and known[name].noise for name in groups):
            ours_ax.fill_between([], [], [], color="0.5", alpha=0.25, lw=0,
                                 label="noise: 2 sd of the baseline's seeds")
        if levels[False]:
            paper_ax.plot([], [], color="0.3", lw=1.0, label="the baseline's PSNR (no noise published)")
    ours_ax.set_title(f"ours ({scale} scale)", fontsize=10)
    paper_ax.set_title("the paper", fontsize=10)
    for ax in (ours_ax, paper_ax):
        ax.set_xticks(x, labels=labels, rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
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


# --------------------------------------------------------------------------------------
# The data and the model, drawn (notebooks 1 and 2)
# --------------------------------------------------------------------------------------


def plot_training_window(lq: np.ndarray, gt: np.ndarray, *, title: str | None = None) -> Figure:
    """One training window: its LR frames (top row, enlarged pixel for pixel to the GT's size) above
    the ground-truth frames (bottom row), one column per frame.

    ``lq``: ``(t, S, S, 3)`` uint8; ``gt``: ``(t, 4S, 4S, 3)`` uint8.
    """
    t = len(lq)
    fig = Figure(figsize=(1.25 * t + 0.6, 3.0), layout="constrained")
    axes = fig.subplots(2, t, squeeze=False)
    for k in range(t):
        _show_image(axes[0, k], lq[k], f"frame {k + 1}")
        _show_image(axes[1, k], gt[k], "")
    axes[0, 0].set_ylabel(f"LR input\n{lq.shape[1]}x{lq.shape[2]}", fontsize=9)
    axes[1, 0].set_ylabel(f"ground truth\n{gt.shape[1]}x{gt.shape[2]}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_window_sizes(windows: dict[str, np.ndarray], *, title: str | None = None) -> Figure:
    """Training windows of different shapes at their true relative size: each window's LR frames
    side by side, one row per window, every pixel drawn the same size (a 16-px frame is half as wide
    as a 32-px one, 4 frames half as long a row as 8).

    ``windows``: ``{label: lq (t, S, S, 3) uint8}``.
    """
    gap = 2  # pixels between frames
    rows = list(windows.items())
    width = max(len(lq) * (lq.shape[2] + gap) for _, lq in rows)
    height = sum(lq.shape[1] + 14 for _, lq in rows)
    fig = Figure(figsize=(min(10.0, 0.034 * width + 1.6), 0.034 * height + 0.5), layout="constrained")
    ax = fig.subplots()
    y = 0
    for label, lq in rows:
        t, s = len(lq), lq.shape[1]
        for k in range(t):
            left = k * (lq.shape[2] + gap)
            ax.imshow(lq[k], extent=(left, left + lq.shape[2], y + s, y), interpolation="nearest")
        ax.text(0, y - 2, f"{label}: {t} frames of {s}x{s} LR pixels", fontsize=8, va="bottom")
        y += s + 14
    ax.set_xlim(-1, width)
    ax.set_ylim(y - 10, -12)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_basicvsr_structure(frames: int = 4) -> Figure:
    """BasicVSR's structure (Chan et al. 2021, :mod:`mgvsr.models.basicvsr`) as a diagram, one column
    per frame: SpyNet's flows (alignment), the backward and the forward propagation (a feature
    carried frame to frame, warped by the flow), the per-frame fusion and x4 upsampling.  In red,
    what multigrid training changes: the input's shape (T frames of S x S pixels), nothing of the
    model."""
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(9.2, 5.4), layout="constrained")
    ax = fig.subplots()
    xs = [1.8 * k for k in range(frames)]
    w, h = 1.25, 0.5
    rows = {"input": 5.0, "flow": 4.0, "backward": 3.0, "forward": 2.0, "recon": 1.0, "output": 0.0}

    def box(x, y, text, color, width=w, edge="0.3"):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - h / 2), width, h, boxstyle="round,pad=0.03,rounding_size=0.08",
                                    fc=color, ec=edge, lw=1.0, zorder=2))
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5, zorder=3)

    def arrow(x0, y0, x1, y1, color="0.35"):
        ax.annotate("", (x1, y1), (x0, y0), zorder=1, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.0,
                                                                        shrinkA=0, shrinkB=0))

    names = [f"$x_{{{k + 1}}}$" for k in range(frames)]
    wb, lane = 0.8, 0.52  # branch boxes are narrower: lanes beside them carry what bypasses a branch
    for k, x in enumerate(xs):
        box(x, rows["input"], f"LR frame {names[k]}\n$S \\times S$", "#fde2e2", edge="C3")
        box(x, rows["backward"], "warp, conv,\nres. blocks", "#e8f0fa", width=wb)
        box(x, rows["forward"], "warp, conv,\nres. blocks", "#e6f4ea", width=wb)
        box(x, rows["recon"], "fuse (1x1 conv),\nupsample x4", "#fbeee2")
        box(x, rows["output"], f"SR frame {k + 1}\n$4S \\times 4S$", "#fde2e2", edge="C3")
        arrow(x, rows["input"] - h / 2, x, rows["backward"] + h / 2)  # the frame into the backward branch
        ax.plot([x - lane, x - lane], [rows["input"] - h / 2, rows["forward"]], color="0.6", lw=1.0, zorder=1)
        arrow(x - lane, rows["forward"], x - wb / 2, rows["forward"], "0.6")
        arrow(x + lane, rows["backward"], x + lane, rows["recon"] + h / 2, "C0")  # backward feature to the fusion
        ax.plot([x + wb / 2, x + lane], [rows["backward"]] * 2, color="C0", lw=1.0, zorder=1)
        arrow(x, rows["forward"] - h / 2, x, rows["recon"] + h / 2, "C2")  # forward feature to the fusion
        arrow(x, rows["recon"] - h / 2, x, rows["output"] + h / 2)
    span = xs[-1] - xs[0] + w
    box((xs[0] + xs[-1]) / 2, rows["flow"], "SpyNet: optical flow between neighbouring frames, both ways "
        "(alignment: every warp below uses it)", "#f1f1f1", width=span)
    for a, b in zip(xs[:-1], xs[1:]):
        arrow(b - wb / 2, rows["backward"] + 0.12, a + wb / 2, rows["backward"] + 0.12, "C0")  # frame i+1 -> i
        arrow(a + wb / 2, rows["forward"] + 0.12, b - wb / 2, rows["forward"] + 0.12, "C2")  # frame i-1 -> i
    left = xs[0] - w / 2 - 0.15
    for key, text in (("flow", "alignment"), ("backward", "backward\npropagation"), ("forward", "forward\npropagation"),
                      ("recon", "upsampling")):
        ax.text(left, rows[key], text, ha="right", va="center", fontsize=8.5)
    right = xs[-1] + w / 2 + 0.2
    ax.text(right, rows["input"], "multigrid changes the input only:\nT frames (columns) of S x S pixels,\n"
            "small and short first, the full shape last", color="C3", fontsize=8, va="center")
    ax.text(right, (rows["backward"] + rows["recon"]) / 2, "the same weights for every frame\nand every size: "
            "the model\nis not changed (convolutions\nslide over any S, the\nrecurrence runs over any T)",
            color="C3", fontsize=8, va="center")
    ax.text(right, rows["output"], "compared with the ground\ntruth (4S x 4S): Charbonnier loss", fontsize=8,
            va="center")
    ax.set_xlim(left - 1.3, right + 2.6)
    ax.set_ylim(-0.5, 5.5)
    ax.axis("off")
    ax.set_title("BasicVSR: one column per frame of the clip", fontsize=10)
    return fig
