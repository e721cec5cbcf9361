"""``mgvsr eval``: PSNR/SSIM of bicubic or a trained model on Vid4, a folder of clips, or the samples.

    mgvsr eval --model bicubic --dataset vid4 --root /path/to/vid4 --json
    mgvsr eval --model basicvsr --checkpoint basicvsr_vimeo.pth --dataset vid4 --root DIR
    mgvsr eval --dataset folder --root GT_DIR [--lq-root LQ_DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mgvsr.errors import MgvsrError

HELP = "Score bicubic or a trained model (PSNR/SSIM) on Vid4, a folder of clips or the sample clips."

DATASETS = ("vid4", "folder", "sample")
# The protocols' channel: Vid4 and Vimeo-90K on Y; REDS4 (to come) on RGB.
DEFAULT_CHANNEL = {"vid4": "y", "folder": "y", "sample": "y"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="bicubic",
                        help="'bicubic' (default) or a model configuration name such as basicvsr, basicvsr_m "
                             "(needs --checkpoint)")
    parser.add_argument("--checkpoint", type=Path, help="weights of the model (BasicSR/mgvsr checkpoint)")
    parser.add_argument("--dataset", choices=DATASETS, default="vid4", help="which clips (default: vid4)")
    parser.add_argument("--root", type=Path,
                        help="vid4: the folder holding GT/ (and BIx4/); folder: the folder of GT clips")
    parser.add_argument("--lq-root", type=Path,
                        help="folder of LQ clips (default: made from the GT by MATLAB bicubic)")
    parser.add_argument("--clips", nargs="+", metavar="CLIP", help="evaluate only these clips")
    parser.add_argument("--channel", choices=("y", "rgb"),
                        help="score on the Y channel (BT.601) or RGB (default: the dataset's protocol)")
    parser.add_argument("--crop-border", type=int, default=0, metavar="N",
                        help="pixels cut from each side before scoring (default 0)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--frames", action="store_true", help="with --json: include every frame's scores")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _source(args: argparse.Namespace):
    from mgvsr.data.folders import FolderSource
    from mgvsr.paths import shared_data_dir

    if args.dataset == "vid4":
        root = args.root
        if root is None:
            shared = shared_data_dir()
            if shared is None or not (shared / "vid4" / "GT").is_dir():
                raise MgvsrError("--dataset vid4 needs --root DIR (the folder holding GT/<clip>/)")
            root = shared / "vid4"
        if args.lq_root is not None:
            return FolderSource(Path(root) / "GT", args.lq_root, clips=args.clips, name="vid4")
        return FolderSource.vid4(root, clips=args.clips)
    if args.dataset == "folder":
        if args.root is None:
            raise MgvsrError("--dataset folder needs --root DIR (one sub-folder of frames per clip)")
        return FolderSource(args.root, args.lq_root, clips=args.clips, name=args.root.name or "folder")
    # sample: the embedded sample clips
    try:
        from mgvsr.data.sample import sample_source
    except ModuleNotFoundError as exc:
        if exc.name != "mgvsr.data.sample":
            raise
        raise MgvsrError("the sample clips (mgvsr.data.sample) are not available in this version") from exc
    source = sample_source(split="test")
    if args.clips:
        raise MgvsrError("--clips is not supported with --dataset sample")
    return source


def _model(args: argparse.Namespace):
    from mgvsr.models import build_model, model_names

    if args.model not in model_names():
        raise MgvsrError(f"unknown model {args.model!r}; expected bicubic or one of {', '.join(model_names())}")
    if args.checkpoint is None:
        raise MgvsrError(f"--model {args.model} needs --checkpoint PATH (an untrained model scores nothing useful)")
    if not args.checkpoint.is_file():
        raise MgvsrError(f"checkpoint not found: {args.checkpoint}")
    try:
        from mgvsr.models.checkpoints import load_pretrained
    except ModuleNotFoundError as exc:
        if exc.name != "mgvsr.models.checkpoints":
            raise
        raise MgvsrError("loading checkpoints (mgvsr.models.checkpoints) is not available in this version") from exc
    model = build_model(args.model)
    load_pretrained(model, args.checkpoint, strict=True)
    return model


def run(args: argparse.Namespace) -> int:
    from mgvsr.evaluate import evaluate_bicubic, evaluate_model

    if args.crop_border < 0:
        raise MgvsrError(f"--crop-border must be >= 0, got {args.crop_border}")
    channel = args.channel or DEFAULT_CHANNEL[args.dataset]
    source = _source(args)
    progress = not args.no_progress
    if args.model == "bicubic":
        if args.checkpoint is not None:
            raise MgvsrError("--model bicubic takes no --checkpoint")
        result = evaluate_bicubic(source, channel, args.crop_border, progress=progress)
    else:
        model = _model(args)
        result = evaluate_model(model, source, channel, args.crop_border, device=args.device,
                                progress=progress, model_name=args.model)
    if args.json:
        print(json.dumps(result.to_dict(frames=args.frames), indent=2))
    else:
        print(result.table())
    return 0
