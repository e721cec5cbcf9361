"""Scales: how big the runs of a table (and of a notebook's experiments) are — one table, read by
the CLI, ``mgvsr reproduce``, the demo's lessons and every notebook.  Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

from mgvsr.errors import MgvsrError


@dataclass(frozen=True)
class Scale:
    """How big the runs of a table (and of a notebook's experiments) are.

    - ``models``: model substitutions (``{"basicvsr_m": "basicvsr_cpu"}``); None keeps the preset's.
    - ``dataset``: train (and test) on this dataset instead of the preset's; None keeps it.
    - ``iterations_div``, ``batch_div``, ``patch_div``, ``lr_mult``, ``frames_div``: the factors
      of :meth:`Preset.shrunk`: iterations / k (at least one per stage), minibatch / k (at least
      1), LR patch / k, every starting LR x k, clip length / k rounded up (recurrent models
      only: a sliding-window model's clip length is fixed by its architecture).
    - ``family_lr_mult``: a model family's own LR factor in place of ``lr_mult``
      (``{"edvr": 1.0}``: the runs of a model whose name starts with ``edvr``).
    - ``warmup_mult``: the warmup (already scaled with the run's length) this many times longer.
    - ``micro_batch_on_cpu``: on a CPU, split a step into micro-batches of the baseline's
      minibatch (the same update; a CPU is slower per sample on big batches).
    - ``amp_on_cpu``: on a CPU, train every run under mixed precision (bfloat16 autocast where the CPU
      computes it natively, :func:`mgvsr.device.resolve_precision`; fp32 elsewhere).
    - ``comparable``: whether the numbers may be read beside the paper's.
    - ``noise_seeds``: how many more seeds (the first seed + 1, + 2, ...) a table trains each of its runs
      with, so that every row's PSNR is a mean with its spread and the verdicts compare both sides'
      noise (:mod:`mgvsr.tables`).
    """

    name: str
    description: str
    models: dict | None = None
    dataset: str | None = None
    iterations_div: int = 1
    batch_div: int = 1
    patch_div: int = 1
    lr_mult: float = 1.0
    frames_div: int = 1
    family_lr_mult: dict | None = None
    warmup_mult: float = 1.0
    micro_batch_on_cpu: bool = False
    amp_on_cpu: bool = False
    checkpoint_every: int = 0
    comparable: bool = True
    noise_seeds: int = 0

    @property
    def shrinks(self) -> bool:
        return ((self.iterations_div, self.batch_div, self.patch_div, self.lr_mult, self.frames_div, self.warmup_mult)
                != (1, 1, 1, 1.0, 1, 1.0)) or bool(self.family_lr_mult)

    def lr_mult_for(self, model: str) -> float:
        """The LR factor of ``model``'s runs: its family's (:attr:`family_lr_mult`), else :attr:`lr_mult`."""
        return next((mult for family, mult in (self.family_lr_mult or {}).items() if model.startswith(family)),
                    self.lr_mult)


CPU_MODELS = {"basicvsr_m": "basicvsr_cpu", "basicvsr": "basicvsr_cpu", "edvr_m": "edvr_cpu",
              "basicvsrpp": "basicvsrpp_cpu"}

# Model families whose clip length is fixed by the architecture (not shrunk by a scale's frames_div).
FIXED_FRAMES = ("edvr",)

SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", "the mechanics only, for CI: CPU models, the sample clips, iterations / 12,500, "
                            "minibatch / 8, LR patch / 4, LR x 10 (a few dozen steps: the models learn nothing)",
                   models=CPU_MODELS, dataset="sample", iterations_div=12_500, batch_div=8, patch_div=4,
                   lr_mult=10.0, micro_batch_on_cpu=True, comparable=False),
    # Sized so that Table 1's basicvsr_m rows train the demo's shapes: LR 64 -> 32 and 32 -> 16,
    # 15/11/7 frames -> 8/6/4, baseline 300k -> 600 iterations of 16 / 4 = 4 clips.  LR x 5: with
    # x 10 (the baseline at the demo's 2e-3) the x4-minibatch rows ran at 8e-3 and their seeds ended far
    # apart (ours: 25.43, 24.53, 25.25 dB, sd 0.48); at x 5 they end within ~0.1 dB (docs/reproducing.md).
    # bf16 on a CPU: Table 1's BasicVSR-M baseline ~1.3x and ours ~1.45x faster, seed spreads as small
    # (iterations / 1000 instead halved the time but cost ours 0.5 dB and widened its spread:
    # docs/reproducing.md).  EDVR at its own LRs (x 1): at x 5 (2e-3 for the baseline) and at x 2.5 (2e-3
    # for the large batch) EDVR-M's deformable offsets grew to 150-230 px and the runs ended below bicubic;
    # at x 1 the baseline (4e-4) and the large batch (8e-4) learned, +0.75 and +0.85 dB over bicubic
    # (seed 0 each; docs/reproducing.md).
    "lesson": Scale("lesson", "the notebooks' default, long enough to learn: CPU models, the sample clips, "
                              "iterations / 500, minibatch / 4, LR patch / 2, frames / 2, LR x 5 (EDVR x 1), "
                              "bf16 on a CPU, three seeds",
                    models=CPU_MODELS, dataset="sample", iterations_div=500, batch_div=4, patch_div=2,
                    lr_mult=5.0, family_lr_mult={"edvr": 1.0}, frames_div=2, micro_batch_on_cpu=False,
                    amp_on_cpu=True, comparable=False, noise_seeds=2),
    "paper": Scale("paper", "the paper's presets as they are (models, datasets, shapes, minibatches, iterations)",
                   checkpoint_every=1000),
}


def get_scale(scale: str | Scale) -> Scale:
    """A :class:`Scale` by name (one of :data:`SCALES`), or the one given; the one place a scale
    name is checked."""
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise MgvsrError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    return SCALES[scale]


def by_scale(table: dict, scale: str | Scale, what: str = "settings"):
    """``table[scale name]`` for a table keyed by every scale (a notebook experiment's settings);
    MgvsrError for an unknown scale or a table that lacks one."""
    name = get_scale(scale).name
    if name not in table:
        raise MgvsrError(f"no {what} for scale {name!r} (it has {', '.join(table)})")
    return table[name]
