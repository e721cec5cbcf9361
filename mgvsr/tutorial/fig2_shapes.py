"""The cost of a minibatch shape (the paper's Fig. 2): step time and FLOPs against clip length
and patch size, measured on the machine at hand.

A training step on a minibatch of shape ``(batch, frames, 3, patch, patch)`` (LR; GT at x4) is
forward, Charbonnier loss, backward and an Adam step: :class:`mgvsr.step.TrainStep`, the step
:class:`mgvsr.train.Trainer` runs.  Here it runs on random pixels (the cost does not depend on their values) so
that only the shape varies::

    costs = measure_shape_costs("basicvsr_cpu", [(16, 4), (16, 8), (32, 8)], batch=2)
    print(cost_table_text(costs))

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and
matrix products, forward and backward; it ignores elementwise work, ``grid_sample`` and the
optimizer, which on a CPU are not free: measured time grows less than proportionally with
FLOPs when they are few).

:func:`train_shape` trains the same model with one fixed shape for a few iterations (the
paper's Fig. 2 compares such runs), through the real trainer, and returns its PSNR and
training time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from mgvsr.device import resolve_device
from mgvsr.errors import MgvsrError
from mgvsr.launch import run_preset
from mgvsr.models import build_model
from mgvsr.models.protocol import target_frames
from mgvsr.options import RunOptions, TrainConfig
from mgvsr.presets import Preset, by_scale
from mgvsr.schedule import baseline, multigrid
from mgvsr.step import TrainStep, charbonnier
from mgvsr.tutorial.explore import expected_speedup, same_samples_baseline

Shape = tuple[int, int]  # (LR patch side, frames)


def _model(model: nn.Module | str) -> nn.Module:
    return build_model(model) if isinstance(model, str) else model


def _device(device: torch.device | str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU (as the trainer)."""
    return resolve_device(device) if isinstance(device, str) else device


def random_batch(batch: int, frames: int, patch: int, scale: int = 4, seed: int = 0,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random LR ``(batch, frames, 3, patch, patch)`` and GT ``(batch, frames, 3, scale*patch,
    scale*patch)`` minibatches, RGB in [0, 1]."""
    for value, what in ((batch, "batch"), (frames, "frames"), (patch, "patch")):
        if not isinstance(value, int) or value <= 0:
            raise MgvsrError(f"{what} must be a positive integer, got {value!r}")
    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(batch, frames, 3, patch, patch, generator=gen)
    gt = torch.rand(batch, frames, 3, scale * patch, scale * patch, generator=gen)
    return lq.to(device), gt.to(device)


def make_train_step(model: nn.Module, lq: torch.Tensor, gt: torch.Tensor, lr: float = 2e-4) -> Callable[[], float]:
    """A function running one training step of ``model`` on ``(lq, gt)`` and returning its compute seconds.

    The step is the trainer's, :class:`mgvsr.step.TrainStep` in fp32: forward, the Charbonnier loss
    against every frame (or the centre frame of a sliding-window model), backward, Adam (betas 0.9,
    0.99) over the parameters, on ``lq``'s device, in ``channels_last`` where the model trains faster
    so; CUDA work is synchronised before the clock stops.
    """
    step = TrainStep(model, TrainConfig(), lq.device)

    def run() -> float:
        return step(iter([(lq, gt)]), lr=lr, it=0, samples=lq.shape[0]).compute

    return run


def time_train_step(model: nn.Module | str, batch: int, frames: int, patch: int, *, steps: int = 3,
                    warmup: int = 1, device: torch.device | str = "cpu", seed: int = 0) -> list[float]:
    """Seconds of ``steps`` training steps at one shape, after ``warmup`` untimed ones."""
    device = _device(device)
    model = _model(model).to(device)
    lq, gt = random_batch(batch, frames, patch, seed=seed, device=device)
    step = make_train_step(model, lq, gt)
    for _ in range(warmup):
        step()
    return [step() for _ in range(steps)]


def count_step_flops(model: nn.Module | str, batch: int, frames: int, patch: int) -> dict[str, float]:
    """FLOPs of one training step at a shape: ``{"forward": ..., "backward": ..., "total": ...}``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on CPU tensors (the count does not
    depend on the device).  A multiply-add counts as 2 FLOPs.
    """
    model = _model(model).cpu().train()
    lq, gt = random_batch(batch, frames, patch)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(lq)
    forward = float(counter.get_total_flops())
    loss = charbonnier(out, target_frames(model, gt))
    counter = FlopCounterMode(display=False)
    with counter:
        loss.backward()
    backward = float(counter.get_total_flops())
    model.zero_grad(set_to_none=True)
    return {"forward": forward, "backward": backward, "total": forward + backward}


@dataclass(frozen=True)
class ShapeCost:
    """One shape's measured cost: median ``seconds`` per training step (of ``times``) and
    ``flops`` per step (forward + backward)."""

    patch: int
    frames: int
    batch: int
    seconds: float
    flops: float
    times: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"{self.patch}&{self.frames}"

    @property
    def pixels(self) -> int:
        """LR pixels per step: ``batch * frames * patch**2`` (the cost model of :mod:`mgvsr.tutorial.explore`)."""
        return self.batch * self.frames * self.patch**2


def measure_shape_costs(model: nn.Module | str, shapes: Iterable[Shape], batch: int, *, steps: int = 3,
                        warmup: int = 1, device: torch.device | str = "cpu", seed: int = 0,
                        progress: bool = True) -> list[ShapeCost]:
    """Step time and FLOPs of ``model`` at every ``(patch, frames)`` of ``shapes``.

    One model (a name is built once, with the trainer's seed) is timed at every shape, so the
    weights are the same; each shape gets a fresh optimizer and ``warmup`` untimed steps.
    """
    device = _device(device)
    shapes = [tuple(s) for s in shapes]
    if not shapes:
        raise MgvsrError("no shapes to measure: give (patch, frames) pairs")
    torch.manual_seed(seed)
    net = _model(model).to(device)
    costs = []
    for patch, frames in tqdm(shapes, desc="timing shapes", unit="shape", disable=not progress):
        times = time_train_step(net, batch, frames, patch, steps=steps, warmup=warmup, device=device, seed=seed)
        flops = count_step_flops(net, batch, frames, patch)["total"]
        net.to(device)
        costs.append(ShapeCost(patch, frames, batch, statistics.median(times), flops, tuple(times)))
    return costs


def sweep(base: Shape, patches: Sequence[int] = (), frames: Sequence[int] = ()) -> dict[str, list[Shape]]:
    """Fig. 2's two sweeps around the baseline shape ``base = (patch, frames)``: ``"frames"``
    (the patch fixed at the baseline's) and ``"patch"`` (the frames fixed), each in increasing
    order and including the baseline."""
    patch0, frames0 = base
    return {"frames": [(patch0, t) for t in sorted(set(frames) | {frames0})],
            "patch": [(p, frames0) for p in sorted(set(patches) | {patch0})]}


def relative_to(costs: Sequence[ShapeCost], base: Shape) -> ShapeCost:
    """The cost of shape ``base`` among ``costs`` (MgvsrError naming the shapes if absent)."""
    for c in costs:
        if (c.patch, c.frames) == tuple(base):
            return c
    raise MgvsrError(f"shape {base[0]}&{base[1]} was not measured; measured: {', '.join(c.label for c in costs)}")


def cost_table_text(costs: Sequence[ShapeCost], base: Shape | None = None) -> str:
    """An aligned text table: shape, LR pixels, GFLOPs, seconds per step, and each relative to
    ``base`` (default: the largest shape measured)."""
    if not costs:
        raise MgvsrError("no costs to tabulate")
    ref = relative_to(costs, base) if base is not None else max(costs, key=lambda c: (c.pixels, c.flops))
    head = ("shape", "batch", "LR pixels", "GFLOP/step", "s/step", "FLOPs vs base", "time vs base")
    rows = [(c.label, str(c.batch), f"{c.pixels:,}", f"{c.flops / 1e9:.2f}", f"{c.seconds:.3f}",
             f"{c.flops / ref.flops:.2f}", f"{c.seconds / ref.seconds:.2f}") for c in costs]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
    lines.append(f"base: {ref.label}")
    return "\n".join(lines)


def step_times(costs: Sequence[ShapeCost]) -> dict[tuple[int, int, int], float]:
    """``{(patch, frames, batch): seconds}``, the ``step_times`` of :mod:`mgvsr.tutorial.explore`."""
    return {(c.patch, c.frames, c.batch): c.seconds for c in costs}


# --------------------------------------------------------------------------------------
# A short training at one fixed shape
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeRun:
    """A short fixed-shape training: its shape, ``psnr`` / ``ssim`` on the held-out clips at the
    end, ``train_seconds`` (compute + data) and ``compute_seconds``."""

    patch: int
    frames: int
    batch: int
    iterations: int
    psnr: float
    ssim: float
    train_seconds: float
    compute_seconds: float

    @property
    def label(self) -> str:
        return f"{self.patch}&{self.frames}"


def train_shape(model: str, shape: Shape, out: str | Path, *, iterations: int, batch: int, lr: float,
                options: RunOptions | None = None) -> ShapeRun:
    """Train ``model`` from scratch at one fixed ``shape = (patch, frames)`` (one cosine from ``lr``) on the
    sample clips into ``out`` and score it on their held-out clips.  ``options``: the device, seed,
    progress and, for BasicVSR and BasicVSR-M, the pretrained SpyNet weights (or ``"none"``) they need
    (:func:`mgvsr.models.flow_init`).

    A finished run of the same spec in ``out`` is read, not retrained (:mod:`mgvsr.runs`).
    """
    patch, frames = shape
    plan = baseline(iterations, patch, frames, batch, lr, name=f"fixed {patch}&{frames}")
    preset = Preset(name=f"tutorial/fig2/{patch}x{frames}", model=model, dataset="sample", plan=plan)
    summary = run_preset(preset, out, options or RunOptions(progress=False)).summary
    return ShapeRun(patch, frames, batch, iterations, summary["psnr"], summary["ssim"],
                    summary["train_seconds"], summary["compute_seconds"])


def shape_runs_text(runs: Sequence[ShapeRun], base: Shape) -> str:
    """Fixed-shape runs as text: shape, PSNR, SSIM, training seconds and the speedup against
    the run of shape ``base`` (the paper's "x" of Fig. 2)."""
    ref = next((r for r in runs if (r.patch, r.frames) == tuple(base)), None)
    if ref is None:
        raise MgvsrError(f"no run of the base shape {base[0]}&{base[1]} among {', '.join(r.label for r in runs)}")
    lines = [f"{'shape':>6}  {'iterations':>10}  {'batch':>5}  {'PSNR':>6}  {'SSIM':>6}  {'train s':>7}  {'speedup':>7}"]
    for r in runs:
        lines.append(f"{r.label:>6}  {r.iterations:>10,}  {r.batch:>5}  {r.psnr:6.2f}  {r.ssim:6.4f}  "
                     f"{r.train_seconds:7.1f}  {ref.train_seconds / r.train_seconds:6.2f}x")
    return "\n".join(lines)


def runs_verdict(runs: Sequence[ShapeRun], bicubic: float) -> str:
    """What the short trainings allow one to say: the spread of their PSNRs and whether they beat
    bicubic (a comparison of accuracy means something only where they do)."""
    psnrs = [r.psnr for r in runs]
    spread = max(psnrs) - min(psnrs)
    best = max(runs, key=lambda r: r.psnr)
    above = [r.label for r in runs if r.psnr > bicubic]
    text = f"The runs span {spread:.2f} dB (best: {best.label}, {best.psnr:.2f} dB). "
    if not above:
        return text + (f"None beats bicubic ({bicubic:.2f} dB): they are too short to rank the shapes by "
                       "accuracy; only the speedups mean something here.")
    return text + f"{len(above)} of {len(runs)} beat bicubic ({bicubic:.2f} dB): {', '.join(above)}."


def timing_comparison(costs: Sequence[ShapeCost], runs: Sequence[ShapeRun], base: Shape) -> list[dict]:
    """The two measurements of a step's time side by side, for every shape that has both: ``timed``
    (seconds of a step timed a few times on random pixels, :func:`measure_shape_costs`), ``run`` (the
    short training's compute seconds per step) and ``run_data`` (its data loading per step), each also
    relative to the ``base`` shape's (``timed_vs_base``, ``run_vs_base``, ``wall_vs_base``: compute and
    data, what the runs' speedups divide).  Rows in ``runs``' order."""
    timed = {(c.patch, c.frames): c.seconds for c in costs}
    done = {(r.patch, r.frames): r for r in runs}
    if tuple(base) not in timed or tuple(base) not in done:
        raise MgvsrError(f"the base shape {base[0]}&{base[1]} needs both a timed step and a run")
    ref_run = done[tuple(base)]
    rows = []
    for r in runs:
        if (r.patch, r.frames) not in timed:
            continue
        rows.append({"shape": r.label, "timed": timed[r.patch, r.frames], "run": r.compute_seconds / r.iterations,
                     "run_data": (r.train_seconds - r.compute_seconds) / r.iterations,
                     "timed_vs_base": timed[r.patch, r.frames] / timed[tuple(base)],
                     "run_vs_base": r.compute_seconds / ref_run.compute_seconds,
                     "wall_vs_base": r.train_seconds / ref_run.train_seconds})
    return rows


def timing_comparison_text(costs: Sequence[ShapeCost], runs: Sequence[ShapeRun], base: Shape) -> str:
    """:func:`timing_comparison` as a table, and the shape where the two measurements disagree most."""
    rows = timing_comparison(costs, runs, base)
    label = f"{base[0]}&{base[1]}"
    lines = [f"{'shape':>6}  {'timed s/step':>12}  {'run s/step':>10}  {'run data s/step':>15}  "
             f"{'timed vs ' + label:>14}  {'run vs ' + label:>12}  {'run+data vs ' + label:>17}"]
    for r in rows:
        lines.append(f"{r['shape']:>6}  {r['timed']:>12.3f}  {r['run']:>10.3f}  {r['run_data']:>15.3f}  "
                     f"{r['timed_vs_base']:>14.2f}  {r['run_vs_base']:>12.2f}  {r['wall_vs_base']:>17.2f}")
    worst = max(rows, key=lambda r: abs(r["timed_vs_base"] - r["run_vs_base"]))
    lines.append(f"largest disagreement: {worst['shape']}, a timed step at {worst['timed_vs_base']:.2f} of a "
                 f"{label} step, the run's steps at {worst['run_vs_base']:.2f} (speedup "
                 f"{1 / worst['timed_vs_base']:.2f}x against {1 / worst['run_vs_base']:.2f}x)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Fig. 2 at a scale
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fig2Settings:
    """What notebook 2 measures at one scale: ``model``, the ``base`` shape ``(patch, frames)``
    (the baseline's), the other ``patches`` and ``frames`` of the two sweeps, the minibatch,
    timed ``steps`` per shape, and the short trainings' ``iterations`` and ``lr``."""

    model: str
    base: Shape
    patches: tuple[int, ...]
    frames: tuple[int, ...]
    batch: int
    steps: int
    iterations: int
    lr: float

    def sweep(self) -> dict[str, list[Shape]]:
        return sweep(self.base, self.patches, self.frames)


SETTINGS = {
    # a minute on 2 CPU cores: the CPU model, small shapes, a few dozen training steps
    "smoke": Fig2Settings("basicvsr_cpu", base=(16, 8), patches=(8, 12), frames=(4, 6), batch=2, steps=3,
                          iterations=30, lr=2e-3),
    # about four minutes on 2 CPU cores: the demo's shape (LR 32, 8 frames, 4 clips) as the base, 300 steps
    # each (the fast start's basicvsr_cpu passes bicubic within ~100 steps at the demo's LR)
    "lesson": Fig2Settings("basicvsr_cpu", base=(32, 8), patches=(16, 24), frames=(4, 6), batch=4, steps=3,
                           iterations=300, lr=2e-3),
    # the paper's BasicVSR-M and its shapes (LR 32/48/64, 7/11/15 frames): a GPU job
    "paper": Fig2Settings("basicvsr_m", base=(64, 15), patches=(32, 48), frames=(7, 11), batch=4, steps=5,
                          iterations=2_000, lr=2e-4),
}


def get_settings(scale: str) -> Fig2Settings:
    """Notebook 2's settings at ``scale`` (one of :data:`mgvsr.presets.SCALES`)."""
    return by_scale(SETTINGS, scale, "Fig. 2 settings")


def unique_shapes(sweeps: dict[str, list[Shape]]) -> list[Shape]:
    """The shapes of all sweeps, each once, in first-seen order."""
    seen: list[Shape] = []
    for shapes in sweeps.values():
        seen += [s for s in shapes if s not in seen]
    return seen


def measure_sweep(settings: Fig2Settings, device: str = "auto", progress: bool = True) -> dict[str, list[ShapeCost]]:
    """:func:`measure_shape_costs` of every shape of ``settings.sweep()`` (each measured once),
    grouped back by sweep: ``{"frames": [...], "patch": [...]}``."""
    sweeps = settings.sweep()
    costs = measure_shape_costs(settings.model, unique_shapes(sweeps), settings.batch, steps=settings.steps,
                                device=device, progress=progress)
    by_shape = {(c.patch, c.frames): c for c in costs}
    return {axis: [by_shape[s] for s in shapes] for axis, shapes in sweeps.items()}


def train_sweep(settings: Fig2Settings, out: str | Path, device: str = "auto", progress: bool = True,
                spynet: str | Path | None = None) -> dict[str, list[ShapeRun]]:
    """:func:`train_shape` for every shape of ``settings.sweep()`` (each trained once, into
    ``out/<patch>x<frames>-b<batch>-i<iterations>``), grouped back by sweep.  ``spynet``: the
    pretrained SpyNet weights the paper scale's BasicVSR-M needs (or ``"none"``)."""
    sweeps = settings.sweep()
    done = {}
    for patch, frames in tqdm(unique_shapes(sweeps), desc="short trainings", unit="run", disable=not progress):
        folder = Path(out) / f"{patch}x{frames}-b{settings.batch}-i{settings.iterations}"
        done[patch, frames] = train_shape(settings.model, (patch, frames), folder, iterations=settings.iterations,
                                          batch=settings.batch, lr=settings.lr,
                                          options=RunOptions(device=device, spynet=spynet, progress=False))
    return {axis: [done[s] for s in shapes] for axis, shapes in sweeps.items()}


def expected_speedups(settings: Fig2Settings, costs: dict[str, list[ShapeCost]], device: str = "auto",
                      progress: bool = True) -> dict:
    """The expected speedup of a multigrid plan over the base shape, by LR pixels and by the step
    times measured here (notebook 3's cost models side by side).

    The plan: a hierarchical multigrid on ``settings.base`` with the sweeps' smallest patch and
    frames as its first sizes (``spatial = (min patch, base patch)``, ``temporal`` = the frames
    swept), at ``settings.batch``.  Shapes of the plan not in ``costs`` are measured.
    Returns ``{"plan": Plan, "pixels": speedup, "measured": speedup, "step_times": {...}}``.
    """
    patch, frames = settings.base
    spatial = tuple(sorted({min(settings.patches + (patch,)), patch}))
    temporal = tuple(sorted(set(settings.frames) | {frames}))
    plan = multigrid(len(spatial) * len(temporal) * 10, patch, frames, settings.batch, settings.lr,
                     spatial=spatial, temporal=temporal, name="multigrid")
    have = {(c.patch, c.frames): c for cs in costs.values() for c in cs if c.batch == settings.batch}
    missing = [(s.patch, s.frames) for s in plan.stages if (s.patch, s.frames) not in have]
    if missing:
        for c in measure_shape_costs(settings.model, missing, settings.batch, steps=settings.steps,
                                     device=device, progress=progress):
            have[c.patch, c.frames] = c
    times = step_times(list(have.values()))
    base = same_samples_baseline(plan)
    return {"plan": plan, "pixels": expected_speedup(plan, base), "measured": expected_speedup(plan, base, times),
            "step_times": times}
