"""Models: the BasicVSR family (with SpyNet) and EDVR-M, by name through :func:`build_model`.

Each model file stands alone; this module only maps configuration names to classes and
their arguments, so ``build_model("basicvsr_m")`` is all a caller needs.
"""

from __future__ import annotations

import importlib

import torch.nn as nn

# name -> (module, class, keyword arguments).  Add a configuration here, next to nothing else.
MODEL_CONFIGS: dict[str, tuple[str, str, dict]] = {
    # BasicVSR as published (BasicSR's REDS config): 6,291,311 parameters.
    "basicvsr": ("basicvsr", "BasicVSR", dict(num_feat=64, num_block=30)),
    # BasicVSR-M, the paper's "medium" model, which the paper does not specify further.
    # mgvsr's choice: 64 features and 15 residual blocks per propagation branch (BasicSR's
    # class default), i.e. half the depth of BasicVSR: 4,075,631 parameters.
    "basicvsr_m": ("basicvsr", "BasicVSR", dict(num_feat=64, num_block=15)),
    # The CPU demo's BasicVSR (`mgvsr demo`): trained from scratch in minutes on 2 cores.
    # BasicVSR's architecture and names at 16 features, 2 residual blocks per branch, with
    # two deviations that a from-scratch CPU model needs (BasicSR checkpoints do not load):
    # a 16-channel HR tail (BasicSR's is 64 whatever num_feat; it was most of a step's FLOPs)
    # and SpyNet at a quarter of its width, zero-initialised (no pretrained flow exists at
    # that size; the flow starts at identity warps and is learnt, BasicVSR's recipe).
    "basicvsr_cpu": ("basicvsr", "BasicVSR", dict(num_feat=16, num_block=2, hr_feat=16, spynet_width=0.25,
                                                 spynet_zero_init=True)),
    # EDVR-M (BasicSR's EDVR_M config): 3,300,131 parameters; 2,996,259 without TSA.
    "edvr_m": ("edvr", "EDVR", dict(num_feat=64, num_frame=5, deformable_groups=8,
                                   num_extract_block=5, num_reconstruct_block=10,
                                   center_frame_idx=None, with_tsa=True)),
    "edvr_m_wotsa": ("edvr", "EDVR", dict(num_feat=64, num_frame=5, deformable_groups=8,
                                         num_extract_block=5, num_reconstruct_block=10,
                                         center_frame_idx=None, with_tsa=False)),
    # The CPU demo's EDVR (for `mgvsr demo --model edvr_m`, wired by the project lead): EDVR-M's
    # architecture (PCD, TSA, 5 frames) at 16 features, 4 offset groups, 2 + 2 blocks, and a
    # 16-channel HR tail instead of BasicSR's 64 (which was 61% of a step's FLOPs; in one
    # 600-iteration run on the sample clips, 16 trained 1.8x faster and ended 0.3 dB higher):
    # 188,227 parameters.  Measured with bench/bench_edvr.py --model edvr_cpu and
    # bench/learn_edvr_cpu.py.  Not loadable from BasicSR checkpoints.
    "edvr_cpu": ("edvr", "EDVR", dict(num_feat=16, num_frame=5, deformable_groups=4,
                                     num_extract_block=2, num_reconstruct_block=2,
                                     center_frame_idx=None, with_tsa=True, hr_feat=16)),
}


def model_names() -> list[str]:
    return sorted(MODEL_CONFIGS)


def build_model(name: str, **overrides) -> nn.Module:
    """Build a model by configuration name; ``overrides`` replace constructor arguments."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(model_names())}")
    module, cls, kwargs = MODEL_CONFIGS[name]
    klass = getattr(importlib.import_module(f"mgvsr.models.{module}"), cls)
    return klass(**{**kwargs, **overrides})
