"""``mgvsr eval``: PSNR/SSIM of bicubic or a trained model on REDS4, Vid4, Vimeo-90K, a folder, the samples.

    mgvsr eval --model bicubic --dataset vid4 --root /path/to/vid4 --json
    mgvsr eval --checkpoint runs/x/final.pth --dataset reds4 --root /data/REDS
    mgvsr eval --checkpoint BasicVSR_Vimeo90K_BIx4.pth --dataset vimeo90k --root /data/vimeo_septuplet
    mgvsr eval --dataset folder --root GT_DIR [--lq-root LQ_DIR]

Each benchmark is scored as the field does (:data:`mgvsr.evaluate.PROTOCOLS`): REDS4 on RGB,
Vid4 and Vimeo-90K on Y, Vimeo-90K on the centre frame of each septuplet.  Recurrent models
see whole clips, run in segments of ``--segment`` frames with the same result in bounded
memory.  With ``--checkpoint`` alone, the architecture is read from the checkpoint's weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "Score bicubic or a trained model (PSNR/SSIM) on REDS4, Vid4, Vimeo-90K, a folder of clips or the samples."

DATASETS = ("reds4", "reds_val", "vid4", "vimeo90k", "folder", "sample")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="'bicubic' (the default without --checkpoint) or a model configuration name such as "
                             "basicvsr, basicvsr_m; with --checkpoint alone it is read from the weights")
    parser.add_argument("--checkpoint", type=Path, help="weights of the model (BasicSR/MMagic/mgvsr checkpoint)")
    parser.add_argument("--dataset", choices=DATASETS, default="vid4",
                        help="reds4: REDS clips 000 011 015 020; reds_val: REDS's official validation clips "
                             "240-269; vid4; vimeo90k: the septuplets of sep_testlist.txt; folder; sample "
                             "(default: vid4)")
    parser.add_argument("--root", type=Path,
                        help="reds4/reds_val: the REDS folder (train_sharp/ ...); vid4: the folder holding GT/; "
                             "vimeo90k: vimeo_septuplet/ (sequences/, sep_testlist.txt); folder: the folder of GT clips")
    parser.add_argument("--lq-root", type=Path,
                        help="folder of LQ clips (default: the dataset's usual place, else made by MATLAB bicubic)")
    parser.add_argument("--store", type=Path, help="read frames from this store (default: ROOT/.mgvsr-store/... if "
                                                   "`mgvsr prepare` made one)")
    parser.add_argument("--no-store", action="store_true", help="read the image files even if a store exists")
    parser.add_argument("--clips", nargs="+", metavar="CLIP", help="evaluate only these clips")
    parser.add_argument("--channel", choices=("y", "rgb"),
                        help="score on the Y channel (BT.601) or RGB (default: the dataset's protocol)")
    parser.add_argument("--crop-border", type=int, default=None, metavar="N",
                        help="pixels cut from each side before scoring (default: the protocol's, 0)")
    parser.add_argument("--segment", type=int, default=None, metavar="FRAMES",
                        help="run recurrent models in segments of this many frames: same result, bounded memory "
                             "(default 10; 0 = the whole clip in one call)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", action="store_true", help="with --json: include every frame's scores")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _source(args: argparse.Namespace):
    from mgvsr.data.datasets import ClipSubset, open_dataset
    from mgvsr.data.folders import FolderSource
    from mgvsr.paths import shared_data_dir

    store = False if args.no_store else args.store
    if args.no_store and args.store is not None:
        raise MgvsrError("--store and --no-store contradict each other")
    if args.dataset == "folder":
        if args.root is None:
            raise MgvsrError("--dataset folder needs --root DIR (one sub-folder of frames per clip)")
        return FolderSource(args.root, args.lq_root, clips=args.clips, name=args.root.name or "folder")
    if args.dataset == "sample":
        if args.clips:
            raise MgvsrError("--clips is not supported with --dataset sample")
        try:
            from mgvsr.data.sample import sample_source
        except ModuleNotFoundError as exc:
            if exc.name != "mgvsr.data.sample":
                raise
            raise MgvsrError("the sample clips (mgvsr.data.sample) are not available in this version") from exc
        return sample_source(split="test")
    root = args.root
    if root is None and args.dataset == "vid4":
        shared = shared_data_dir()
        if shared is None or not (shared / "vid4" / "GT").is_dir():
            raise MgvsrError("--dataset vid4 needs --root DIR (the folder holding GT/<clip>/)")
        root = shared / "vid4"
    if root is None:
        raise MgvsrError(f"--dataset {args.dataset} needs --root DIR")
    name = {"reds4": "reds4", "reds_val": "reds_official", "vid4": "vid4", "vimeo90k": "vimeo90k_test"}[args.dataset]
    source = open_dataset(name, root, split="test", store=store, lq_root=args.lq_root)
    return ClipSubset(source, args.clips) if args.clips else source


def infer_model(state: dict) -> tuple[str, dict]:
    """``(configuration name, constructor overrides)`` of the network whose weights ``state`` holds.

    BasicVSR: ``num_feat``, ``num_block``, ``hr_feat`` and SpyNet's width are read from the
    tensors' shapes and names; EDVR: features, HR tail, with or without TSA.  A registered
    configuration is named when it matches.
    """
    from mgvsr.models import MODEL_CONFIGS

    keys = set(state)
    init_only = ("spynet_zero_init",)  # constructor options that only change the initial weights

    def registered(cls: str, found: dict, defaults: dict) -> str | None:
        for name, (_, klass, kwargs) in MODEL_CONFIGS.items():
            config = {k: v for k, v in {**defaults, **kwargs}.items() if k not in init_only}
            if klass == cls and all(config.get(k) == v for k, v in found.items()):
                return name
        return None

    if "backward_trunk.main.0.weight" in keys:
        blocks = {int(k.split(".")[3]) for k in keys if k.startswith("backward_trunk.main.2.")}
        found = dict(num_feat=int(state["backward_trunk.main.0.weight"].shape[0]),
                     num_block=max(blocks) + 1 if blocks else 0,
                     hr_feat=int(state["conv_hr.weight"].shape[0]) if "conv_hr.weight" in keys else 64,
                     spynet_width=state["spynet.basic_module.0.basic_module.0.weight"].shape[0] / 32)
        name = registered("BasicVSR", found, dict(hr_feat=64, spynet_width=1.0))
        return (name, {}) if name else ("basicvsr", found)
    if any(k.startswith("pcd_align.") for k in keys):
        tsa = any(k.startswith("fusion.temporal_attn") for k in keys)
        found = dict(num_feat=int(state["conv_first.weight"].shape[0]), with_tsa=tsa,
                     hr_feat=int(state["conv_hr.weight"].shape[0]))
        name = registered("EDVR", found, dict(hr_feat=64))
        if name is None:
            raise MgvsrError("an EDVR checkpoint of no registered configuration "
                             f"({', '.join(f'{k}={v}' for k, v in found.items())}); name it with --model")
        return name, {}
    raise MgvsrError(f"cannot tell the architecture from the checkpoint's weights (first keys: {sorted(keys)[:5]}); "
                     "name it with --model")


def _model(args: argparse.Namespace):
    from mgvsr.models import build_model, model_names
    from mgvsr.models.checkpoints import load_state_dict_checked, read_state_dict

    if args.model is not None and args.model not in model_names():
        raise MgvsrError(f"unknown model {args.model!r}; expected bicubic or one of {', '.join(model_names())}")
    if args.checkpoint is None:
        raise MgvsrError(f"--model {args.model} needs --checkpoint PATH (an untrained model scores nothing useful)")
    if not args.checkpoint.is_file():
        raise MgvsrError(f"checkpoint not found: {args.checkpoint}")
    state = read_state_dict(args.checkpoint)
    name, overrides = (args.model, {}) if args.model is not None else infer_model(state)
    model = build_model(name, **overrides)
    load_state_dict_checked(model, state, strict=True, source=str(args.checkpoint))
    label = name + ("(" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")" if overrides else "")
    return model, label


def run(args: argparse.Namespace) -> int:
    from mgvsr.commands.prepare import plain_warnings
    from mgvsr.evaluate import DEFAULT_SEGMENT, evaluate_bicubic, evaluate_model

    if args.crop_border is not None and args.crop_border < 0:
        raise MgvsrError(f"--crop-border must be >= 0, got {args.crop_border}")
    if args.segment is not None and args.segment < 0:
        raise MgvsrError(f"--segment must be >= 0 frames, got {args.segment}")
    segment = DEFAULT_SEGMENT if args.segment is None else (args.segment or None)
    progress = not args.no_progress
    bicubic = args.model == "bicubic" or (args.model is None and args.checkpoint is None)
    if bicubic and args.checkpoint is not None:
        raise MgvsrError("--model bicubic takes no --checkpoint")
    with plain_warnings("eval"):
        source = _source(args)
        if bicubic:
            result = evaluate_bicubic(source, args.channel, args.crop_border, progress=progress)
        else:
            model, label = _model(args)
            result = evaluate_model(model, source, args.channel, args.crop_border, device=args.device,
                                    progress=progress, model_name=label, segment=segment)
    if args.json:
        print(json.dumps(result.to_dict(frames=args.frames), indent=2))
    else:
        print(result.table())
    return 0
