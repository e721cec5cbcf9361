"""Models: the BasicVSR family (with SpyNet) and EDVR-M, by name through :func:`build_model`.

Each model file stands alone (its architecture, the protocol methods of
:mod:`mgvsr.models.protocol`, and ``config_from_weights`` reading its constructor arguments
back from a state dict); this module maps configuration names to classes and their
arguments, so ``build_model("basicvsr_m")`` is all a caller needs, and names the
configuration of a checkpoint's weights (:func:`infer_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from mgvsr.errors import CheckpointError
from mgvsr.models import basicvsr, edvr
from mgvsr.models.checkpoints import load_pretrained

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
    # fast_start: initial weights that start learning at once (blocks.fast_start_init; with
    # BasicSR's init it sat at its bilinear skip's PSNR for ~150 steps: bench/bench_faster_start.py).
    "basicvsr_cpu": ("basicvsr", "BasicVSR", dict(num_feat=16, num_block=2, hr_feat=16, spynet_width=0.25,
                                                 spynet_zero_init=True, fast_start=True)),
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
    # fast_start as basicvsr_cpu (steps to bicubic: more than 300 with BasicSR's init, 280 with it).
    "edvr_cpu": ("edvr", "EDVR", dict(num_feat=16, num_frame=5, deformable_groups=4,
                                     num_extract_block=2, num_reconstruct_block=2,
                                     center_frame_idx=None, with_tsa=True, hr_feat=16, fast_start=True)),
}


def model_names() -> list[str]:
    return sorted(MODEL_CONFIGS)


MODULES = {"basicvsr": basicvsr, "edvr": edvr}
# constructor options that only change the initial weights (not readable from trained weights)
INIT_ONLY = ("spynet_zero_init", "fast_start")
# the class defaults of the arguments config_from_weights reads, where a configuration omits them
READ_DEFAULTS = {"BasicVSR": dict(hr_feat=64, spynet_width=1.0), "EDVR": dict(hr_feat=64)}


def build_model(name: str, **overrides) -> nn.Module:
    """Build a model by configuration name; ``overrides`` replace constructor arguments."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(model_names())}")
    module, cls, kwargs = MODEL_CONFIGS[name]
    return getattr(MODULES[module], cls)(**{**kwargs, **overrides})


def infer_config(state: Mapping[str, torch.Tensor]) -> tuple[str, dict]:
    """``(configuration name, constructor overrides)`` of the network whose weights ``state`` holds.

    Each family reads its arguments from the tensors (``basicvsr.config_from_weights``,
    ``edvr.config_from_weights``); a registered configuration is named when it matches (no
    overrides), else the family's base configuration with the arguments read.
    """
    for module, cls, base in (("basicvsr", "BasicVSR", "basicvsr"), ("edvr", "EDVR", None)):
        found = MODULES[module].config_from_weights(state)
        if found is None:
            continue
        for name, (mod, klass, kwargs) in MODEL_CONFIGS.items():
            config = {k: v for k, v in {**READ_DEFAULTS[cls], **kwargs}.items() if k not in INIT_ONLY}
            if klass == cls and all(config.get(k) == v for k, v in found.items()):
                return name, {}
        if base is None:
            raise CheckpointError(f"an {cls} checkpoint of no registered configuration "
                                  f"({', '.join(f'{k}={v}' for k, v in found.items())}); name it with --model")
        return base, found
    raise CheckpointError(f"cannot tell the architecture from the checkpoint's weights (first keys: "
                          f"{sorted(state)[:5]}); name it with --model")


def load_model(name: str, checkpoint: str | Path) -> nn.Module:
    """Model configuration ``name`` with the weights of ``checkpoint`` (a trainer's ``final.pth`` or a
    BasicSR/MMagic file), in eval mode."""
    model = build_model(name)
    load_pretrained(model, checkpoint)
    return model.eval()
