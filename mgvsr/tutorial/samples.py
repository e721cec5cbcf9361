"""Training samples as images: the windows the trainer feeds the model, for notebooks 1 and 2.

A training sample is a window of ``frames`` consecutive frames, an ``S x S`` LR crop with the
aligned ``4S x 4S`` ground truth, drawn by :class:`mgvsr.data.windows.TrainingWindows` (the
trainer's own: sample ``k`` of a run is a pure function of the seed and ``k``).  These functions
return the windows as ``(t, h, w, 3)`` uint8 RGB arrays, ready for
:func:`mgvsr.tutorial.viz.plot_training_window` and :func:`~mgvsr.tutorial.viz.plot_window_sizes`.
"""

from __future__ import annotations

import numpy as np

from mgvsr.data.datasets import open_dataset
from mgvsr.data.source import ClipSource
from mgvsr.data.windows import TrainingWindows
from mgvsr.schedule import Plan

Window = tuple[np.ndarray, np.ndarray]  # lq (t, S, S, 3), gt (t, 4S, 4S, 3), uint8 RGB


def _images(x) -> np.ndarray:
    """``(t, 3, h, w)`` uint8 tensor -> ``(t, h, w, 3)`` uint8 array."""
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def training_window(frames: int, patch: int, *, index: int = 0, seed: int = 0, source: ClipSource | None = None,
                    augment: bool = True) -> Window:
    """Sample ``index`` of a run seeded ``seed`` at the shape ``patch&frames``, exactly as the trainer
    draws it (:class:`~mgvsr.data.windows.TrainingWindows`, with its flips when ``augment``), from
    ``source`` (default: the embedded sample clips' training set)."""
    source = source if source is not None else open_dataset("sample")
    lq, gt = TrainingWindows(source.windows_source(frames), frames, patch, length=1, seed=seed, offset=index,
                             augment=augment)[0]
    return _images(lq), _images(gt)


def stage_windows(plan: Plan, *, seed: int = 0, source: ClipSource | None = None) -> dict[str, Window]:
    """The first training window of every stage of ``plan``, as the trainer draws it (the sample
    numbered by the samples of the stages before), keyed ``"stage j (patch&frames)"``."""
    source = source if source is not None else open_dataset("sample")
    found, before = {}, 0
    for j, stage in enumerate(plan.stages):
        found[f"stage {j + 1} ({stage.label})"] = training_window(stage.frames, stage.patch, index=before, seed=seed,
                                                                   source=source)
        before += stage.samples
    return found
