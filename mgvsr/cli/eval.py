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

from mgvsr.cli.prepare import plain_warnings
from mgvsr.errors import MgvsrError

HELP = "Score bicubic or a trained model (PSNR/SSIM) on REDS4, Vid4, Vimeo-90K, a folder of clips or the samples."

DATASETS = ("reds4", "reds_val", "vid4", "vimeo90k", "folder", "sample")  # mgvsr.data.datasets.BENCHMARKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="'bicubic' (the default without --checkpoint) or a model configuration name such as "
                             "basicvsr, basicvsr_m; with --checkpoint alone it is read from the weights")
    parser.add_argument("--checkpoint", type=Path, help="weights of the model (BasicSR/MMagic/mgvsr checkpoint)")
    parser.add_argument("--weights", choices=("auto", "params", "params_ema"), default="auto",
                        help="which weights of a BasicSR-layout file (and an mgvsr final.pth): params_ema (an EMA of "
                             "the weights, what BasicSR and mgvsr evaluate where a run kept one) when the file has "
                             "it, else params (auto, the default); or either exactly")
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
    from mgvsr.data.datasets import open_benchmark

    if args.no_store and args.store is not None:
        raise MgvsrError("--store and --no-store contradict each other")
    store = False if args.no_store else args.store
    return open_benchmark(args.dataset, args.root, store=store, lq_root=args.lq_root, clips=args.clips)


def _model(args: argparse.Namespace):
    from mgvsr.models import build_model, infer_config, model_names
    from mgvsr.models.checkpoints import load_state_dict_checked, read_state_dict

    if args.model is not None and args.model not in model_names():
        raise MgvsrError(f"unknown model {args.model!r}; expected bicubic or one of {', '.join(model_names())}")
    if args.checkpoint is None:
        raise MgvsrError(f"--model {args.model} needs --checkpoint PATH (an untrained model scores nothing useful)")
    if not args.checkpoint.is_file():
        raise MgvsrError(f"checkpoint not found: {args.checkpoint}")
    state = read_state_dict(args.checkpoint, key=args.weights)
    name, overrides = (args.model, {}) if args.model is not None else infer_config(state)
    model = build_model(name, **overrides)
    load_state_dict_checked(model, state, strict=True, source=str(args.checkpoint))
    label = name + ("(" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")" if overrides else "")
    return model, label


def run(args: argparse.Namespace) -> int:
    from mgvsr.evaluate import DEFAULT_SEGMENT, evaluate_bicubic, evaluate_model, scoring_protocol

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
            result = evaluate_model(model, source, scoring_protocol(source, args.channel, args.crop_border),
                                    device=args.device, progress=progress, model_name=label, segment=segment)
    if args.json:
        print(json.dumps(result.to_dict(frames=args.frames), indent=2))
    else:
        print(result.table())
    return 0
