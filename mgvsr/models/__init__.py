"""Models: the BasicVSR family (BasicVSR, BasicVSR++, with SpyNet) and EDVR-M, by name through :func:`build_model`.

Each model file stands alone (its architecture, the protocol methods of
:mod:`mgvsr.models.protocol`, and ``config_from_weights`` reading its constructor arguments
back from a state dict); this module maps configuration names to classes and their
arguments, so ``build_model("basicvsr_m")`` is all a caller needs, and names the
configuration of a checkpoint's weights (:func:`infer_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from mgvsr.errors import CheckpointError, MgvsrError
from mgvsr.models import basicvsr, basicvsrpp, edvr
from mgvsr.models.checkpoints import AUTO_KEY, load_pretrained
from mgvsr.models.spynet import SPYNET_FILES, SpynetFile, check_spynet_file

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
    # a 16-channel HR tail (BasicSR's is 64 whatever num_feat, most of a step's FLOPs at 16 features)
    # and SpyNet at a quarter of its width, zero-initialised (no pretrained flow exists at
    # that size; the flow starts at identity warps and is learnt, BasicVSR's recipe).
    # fast_start: initial weights that start learning at once (blocks.fast_start_init; with
    # BasicSR's init it sits at its bilinear skip's PSNR for its first ~150 steps: bench/bench_faster_start.py).
    "basicvsr_cpu": ("basicvsr", "BasicVSR", dict(num_feat=16, num_block=2, hr_feat=16, spynet_width=0.25,
                                                 spynet_zero_init=True, fast_start=True)),
    # BasicVSR++ as published (BasicSR's BasicVSRPlusPlus, MMagic's basicvsr-pp_c64n7 configs):
    # 7,322,927 parameters, 5,882,627 without SpyNet.
    "basicvsrpp": ("basicvsrpp", "BasicVSRPlusPlus", dict(mid_channels=64, num_blocks=7)),
    # A CPU-lesson BasicVSR++: its architecture and names (second-order grid propagation with
    # flow-guided deformable alignment, four branches) at 16 features and 2 residual blocks per
    # branch, with basicvsr_cpu's deviations (a 16-channel HR tail; SpyNet at a quarter of its
    # width, zero-initialised; fast_start) and 4 deformable groups instead of 16: at 16 features,
    # 16 groups make the last offset conv 16 -> 432 channels, 39% of the convolutions' multiply-adds
    # (4 groups: 14%, and 1.4x fewer in all; counted with forward hooks on the Conv2d layers at
    # 16x16 x 4 frames).  384,919 parameters.  BasicSR checkpoints do not load.
    "basicvsrpp_cpu": ("basicvsrpp", "BasicVSRPlusPlus", dict(mid_channels=16, num_blocks=2, deformable_groups=4,
                                                            hr_feat=16, spynet_width=0.25, spynet_zero_init=True,
                                                            fast_start=True)),
    # EDVR-M (BasicSR's EDVR_M config): 3,300,131 parameters; 2,996,259 without TSA.
    "edvr_m": ("edvr", "EDVR", dict(num_feat=64, num_frame=5, deformable_groups=8,
                                   num_extract_block=5, num_reconstruct_block=10,
                                   center_frame_idx=None, with_tsa=True)),
    "edvr_m_wotsa": ("edvr", "EDVR", dict(num_feat=64, num_frame=5, deformable_groups=8,
                                         num_extract_block=5, num_reconstruct_block=10,
                                         center_frame_idx=None, with_tsa=False)),
    # The CPU demo's EDVR (`mgvsr demo --model edvr_m`): EDVR-M's architecture (PCD, TSA, 5 frames)
    # at 16 features, 4 offset groups, 2 + 2 blocks, and a 16-channel HR tail instead of BasicSR's 64
    # (64 is 61% of a step's FLOPs at 16 features; in one 600-iteration run on the sample clips, 16
    # trained 1.8x faster and ended 0.3 dB higher):
    # 188,227 parameters.  Measured with bench/bench_edvr.py --model edvr_cpu and
    # bench/learn_edvr_cpu.py.  Not loadable from BasicSR checkpoints.
    # fast_start as basicvsr_cpu (steps to bicubic: more than 300 with BasicSR's init, 280 with it).
    "edvr_cpu": ("edvr", "EDVR", dict(num_feat=16, num_frame=5, deformable_groups=4,
                                     num_extract_block=2, num_reconstruct_block=2,
                                     center_frame_idx=None, with_tsa=True, hr_feat=16, fast_start=True)),
}


# Configurations whose recipe starts SpyNet from pretrained weights: BasicVSR's (SpyNet trained on
# Sintel, frozen for the first 5,000 iterations, then fine-tuned at 0.125 x LR) and BasicVSR++'s
# (the same, fine-tuned at 0.25 x LR).  Training one needs the weights (``--spynet PATH``) or an
# explicit opt-out (``--spynet none``): see :func:`flow_init`.  The CPU models (basicvsr_cpu,
# basicvsrpp_cpu: a quarter-width SpyNet) learn their flow from scratch.
PRETRAINED_FLOW = ("basicvsr", "basicvsr_m", "basicvsrpp")
FLOW_CLASSES = ("BasicVSR", "BasicVSRPlusPlus")  # the classes with a SpyNet
NO_SPYNET = "none"  # ``--spynet none``: train a PRETRAINED_FLOW model from a random SpyNet, on purpose


class SpynetRequiredError(MgvsrError):
    """A model whose recipe needs pretrained SpyNet weights, and none were given."""


@dataclass(frozen=True)
class FlowInit:
    """What a run's SpyNet starts from.

    - ``file``: pretrained weights (a :class:`~mgvsr.models.spynet.SpynetFile`, checked and hashed);
    - ``opted_out``: no weights for a :data:`PRETRAINED_FLOW` model, asked for with ``--spynet none``;
    - neither: the model's own initialisation (CPU models, EDVR), which the recipe expects.
    """

    model: str
    file: SpynetFile | None = None
    opted_out: bool = False

    @property
    def spec(self) -> str | None:
        """What a run folder's spec records: ``"sha256:<hex>"``, ``"none"``, or None (nothing to record)."""
        if self.file is not None:
            return f"sha256:{self.file.sha256}"
        return NO_SPYNET if self.opted_out else None

    @property
    def overrides(self) -> dict:
        """:func:`build_model` arguments that load the weights."""
        return {"spynet_path": self.file.path} if self.file is not None else {}

    def describe(self) -> str:
        if self.file is not None:
            return f"SpyNet from {self.file.path} ({self.file.layout}, sha256 {self.file.sha256[:12]})"
        if self.opted_out:
            return "SpyNet from random weights (--spynet none): not BasicVSR's recipe"
        return "SpyNet (if any) from the model's own initialisation"


def spynet_required_message(model: str, what: str = "") -> str:
    """The error for a :data:`PRETRAINED_FLOW` model without ``--spynet``: the files people have."""
    files = "".join(f"\n  - {f}" for f in SPYNET_FILES)
    return (f"{what or 'model ' + model} follows BasicVSR's recipe, which starts SpyNet from pretrained "
            f"weights (frozen at first, then fine-tuned): give them with --spynet PATH, one of{files}\n"
            "or pass --spynet none to train from a random SpyNet on purpose (recorded in the run's spec "
            "and shown in its tables).")


def flow_init(model: str, spynet: str | Path | None, what: str = "") -> FlowInit:
    """What a run of model configuration ``model`` starts its SpyNet from, given ``--spynet``
    (None: not given; ``"none"``: opted out; else a file, read and hashed now).

    :class:`SpynetRequiredError` for a :data:`PRETRAINED_FLOW` model without ``spynet``;
    :class:`~mgvsr.errors.MgvsrError` for a file given to a model that cannot take it;
    :class:`~mgvsr.errors.CheckpointError` for a file that is not SpyNet weights.
    ``what`` names the run in messages (default: the model).
    """
    if model not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(model_names())}")
    needs = model in PRETRAINED_FLOW
    if spynet is None:
        if needs:
            raise SpynetRequiredError(spynet_required_message(model, what))
        return FlowInit(model)
    if str(spynet).lower() == NO_SPYNET:
        return FlowInit(model, opted_out=needs)
    if not needs:
        module, cls, kwargs = MODEL_CONFIGS[model]
        why = ("has no SpyNet" if cls not in FLOW_CLASSES else
               f"learns its own SpyNet (width {kwargs.get('spynet_width', 1.0)}) from scratch")
        raise MgvsrError(f"--spynet {spynet}: model {model} {why}; pretrained SpyNet weights are for "
                         f"{', '.join(PRETRAINED_FLOW)}")
    return FlowInit(model, file=check_spynet_file(spynet))


def model_names() -> list[str]:
    return sorted(MODEL_CONFIGS)


MODULES = {"basicvsr": basicvsr, "basicvsrpp": basicvsrpp, "edvr": edvr}
# constructor options that only change the initial weights (not readable from trained weights)
INIT_ONLY = ("spynet_zero_init", "fast_start")
# the class defaults of the arguments config_from_weights reads, where a configuration omits them
READ_DEFAULTS = {"BasicVSR": dict(hr_feat=64, spynet_width=1.0),
                 "BasicVSRPlusPlus": dict(hr_feat=64, spynet_width=1.0, deformable_groups=16),
                 "EDVR": dict(hr_feat=64)}


def build_model(name: str, **overrides) -> nn.Module:
    """Build a model by configuration name; ``overrides`` replace constructor arguments."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(model_names())}")
    module, cls, kwargs = MODEL_CONFIGS[name]
    return getattr(MODULES[module], cls)(**{**kwargs, **overrides})


def infer_config(state: Mapping[str, torch.Tensor]) -> tuple[str, dict]:
    """``(configuration name, constructor overrides)`` of the network whose weights ``state`` holds.

    Each family reads its arguments from the tensors (``basicvsr.config_from_weights``,
    ``basicvsrpp.config_from_weights``, ``edvr.config_from_weights``); a registered configuration is
    named when it matches (no overrides), else the family's base configuration with the arguments read.
    """
    families = (("basicvsr", "BasicVSR", "basicvsr"), ("basicvsrpp", "BasicVSRPlusPlus", "basicvsrpp"),
                ("edvr", "EDVR", None))
    for module, cls, base in families:
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


def load_model(name: str, checkpoint: str | Path, key: str = AUTO_KEY) -> nn.Module:
    """Model configuration ``name`` with the weights of ``checkpoint`` (a trainer's ``final.pth`` or a
    BasicSR/MMagic file), in eval mode.  ``key``: a BasicSR-layout file's entry (default ``"auto"``:
    ``params_ema``, the EMA of the weights a run kept and evaluated, when the file has it, else ``params``)."""
    model = build_model(name)
    load_pretrained(model, checkpoint, key=key)
    return model.eval()
