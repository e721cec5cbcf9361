"""Training windows per second from PNG files and from the frame store, beside what a GPU consumes.

Two shapes of BasicVSR-M's multigrid on REDS (``--shapes``): the largest, 64&15 (15 frames, LR 64x64,
GT 256x256), and the smallest, 32&7, where a GPU consumes the most windows a second (a window is
~9x cheaper to compute and holds ~9x fewer bytes, so the loader's costs per window weigh more).
A REDS-like tree (1280x720 GT PNGs, 320x180 MATLAB-bicubic LR PNGs, REDS naming) is built
in a temporary folder from real frames (the Vid4 clips of ../shared/data, cropped to 16:9
and upscaled; synthetic frames if they are absent), its store is written with
``write_store``, and both are read through the trainer's ``TrainingWindows`` by a
``DataLoader`` with 2 worker processes.  Two more readers show what the trainer could do
next with the store: whole batches written straight from the memory map into one shared-memory
uint8 tensor (one copy per window, no collation), and the same with the flips and
transpositions left to the GPU (see :class:`Uint8Batches`).

What the GPU consumes: one window costs the FLOPs ``torch.utils.flop_counter`` counts for
BasicVSR-M forward + backward at that shape (run on the meta device: no arithmetic here),
divided by an assumed sustained throughput (``--gpu-tflops``, see ``--help``).

    python bench/bench_store.py                  # 4 clips x 30 frames, 3 rounds, at 64&15 and 32&7
    python bench/bench_store.py --shapes 32x7    # one shape
    python bench/bench_store.py --rounds 5 --gpu-tflops 300
    python bench/bench_store.py --quick          # 1 clip of 15 frames, 1 round, no workers (a smoke test)

Timings on a shared 2-core machine are noisy: every reader is measured ``--rounds`` times,
interleaved, and the median, minimum and maximum are printed.  The temporary tree is
deleted at the end (nothing is written into the repository).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from mgvsr.data.datasets import PartialDatasetWarning
from mgvsr.data.io import list_frames, read_frame, write_frame
from mgvsr.data.reds import RedsSource
from mgvsr.data.resize import bicubic_downscale
from mgvsr.data.store import open_store, write_store
from mgvsr.data.windows import TrainingWindows
from mgvsr.paths import shared_data_dir

FRAMES, PATCH = 15, 64  # the paper's largest REDS stage: 15 frames, LR 64x64 (GT 256x256)
SHAPES = ((64, 15), (32, 7))  # (LR patch, frames): the largest stage, and the smallest (the most windows/s)
GT_SIZE = (720, 1280)


def real_frames(n_clips: int, n_frames: int) -> list[np.ndarray]:
    """``n_clips`` clips ``(n_frames, 720, 1280, 3)`` uint8 from Vid4 (16:9 crops upscaled), else synthetic."""
    shared = shared_data_dir()
    vid4 = shared / "vid4" / "GT" if shared is not None else None
    clips = []
    if vid4 is not None and vid4.is_dir():
        names = sorted(d for d in vid4.iterdir() if d.is_dir())
        for k in range(n_clips):
            paths = list_frames(names[k % len(names)])[:n_frames]
            frames = []
            for p in paths:
                f = read_frame(p)
                h = f.shape[1] * 9 // 16
                frames.append(cv2.resize(f[:h], (GT_SIZE[1], GT_SIZE[0]), interpolation=cv2.INTER_CUBIC))
            clips.append(np.stack(frames))
        return clips
    print("(../shared/data/vid4 not found: synthetic frames)")
    rng = np.random.default_rng(0)
    for _ in range(n_clips):
        base = rng.uniform(0, 255, size=(GT_SIZE[0] // 8, GT_SIZE[1] // 8 + n_frames, 3)).astype(np.float32)
        big = cv2.resize(base, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
        clips.append(np.stack([big[:, 8 * i: 8 * i + GT_SIZE[1]] for i in range(n_frames)]).clip(0, 255).astype(np.uint8))
    return clips


def build_tree(root: Path, n_clips: int, n_frames: int) -> None:
    """``root/train_sharp/<clip>/<frame>.png`` and ``root/train_sharp_bicubic/X4/...`` (REDS naming)."""
    for k, gt in enumerate(real_frames(n_clips, n_frames)):
        clip = f"{k + 1:03d}"
        lq = bicubic_downscale(gt)
        for i in range(len(gt)):
            write_frame(root / "train_sharp" / clip / f"{i:08d}.png", gt[i])
            write_frame(root / "train_sharp_bicubic" / "X4" / clip / f"{i:08d}.png", lq[i])


def augment(frames: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    """The windows' flips / transposition on ``(t, h, w, 3)`` numpy frames (a view where possible)."""
    if hflip:
        frames = frames[:, :, ::-1]
    if vflip:
        frames = frames[:, ::-1]
    if transpose:
        frames = frames.transpose(0, 2, 1, 3)
    return frames


class Uint8Batches(torch.utils.data.Dataset):
    """Whole batches of the same windows, each copied once from the store into a shared-memory uint8 batch.

    Item ``b`` is windows ``b * batch .. (b + 1) * batch - 1`` of ``windows`` as ``(lq (B, t, h, w, 3),
    gt (B, t, H, W, 3), flips (B, 3))`` uint8.  The batch tensors are allocated in shared memory and
    every window is written straight into them, so nothing is copied again on the way to the
    training process: what a trainer reading a store with batch-level reads could get.

    ``flip_on_device=True`` copies the crops unflipped and returns the flips (h, v, transpose)
    for the GPU to apply: horizontal flips and transpositions of ``(h, w, 3)`` uint8 frames are
    ~35x slower to copy than plain crops on a CPU (3-byte pixels defeat numpy's contiguous
    copy), and cost nothing on a GPU.  Use with ``batch_size=None``.
    """

    def __init__(self, windows: TrainingWindows, batch: int, flip_on_device: bool = False) -> None:
        self.windows, self.batch, self.flip_on_device = windows, batch, flip_on_device

    def __len__(self) -> int:
        return len(self.windows) // self.batch

    def __getitem__(self, b: int):
        w = self.windows
        s, t, p = w.source.scale, w.frames, w.patch
        lq = torch.empty((self.batch, t, p, p, 3), dtype=torch.uint8).share_memory_()
        gt = torch.empty((self.batch, t, s * p, s * p, 3), dtype=torch.uint8).share_memory_()
        flips = torch.zeros((self.batch, 3), dtype=torch.uint8)
        for k in range(self.batch):
            spec = w.spec(w.offset + b * self.batch + k)
            frames = slice(spec.start, spec.start + t)
            flips[k] = torch.tensor([spec.hflip, spec.vflip, spec.transpose])
            for out, kind, f in ((lq, "lq", 1), (gt, "gt", s)):
                view = w.source.frames_view(kind, spec.clip)[frames, spec.top * f:(spec.top + p) * f,
                                                             spec.left * f:(spec.left + p) * f]
                if not self.flip_on_device:
                    view = augment(view, spec.hflip, spec.vflip, spec.transpose)
                out[k].numpy()[...] = view
        return lq, gt, flips


def windows_per_second(dataset, batch: int, batches: int, workers: int, warmup: int = 2) -> float:
    """Windows per second delivered by a DataLoader, timed after ``warmup`` batches (worker start-up)."""
    whole = isinstance(dataset, Uint8Batches)  # yields batches itself
    loader = DataLoader(dataset, batch_size=None if whole else batch, num_workers=workers, shuffle=False)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        lq, gt = next(it)[:2]
        assert lq.shape[0] == gt.shape[0] == batch
    seconds = time.perf_counter() - start
    del it
    return batches * batch / seconds


def raw_reads_per_second(store, patch: int, frames: int, seconds: float = 2.0, batch: int = 8) -> float:
    """Windows per second one process copies out of the store into a reused buffer (no loader, no flips).

    The store's own delivery rate: what is left when neither the DataLoader's transport (a new
    shared-memory tensor per batch, page-faulted on first touch) nor CPU-side flips are paid.
    """
    windows = TrainingWindows(store, frames, patch, length=10**6, seed=2)
    lq = np.empty((batch, frames, patch, patch, 3), np.uint8)
    gt = np.empty((batch, frames, 4 * patch, 4 * patch, 3), np.uint8)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for k in range(batch):
            spec = windows.spec(count)
            span = slice(spec.start, spec.start + frames)
            lq[k] = store.frames_view("lq", spec.clip)[span, spec.top:spec.top + patch, spec.left:spec.left + patch]
            gt[k] = store.frames_view("gt", spec.clip)[span, 4 * spec.top:4 * (spec.top + patch),
                                                       4 * spec.left:4 * (spec.left + patch)]
            count += 1
    return count / (time.perf_counter() - start)


def flops_per_window(patch: int = PATCH, frames: int = FRAMES, model_name: str = "basicvsr_m") -> float:
    """FLOPs of one training window (forward + backward, SpyNet trained), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from mgvsr.models import build_model

    model = build_model(model_name).to("meta")
    x = torch.empty(1, frames, 3, patch, patch, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return float(counter.get_total_flops())


def measure(png, store, patch: int, frames: int, args) -> dict[str, list[float]]:
    """Windows/s of every reader at LR ``patch`` x ``patch``, ``frames`` frames: ``--rounds`` values each, interleaved."""
    def windows(source, seed=1):
        return TrainingWindows(source, frames, patch, length=10**6, seed=seed)

    readers = {
        "PNG files, windows": (windows(png), args.png_batches),
        "store, windows": (windows(store), args.store_batches),
        "store, uint8 batches": (Uint8Batches(windows(store), args.batch), args.store_batches),
        "store, batches, flip on GPU": (Uint8Batches(windows(store), args.batch, flip_on_device=True),
                                        args.store_batches * 3),
    }
    rates: dict[str, list[float]] = {name: [] for name in readers}
    rates["store, raw reads, 1 process"] = []
    for r in range(args.rounds):
        for name, (dataset, batches) in readers.items():
            w = dataset.windows if isinstance(dataset, Uint8Batches) else dataset
            w.offset = r * 10**5  # fresh windows every round
            rates[name].append(windows_per_second(dataset, args.batch, batches, args.workers))
        rates["store, raw reads, 1 process"].append(raw_reads_per_second(store, patch, frames))
    return rates


def report(patch: int, frames: int, rates: dict[str, list[float]], args) -> None:
    """The table of one shape's readers against what one H100 and one V100 consume at that shape."""
    flops = flops_per_window(patch, frames)
    h100_step = flops * args.h100_batch / (args.gpu_tflops * 1e12)
    v100_step = flops * args.v100_batch / (args.v100_tflops * 1e12)
    consume_h100, consume_v100 = args.h100_batch / h100_step, args.v100_batch / v100_step
    print(f"\n== {patch}&{frames}: {frames} frames, LR {patch}x{patch}, GT {4 * patch}x{4 * patch} ==")
    print(f"{'reader':<28} {'windows/s (median)':>18} {'min':>8} {'max':>8}   x H100 need   x V100 need")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:<28} {med:>18.1f} {min(values):>8.1f} {max(values):>8.1f}   "
              f"{med / consume_h100:>10.2f}x   {med / consume_v100:>10.2f}x")
    print(f"BasicVSR-M, one {patch}&{frames} window forward + backward: {flops / 1e12:.3f} TFLOP (torch.utils.flop_counter)")
    print(f"one H100 at {args.gpu_tflops:g} TFLOP/s sustained, batch {args.h100_batch}: {h100_step:.3f} s/step "
          f"-> consumes {consume_h100:.0f} windows/s (target: the store at >= 5x, {5 * consume_h100:.0f}/s)")
    print(f"one V100 at {args.v100_tflops:g} TFLOP/s sustained, {args.v100_batch} windows per GPU: {v100_step:.2f} s/step "
          f"-> consumes {consume_v100:.1f} windows/s per GPU")
    store_med = statistics.median(rates["store, windows"])
    print(f"store vs PNG (the trainer's windows): {store_med / statistics.median(rates['PNG files, windows']):.0f}x; "
          f"from the store, uint8 batches {statistics.median(rates['store, uint8 batches']) / store_med:.1f}x, "
          f"batches flipped on the GPU {statistics.median(rates['store, batches, flip on GPU']) / store_med:.1f}x "
          "the trainer's windows")


def parse_shape(text: str) -> tuple[int, int]:
    """``"32x7"`` (or ``"32&7"``) -> ``(32, 7)``: LR patch, frames."""
    patch, frames = text.replace("&", "x").split("x")
    return int(patch), int(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=list(SHAPES), metavar="PATCHxFRAMES",
                        help="window shapes, LR patch x frames (default: 64x15 32x7)")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=30, help="frames per clip (>= the longest window)")
    parser.add_argument("--batch", type=int, default=8, help="windows per DataLoader batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--png-batches", type=int, default=4)
    parser.add_argument("--store-batches", type=int, default=40)
    parser.add_argument("--gpu-tflops", type=float, default=250.0,
                        help="assumed sustained training throughput of one H100 on BasicVSR-M (TFLOP/s): "
                             "a quarter of its dense bf16 tensor peak (989) or half its TF32 peak (495); "
                             "generous for 64-channel 3x3 convs run frame by frame, so the consumption rate "
                             "is an upper estimate")
    parser.add_argument("--v100-tflops", type=float, default=9.0,
                        help="assumed sustained fp32 throughput of one V100 (the paper's GPU; 15.7 peak)")
    parser.add_argument("--h100-batch", type=int, default=16, help="BasicVSR-M's baseline batch, on one GPU")
    parser.add_argument("--v100-batch", type=int, default=4, help="the paper's samples per GPU (Table 6)")
    parser.add_argument("--quick", action="store_true", help="1 clip of 15 frames, batch 2, no workers, 1 round of "
                        "a few batches, every shape (a smoke test: its rates mean little)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.frames, args.batch, args.workers, args.rounds = 1, FRAMES, 2, 0, 1
        args.png_batches, args.store_batches = 1, 2
    longest = max(frames for _, frames in args.shapes)
    if args.frames < longest:
        sys.exit(f"--frames must be at least {longest}")

    warnings.simplefilter("ignore", PartialDatasetWarning)
    with tempfile.TemporaryDirectory(prefix="mgvsr-bench-store-") as tmp:
        root = Path(tmp) / "REDS"
        t0 = time.perf_counter()
        build_tree(root, args.clips, args.frames)
        t1 = time.perf_counter()
        png = RedsSource(root)
        store = open_store(write_store(png, Path(tmp) / "store", "reds", progress=False))
        t2 = time.perf_counter()
        png_bytes = sum(p.stat().st_size for p in root.rglob("*.png"))
        store_bytes = sum(store.index["files"][k]["bytes"] for k in ("gt", "lq"))
        print(f"tree: {args.clips} clips x {args.frames} frames of 1280x720 (+ 320x180 LR) built in {t1 - t0:.1f} s; "
              f"PNG {png_bytes / 1e6:.0f} MB, store {store_bytes / 1e6:.0f} MB written in {t2 - t1:.1f} s")
        print(f"DataLoader with {args.workers} workers, batch {args.batch}; torch threads {torch.get_num_threads()}")
        rates = {shape: measure(png, store, *shape, args) for shape in args.shapes}
    for (patch, frames), values in rates.items():
        report(patch, frames, values, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
