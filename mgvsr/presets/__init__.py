"""The paper's runs (Tables 1-9) and the demo's as named presets, free of torch.

A :class:`Preset` names a model, a dataset and a :class:`~mgvsr.schedule.Plan`, plus the recipe
details that are not shapes or LRs (SpyNet frozen at first, EDVR's TSA-only start) and the numbers
the paper published for it.  ``mgvsr plan NAME`` prints one; the trainer runs one; the tests check
every one against the paper's facts.

- :mod:`mgvsr.presets.preset`: the :class:`Preset` type and its transformations
  (:meth:`Preset.shrunk`, :meth:`Preset.at_scale`, :meth:`Preset.on`);
- :mod:`mgvsr.presets.scales`: the scales (``smoke``, ``lesson``, ``paper``);
- :mod:`mgvsr.presets.registry`: names to presets, the paper's tables;
- :mod:`mgvsr.presets.recipe`: how runs derive from a baseline (linear scaling, warmup, multigrid);
- :mod:`mgvsr.presets.paper`: the paper's catalogue; :mod:`mgvsr.presets.basicvsrpp`: BasicVSR++'s recipe
  and the paper's rules applied to it (beyond the paper); :mod:`mgvsr.presets.demo`: the CPU demo's.
"""

from mgvsr.presets import paper  # noqa: F401, I001  (registers the paper's catalogue, in its order ...)
from mgvsr.presets import basicvsrpp  # noqa: F401, I001  (... then BasicVSR++'s, beyond the paper ...)
from mgvsr.presets import demo  # noqa: F401, I001  (... then the demo's presets)
from mgvsr.presets.preset import BEYOND_PAPER, PAPER_GPU, PAPER_SAMPLES_PER_GPU, PaperDevices, Preset, scaled_decay, scaled_span
from mgvsr.presets.recipe import FLOW_FROZEN_ITERS, FLOW_LR_MULT, FUSION_ONLY_ITERS, WARMUP_ITERS
from mgvsr.presets.registry import (
    ALL_TABLES,
    PRESETS,
    TABLES,
    UnknownPresetError,
    get_preset,
    list_presets,
    register,
    table_presets,
    table_runs,
)
from mgvsr.presets.scales import CPU_MODELS, FIXED_FRAMES, SCALES, Scale, by_scale, get_scale

__all__ = ["BEYOND_PAPER", "PAPER_GPU", "PAPER_SAMPLES_PER_GPU", "PaperDevices", "Preset", "scaled_decay", "scaled_span",
           "FLOW_FROZEN_ITERS", "FLOW_LR_MULT", "FUSION_ONLY_ITERS", "WARMUP_ITERS", "ALL_TABLES", "PRESETS", "TABLES",
           "UnknownPresetError",
           "get_preset", "list_presets", "register", "table_presets", "table_runs", "CPU_MODELS", "FIXED_FRAMES",
           "SCALES", "Scale", "by_scale", "get_scale"]
