"""The benchmark suite: where a training step's time goes, per model, shape and precision.

    python bench/run.py                     # writes bench/RESULTS.md
    python bench/run.py --quick             # the smallest and largest stage of each plan only
    python bench/run.py --out /tmp/R.md --devices cpu cuda --steps 3
    python bench/run.py --flops-only --models basicvsrpp   # FLOPs and the bounds by FLOPs only, printed

For ``basicvsr_cpu``, ``basicvsr_m``, ``edvr_cpu``, ``edvr_m``, ``basicvsrpp_cpu`` and ``basicvsrpp``, at
the stage shapes of the demo (``demo/<family>/ours``, at the demo's micro-batch of 4 clips) and of the
paper (``table1/basicvsr_m/ours``, ``table2/edvr_m/ours``; for BasicVSR++, beyond the paper,
``basicvsrpp/reds/ours``; at micro-batch 1 on a CPU to keep the run short, 8 on a GPU), in fp32 and in bf16 (fp16 on a GPU without bf16; bf16 is skipped on a CPU
that would only emulate it):

- **step time**: the median of ``--steps`` training steps after one warm-up step, each the trainer's
  :class:`mgvsr.step.TrainStep` (forward, Charbonnier loss, backward, Adam): autocast in the low
  precision, the loss in fp32, ``channels_last`` where the model measured it faster
  (:func:`mgvsr.models.protocol.prefers_channels_last`), SpyNet trained;
- **FLOPs per step**: counted by ``torch.utils.flop_counter.FlopCounterMode`` over one training
  step's forward and backward (convolutions and matrix products; ``grid_sample``, pointwise operations and the
  optimizer are not counted, so MFU is a lower bound of the arithmetic done);
- **achieved FLOP/s** = FLOPs / step time, and **MFU** = achieved / peak, where the peak is the
  larger of a large matrix product's and a large convolution's FLOP/s, measured in this run in
  the same precision on the same device;
- **data**: the windows/s the trainer's loader (:class:`mgvsr.data.windows.TrainingWindows` over
  the embedded sample clips, batches of the step's size) delivers with 0 and 2 worker
  processes, against the windows/s the step consumes (batch / step time of the fastest precision);
- **against the reference**: our fp32 steps against BasicSR's per-frame forwards at the same
  shapes (``bench/bench_reference.py``);
- **speedup bounds by FLOPs**: each ``ours`` plan against its preset's baseline, every stage costed at
  its fp32 FLOPs per sample (FLOPs are linear in the batch) times its samples
  (:func:`mgvsr.tutorial.explore.expected_speedup`), beside the bound by LR pixels (:attr:`mgvsr.schedule.Plan.work`):
  the speedup a device whose step costs its FLOPs would give (all of a plan's stage shapes measured: not
  with ``--quick``).  ``--flops-only`` counts them (one fp32 step per shape, untimed) and prints them,
  writing no file: minutes where the timed suite takes hours on a CPU.

Every figure is measured in the run that writes the file, on the machine it names; the file says
how loaded the machine was (load average against its cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from mgvsr.data.datasets import open_dataset
from mgvsr.data.windows import TrainingWindows, to_float
from mgvsr.device import DTYPES, bf16_supported, cpu_bf16_native, cpu_flags, cpu_model, synchronize
from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.presets import get_preset
from mgvsr.tutorial.explore import expected_speedup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import compare as compare_reference  # noqa: E402
from timed_step import TimedStep, precisions  # noqa: E402

MODELS = {"basicvsr": ("basicvsr_cpu", "basicvsr_m"), "edvr_m": ("edvr_cpu", "edvr_m"),
          "basicvsrpp": ("basicvsrpp_cpu", "basicvsrpp")}
PLANS = {"basicvsr": ("demo/basicvsr/ours", "table1/basicvsr_m/ours"), "edvr_m": ("demo/edvr_m/ours", "table2/edvr_m/ours"),
         "basicvsrpp": ("demo/basicvsrpp/ours", "basicvsrpp/reds/ours")}
DEMO_BATCH = 4  # the demo's micro-batch on a CPU
PAPER_BATCH = {"cpu": 1, "cuda": 8}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


# ---- the machine --------------------------------------------------------------------------------


def machine_lines(devices: list[torch.device]) -> list[str]:
    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    lines = [f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch on {torch.get_num_threads()} thread(s); "
             f"{', '.join(isa) or 'no AVX flags read'}; native bfloat16: {'yes' if cpu_bf16_native() else 'no'}",
             f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()} {platform.release()}"]
    for d in devices:
        if d.type == "cuda":
            p = torch.cuda.get_device_properties(d)
            lines.append(f"- GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
                         f"native bf16 {'yes' if bf16_supported(d) else 'no'}")
    return lines


# ---- the peak ---------------------------------------------------------------------------------


def best_rate(fn, flops: float, device: torch.device, seconds: float = 1.0) -> float:
    """The best FLOP/s of ``fn`` (``flops`` a call) over repeated calls for about ``seconds``."""
    fn()
    synchronize(device)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        best = max(best, flops / (time.perf_counter() - t0))
    return best


def peak(device: torch.device, precision: str) -> dict:
    """FLOP/s of a large matmul and a large 3x3 convolution (channels_last) in ``precision``."""
    dtype = DTYPES[precision]
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    mm = best_rate(lambda: a @ b, 2 * n ** 3, device)
    batch, ch, side = (8, 128, 64) if device.type == "cpu" else (32, 256, 128)
    x = torch.randn(batch, ch, side, side, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    w = torch.randn(ch, ch, 3, 3, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    conv = best_rate(lambda: F.conv2d(x, w, padding=1), 2 * batch * ch * ch * 9 * side * side, device)
    return {"matmul": mm, "conv": conv, "peak": max(mm, conv),
            "matmul_shape": f"{n}x{n} @ {n}x{n}", "conv_shape": f"{batch}x{ch}x{side}x{side}, 3x3, {ch} out"}


# ---- the steps --------------------------------------------------------------------------------


@dataclass
class Case:
    model: str
    plan: str  # "demo" or "paper"
    patch: int
    frames: int
    batch: int


def cases(device: torch.device, quick: bool, models: list[str] | None) -> list[Case]:
    out = []
    for family, names in MODELS.items():
        for which, preset in zip(("demo", "paper"), PLANS[family]):
            shapes = [(s.patch, s.frames) for s in get_preset(preset).plan.stages]
            if quick:
                shapes = [shapes[0], shapes[-1]]
            batch = DEMO_BATCH if which == "demo" else PAPER_BATCH.get(device.type, 1)
            out += [Case(m, which, p, t, batch) for m in names for p, t in shapes if not models or m in models]
    return out


def step_flops(step: TimedStep) -> int:
    """FLOPs of one training step's forward and backward (the optimizer's are not counted)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def case_step(case: Case, device: torch.device, precision: str) -> TimedStep:
    """``case``'s training step as the trainer runs it (:class:`mgvsr.step.TrainStep` with ``--amp`` for a low
    ``precision``, ``channels_last`` where the model prefers it), on a fixed random batch."""
    torch.manual_seed(0)
    model = build_model(case.model)
    lq = torch.rand(case.batch, case.frames, 3, case.patch, case.patch, device=device)
    gt = torch.rand(case.batch, case.frames, 3, 4 * case.patch, 4 * case.patch, device=device)
    step = TimedStep(model, TrainConfig(amp=precision != "fp32"), lq, gt, lr=1e-5, device=device)
    if step.step.precision != precision:
        raise RuntimeError(f"{precision} asked for, the training step runs {step.step.precision} on {device}")
    return step


def time_steps(case: Case, device: torch.device, precision: str, steps: int) -> dict:
    """Median step seconds and FLOPs of ``case`` trained as the trainer does (:func:`case_step`)."""
    step = case_step(case, device, precision)
    flops = step_flops(step)
    step()  # warm-up
    seconds = statistics.median(step() for _ in range(steps))
    return {"seconds": seconds, "flops": flops, "channels_last": step.step.channels_last}


def flop_bounds(per_sample: dict[tuple[str, str, int, int], float]) -> list[str]:
    """The speedup bound by FLOPs of each ``ours`` plan against its baseline, for every model whose fp32 FLOPs
    per sample ``per_sample[(model, plan, patch, frames)]`` cover both plans' stage shapes."""
    lines = []
    for family, names in MODELS.items():
        for which, name in zip(("demo", "paper"), PLANS[family]):
            ours = get_preset(name)
            base = get_preset(ours.baseline)
            stages = ours.plan.stages + base.plan.stages
            for model in names:
                if any((model, which, s.patch, s.frames) not in per_sample for s in stages):
                    continue
                costs = {(s.patch, s.frames, s.batch): per_sample[(model, which, s.patch, s.frames)] * s.batch
                         for s in stages}
                lines.append(f"| {model} | {name} | {base.name} | {expected_speedup(ours.plan, base.plan, costs):.2f}x "
                             f"| {base.plan.work / ours.plan.work:.2f}x |")
    if not lines:
        return []
    return ["### Speedup bounds by FLOPs", "",
            "Each plan against its baseline, a stage costing its fp32 FLOPs per sample (the steps above, divided by "
            "their batch) times its samples; beside it the bound by LR pixels (`Plan.work`).", "",
            "| model | plan | baseline | by FLOPs | by LR pixels |", "|---|---|---|---|---|", *lines, ""]


# ---- the data loader ------------------------------------------------------------------------------


def loader_rate(frames: int, patch: int, batch: int, workers: int, seconds: float = 1.5) -> float:
    """Training windows/s of the trainer's loader over the sample clips (first batch excluded)."""
    source = open_dataset("sample", split="train")
    length = batch * 10_000
    dataset = TrainingWindows(source.windows_source(frames), frames, patch, length=length, seed=0)
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, persistent_workers=False)
    it = iter(loader)
    lq, gt = next(it)  # worker start-up excluded
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        lq, gt = next(it)
        to_float(lq), to_float(gt)
        n += lq.shape[0]
    rate = n / (time.perf_counter() - t0)
    del it
    return rate


# ---- the report ------------------------------------------------------------------------------


def gflops(x: float) -> str:
    return f"{x / 1e9:,.1f}"


def run_device(device: torch.device, args, lines: list[str]) -> None:
    names = precisions(device)
    lines += [f"## {device.type.upper()}", ""]
    if device.type == "cpu" and "bf16" not in names:
        lines += ["bf16 not measured: this CPU has no native bfloat16 (it would be emulated, slower than fp32).", ""]
    peaks = {}
    lines += ["### Peak (measured in this run)", "",
              "| precision | matmul GFLOP/s | conv GFLOP/s | peak GFLOP/s |", "|---|---|---|---|"]
    for precision in names:
        peaks[precision] = p = peak(device, precision)
        lines.append(f"| {precision} | {gflops(p['matmul'])} | {gflops(p['conv'])} | {gflops(p['peak'])} |")
        print(f"[{device}] peak {precision}: matmul {gflops(p['matmul'])}, conv {gflops(p['conv'])} GFLOP/s", flush=True)
    lines += ["", f"matmul {peaks['fp32']['matmul_shape']}; conv {peaks['fp32']['conv_shape']} (channels_last); "
                  "the best of repeated calls over about a second.", ""]

    lines += ["### Training steps", "",
              f"Median of {args.steps} steps after a warm-up step; demo shapes at micro-batch {DEMO_BATCH}, paper shapes "
              f"at micro-batch {PAPER_BATCH.get(device.type, 1)}.  Speedup: fp32 step time / this step time.", "",
              "| model | plan | LR patch & frames | batch | precision | channels_last | step (s) | GFLOP/step "
              "| achieved GFLOP/s | MFU | speedup vs fp32 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    consumed = {}
    per_sample = {}
    for case in cases(device, args.quick, args.models):
        fp32_seconds = None
        for precision in names:
            r = time_steps(case, device, precision, args.steps)
            fp32_seconds = fp32_seconds or r["seconds"]
            rate = r["flops"] / r["seconds"]
            mfu = rate / peaks[precision]["peak"]
            lines.append(f"| {case.model} | {case.plan} | {case.patch}&{case.frames} | {case.batch} | {precision} "
                         f"| {'yes' if r['channels_last'] else 'no'} | {r['seconds']:.3f} | {gflops(r['flops'])} "
                         f"| {gflops(rate)} | {mfu:.1%} | {fp32_seconds / r['seconds']:.2f}x |")
            print(f"[{device}] {case.model} {case.plan} {case.patch}&{case.frames} b{case.batch} {precision}: "
                  f"{r['seconds']:.3f} s, {gflops(r['flops'])} GFLOP, MFU {mfu:.1%}", flush=True)
            key = (case.frames, case.patch, case.batch)
            consumed[key] = max(consumed.get(key, 0.0), case.batch / r["seconds"])
            if precision == "fp32":
                per_sample[(case.model, case.plan, case.patch, case.frames)] = r["flops"] / case.batch
    lines.append("")
    lines += flop_bounds(per_sample)
    if consumed:
        lines += ["### Data loader", "",
                  "Windows/s of the trainer's loader over the sample clips (decoded frames cached in memory), "
                  f"against the fastest model's consumption on the {device.type.upper()} at that shape (batch / step "
                  "time, the fastest precision).  Ratio > 1: the loader keeps up.  The loader runs on the CPU; "
                  "training on a CPU, its workers share the cores with the training step.", "",
                  "| LR patch & frames | batch | consumed (windows/s) | loader, 0 workers | ratio | loader, 2 workers | ratio |",
                  "|---|---|---|---|---|---|---|"]
        for (frames, patch, batch), need in sorted(consumed.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
            r0, r2 = loader_rate(frames, patch, batch, 0), loader_rate(frames, patch, batch, 2)
            lines.append(f"| {patch}&{frames} | {batch} | {need:.1f} | {r0:.1f} | {r0 / need:.1f}x | {r2:.1f} | {r2 / need:.1f}x |")
            print(f"[data] {patch}&{frames} b{batch}: consumed {need:.1f}/s, loader {r0:.1f}/s (0 workers), "
                  f"{r2:.1f}/s (2 workers)", flush=True)
        lines.append("")
    if device.type == "cpu" and not args.no_reference:
        lines += ["### Against the reference (fp32)", "",
                  "Our training step against BasicSR's per-frame forward on the same modules and weights "
                  "(`bench/bench_reference.py`; BasicSR is not importable here, its forwards are written in "
                  "`bench/reference_models.py`, the oracles of the model tests), interleaved, "
                  f"median of {args.steps} steps each.  Ours: the same memory format as the reference; as trained: "
                  "`channels_last` where the model measured it faster, as the trainer runs it.", "",
                  "| model | LR patch & frames | batch | reference (s) | ours (s) | ours vs reference | ours as trained (s) "
                  "| as trained vs reference |", "|---|---|---|---|---|---|---|---|"]
        for name, batch, patch, frames in (("basicvsr_cpu", 4, 32, 8), ("basicvsr_m", 1, 64, 15),
                                           ("edvr_cpu", 4, 32, 5), ("edvr_m", 1, 64, 5)):
            if args.models and name not in args.models:
                continue
            r = compare_reference(name, batch, patch, frames, steps=args.steps)
            lines.append(f"| {name} | {patch}&{frames} | {batch} | {r['reference']:.3f} | {r['ours']:.3f} "
                         f"| {r['ratio']:.2f}x | {r['trained']:.3f} | {r['ratio_trained']:.2f}x |")
            print(f"[reference] {name} {patch}&{frames}: ours {r['ratio']:.2f}x, as trained {r['ratio_trained']:.2f}x",
                  flush=True)
        lines.append("")


def flops_only(device: torch.device, args) -> None:
    """``--flops-only``: the fp32 FLOPs of one training step of every case, and the speedup bounds by FLOPs,
    printed (nothing timed, no file written)."""
    per_sample = {}
    for case in cases(device, args.quick, args.models):
        flops = step_flops(case_step(case, device, "fp32"))
        per_sample[(case.model, case.plan, case.patch, case.frames)] = flops / case.batch
        print(f"[{device}] {case.model} {case.plan} {case.patch}&{case.frames} b{case.batch}: {gflops(flops)} GFLOP "
              f"per step (fp32)", flush=True)
    print("\n".join(flop_bounds(per_sample)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the results file (default {RESULTS})")
    parser.add_argument("--devices", nargs="+", help="cpu and/or cuda (default: cpu, and cuda where present)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case (after a warm-up step)")
    parser.add_argument("--quick", action="store_true", help="only the smallest and largest stage of each plan")
    parser.add_argument("--models", nargs="+", help="only these models")
    parser.add_argument("--no-reference", action="store_true", help="skip the comparison with BasicSR's forwards")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's; 1 on a shared machine, "
                        "where two threads wait on each other)")
    parser.add_argument("--note", default="", help="a line to add under the header (e.g. how loaded the machine was)")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs only (one fp32 step per shape, "
                        "untimed) and print them with the speedup bounds by FLOPs; no file is written")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in (args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])))]
    if args.flops_only:
        for device in devices:
            flops_only(device, args)
        return 0
    start, load_start = time.perf_counter(), os.getloadavg()
    lines: list[str] = []
    for device in devices:
        run_device(device, args, lines)
    minutes, load_end = (time.perf_counter() - start) / 60, os.getloadavg()
    cores = os.cpu_count() or 1
    loaded = load_start[0] > 0.5 * cores or load_end[0] > cores + 0.5  # others' work beside this run's
    given = list(argv if argv is not None else sys.argv[1:])
    if "--note" in given:  # the note is printed below the header, not in the command
        given[given.index("--note") + 1] = "TEXT"
    command = " ".join(["python bench/run.py", *given])
    header = ["# Benchmark results", "",
              f"Written by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {minutes:.1f} minutes.", "",
              *machine_lines(devices),
              f"- load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end, on {cores} cores: "
              + ("**a shared, loaded machine**: the times are provisional, the ratios measured side by side "
                 "are the figures to read" if loaded else "a quiet machine"), ""]
    if args.note:
        header += [args.note, ""]
    header += [(__doc__.split("\n\n", 2)[2]).strip(), ""]
    args.out.write_text("\n".join(header + lines) + "\n")
    print(f"wrote {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
