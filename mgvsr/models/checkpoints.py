"""Load pretrained weights from BasicSR and MMagic checkpoint files.

mgvsr's models use BasicSR's parameter names, so a BasicSR file loads as it is. MMagic
(formerly MMEditing) names the same tensors differently; :func:`mmagic_to_basicsr_key`
maps its names onto ours for BasicVSR (``BasicVSRNet``, SPyNet) and EDVR (``EDVRNet``).

Formats understood by :func:`read_state_dict`:

* BasicSR: ``{'params': state_dict}``, often also ``{'params_ema': state_dict}``.
* MMagic / MMEditing: ``{'meta': ..., 'state_dict': {'generator.<name>': tensor, ...}}``;
  only the ``generator.`` entries are weights of the network (others, such as a
  ``step_counter`` buffer of the training wrapper, are dropped).
* A bare state dict ``{name: tensor}``.

``module.`` prefixes (left by ``DataParallel`` / ``DistributedDataParallel``) are stripped.
The trainer saves and resumes its own checkpoints; this module only *loads weights*.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn

from mgvsr.errors import CheckpointError

# Which entry of a BasicSR file to read.  "auto": 'params_ema' when the file has it (the
# exponential moving average is what BasicSR evaluates when it trains with EMA), else
# 'params'.  Any other string names the entry exactly.
AUTO_KEY = "auto"


class LoadResult(NamedTuple):
    """Names that were in the model but not the file (missing) and the other way round."""

    missing: list[str]
    unexpected: list[str]


def read_state_dict(path: str | Path, key: str = "params", trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return a state dict with BasicSR (= mgvsr) names.

    ``key`` picks the entry of a BasicSR file: ``"params"`` (default), ``"params_ema"``,
    or ``"auto"`` (``params_ema`` if present, else ``params``).  MMagic files and bare
    state dicts ignore it.  Files are read with ``torch.load(weights_only=True)``, which
    refuses arbitrary pickled objects (some MMagic files carry them in ``'meta'``); pass
    ``trust_pickle=True`` for a file from a source you trust.  Raises
    :class:`CheckpointError` when the file is missing, unreadable, or holds no
    recognisable state dict.
    """
    return extract_state_dict(read_checkpoint(path, trust_pickle), key=key, source=str(path))


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> object:
    """The object a checkpoint file holds (``torch.load`` on the CPU, ``weights_only`` unless
    ``trust_pickle``); :class:`CheckpointError` naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # pickle, zip and torch errors alike
        hint = "" if trust_pickle else " (if the file is from a source you trust, retry with trust_pickle=True)"
        raise CheckpointError(f"cannot read checkpoint {path}: {err}{hint}") from err


def checkpoint_format(obj: object) -> str:
    """``"mmagic"`` (``{'state_dict': ...}``), ``"basicsr"`` (``{'params' | 'params_ema': ...}``),
    ``"bare"`` (a state dict) or ``"unknown"``: the format of a loaded checkpoint object."""
    if not isinstance(obj, Mapping):
        return "unknown"
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return "mmagic"
    if "params" in obj or "params_ema" in obj:
        return "basicsr"
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "bare"
    return "unknown"


def extract_state_dict(obj: object, key: str = "params", source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint object (see :func:`read_state_dict`)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict, got {type(obj).__name__}")
    kind = checkpoint_format(obj)
    if kind == "mmagic":  # MMagic / MMEditing
        return _from_mmagic(obj["state_dict"], source)
    if kind == "basicsr":
        entry = key
        if key == AUTO_KEY:
            entry = "params_ema" if "params_ema" in obj else "params"
        if entry not in obj:
            raise CheckpointError(f"{source}: no entry {entry!r}; it has {sorted(map(str, obj))} "
                                  f"(pass key='params', 'params_ema' or 'auto')")
        return _strip_module_prefix(_check_tensors(obj[entry], source))
    if kind == "bare":
        return _strip_module_prefix(dict(obj))
    raise CheckpointError(f"{source}: not a BasicSR ('params'), MMagic ('state_dict') or bare "
                          f"state dict; its top-level keys are {sorted(map(str, obj))[:10]}")


def load_pretrained(model: nn.Module, path: str | Path, strict: bool = True, key: str = "params",
                    trust_pickle: bool = False) -> LoadResult:
    """Load weights from a BasicSR or MMagic checkpoint file into ``model``.

    ``key`` and ``trust_pickle`` as in :func:`read_state_dict`.  With ``strict=True`` every name must match both ways; otherwise the names that match
    are loaded and the rest reported in the returned :class:`LoadResult`.  Shapes must
    always match.  Raises :class:`CheckpointError` listing missing and unexpected names
    and shape mismatches.
    """
    state = read_state_dict(path, key=key, trust_pickle=trust_pickle)
    return load_state_dict_checked(model, state, strict=strict, source=str(path))


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True,
                            source: str = "checkpoint") -> LoadResult:
    """``model.load_state_dict`` with a :class:`CheckpointError` that names what is wrong."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                        for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if mismatched or (strict and (missing or unexpected)):
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}:\n"
            + _listing("missing (in the model, not in the file)", missing)
            + _listing("unexpected (in the file, not in the model)", unexpected)
            + _listing("shape mismatches", mismatched))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return LoadResult(missing, unexpected)


# ---------------------------------------------------------------------------------------
# MMagic names -> BasicSR names.  Each rule is a regular expression applied in order.
_MMAGIC_RULES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    # SPyNet: ConvModule wraps each conv as '.conv' and numbers them 0..4 without the ReLUs.
    (r"(^|\.)basic_module\.(\d)\.basic_module\.(\d)\.conv\.",
     lambda m: f"{m[1]}basic_module.{m[2]}.basic_module.{2 * int(m[3])}."),
    # BasicVSR propagation branches.
    (r"^(backward|forward)_resblocks\.", r"\1_trunk."),
    # PixelShufflePack (BasicVSR and EDVR).
    (r"^upsample([12])\.upsample_conv\.", r"upconv\1."),
    # EDVR: pyramid convs, PCD module name.
    (r"^feat_l([23])_conv([12])\.conv\.", r"conv_l\1_\2."),
    (r"^pcd_alignment\.", "pcd_align."),
    # Any other ConvModule ('<name>.conv.weight' -> '<name>.weight').
    (r"\.conv\.(weight|bias)$", r".\1"),
]


def mmagic_to_basicsr_key(name: str) -> str:
    """Map one MMagic parameter name (without ``generator.``) to BasicSR's name."""
    for pattern, replacement in _MMAGIC_RULES:
        name = re.sub(pattern, replacement, name)
    return name


def _from_mmagic(state: Mapping[str, object], source: str) -> dict[str, torch.Tensor]:
    state = _check_tensors(state, source)
    generator = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
    if not generator:  # a bare network saved by MMagic (e.g. the SPyNet weights)
        generator = state
    generator = _strip_module_prefix(generator)
    return {mmagic_to_basicsr_key(k): v for k, v in generator.items()}


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _check_tensors(state: object, source: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the state dict is a {type(state).__name__}, expected a dict")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries that are not tensors: {bad[:5]}")
    return dict(state)


def _listing(title: str, names: list[str], limit: int = 20) -> str:
    if not names:
        return ""
    more = f"    ... and {len(names) - limit} more\n" if len(names) > limit else ""
    return f"  {title} ({len(names)}):\n" + "".join(f"    {n}\n" for n in names[:limit]) + more
