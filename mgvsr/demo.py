"""The main job: baseline against ours on the embedded sample clips, on whatever device is here.

``mgvsr demo --out DIR`` trains two runs of the same model on the same number of training
samples:

- **baseline**: the usual recipe, the largest shape (LR patch and frames) throughout, a
  small minibatch, one cosine;
- **ours**: the paper's recipe, the multigrid (spatial cycle, a temporal cycle inside each
  spatial stage) with Eq. 1's restarting LR, and an m-times larger minibatch with the
  linear scaling rule (LR x m, iterations / m) and a linear warmup;

and, beyond the paper, a third run:

- **fast** ("ours + bf16"): ours with mixed precision (bfloat16 autocast; float16 with loss
  scaling on a CUDA device without bfloat16): the same preset, samples and initial weights
  (:func:`mgvsr.launch.run_preset` seeds before building the model).  Where the device has no
  fast low precision (a CPU without native bfloat16, :func:`mgvsr.device.resolve_precision`)
  the demo says so and skips it;

then evaluates them and bicubic on the held-out sample clips and writes, into ``DIR``,
``report.md`` (a Table-1-style comparison), ``report.json``, ``psnr_vs_time.png`` and
``plans.png``.  Each run keeps its own folder (``DIR/baseline``, ``DIR/ours``, ``DIR/fast``)
with its log and checkpoints: running the demo again resumes an interrupted run and reuses a
finished one of the same spec (:mod:`mgvsr.runs`).

On a CPU the larger minibatch of BasicVSR and BasicVSR++ runs at once (a CPU is as fast per sample on
8 clips as on 4, faster in bf16: :data:`WHOLE_BATCH_ON_CPU`); EDVR's is computed as micro-batches whose
gradients accumulate (the same update).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from mgvsr import runs
from mgvsr.data.datasets import open_dataset
from mgvsr.errors import MgvsrError
from mgvsr.evaluate import evaluate_bicubic
from mgvsr.device import precision_note, resolve_device, resolve_precision
from mgvsr.launch import run_preset
from mgvsr.options import RunOptions
from mgvsr.presets import Preset, get_preset
from mgvsr.costs import compare_folders
from mgvsr.report import SPEEDUP_KEYS, SPEEDUP_NOTE, comparison_table, flags_text, save_figures, summary_entry
from mgvsr.tables import seeds_verdict

RUNS = ("baseline", "ours")
FAST = "fast"  # ours + mixed precision: beyond the paper
# model families the demo runs: BasicVSR (basicvsr_cpu), EDVR-M (edvr_cpu, the spatial cycle only) and
# BasicVSR++ (basicvsrpp_cpu)
FAMILIES = ("basicvsr", "edvr_m", "basicvsrpp")
DEMO_EVALS = 6  # evaluations during each run (the PSNR-against-time curve), the last at the end


def demo_presets(model: str = "basicvsr", iterations: int | None = None) -> dict[str, Preset]:
    """The two presets the demo compares for the model family ``model`` (:data:`FAMILIES`), as they
    train: shrunk to ``iterations`` baseline iterations when given (ours keeps the same share of the
    run, so both see the same number of samples)."""
    if model not in FAMILIES:
        raise MgvsrError(f"the demo runs the model families {', '.join(FAMILIES)}, got {model!r}")
    presets = {run: get_preset(f"demo/{model}/{run}") for run in RUNS}
    if iterations is None:
        return presets
    base_total = presets["baseline"].plan.total_iterations
    return {run: p.shrunk(iterations=max(len(p.plan), round(p.plan.total_iterations * iterations / base_total)))
            for run, p in presets.items()}


# Model families whose larger minibatch (8 clips) runs at once on a CPU, as fast per sample as two
# micro-batches of 4 or faster (`python bench/bench_micro_batch.py`, 2 threads: basicvsr_cpu in
# channels_last 0.99-1.15x in fp32, 1.11-1.33x in bf16; edvr_cpu 0.89-1.03x, so EDVR keeps micro-batches;
# basicvsrpp_cpu 0.97-1.13x in fp32, 1.06-1.27x in bf16, one thread on a loaded machine:
# `OMP_NUM_THREADS=1 python bench/bench_micro_batch.py --model basicvsrpp_cpu --preset demo/basicvsrpp/ours --steps 3`).
WHOLE_BATCH_ON_CPU = {"basicvsr": True, "edvr_m": False, "basicvsrpp": True}


def demo_micro_batch(presets: dict[str, Preset], device: str, model: str = "basicvsr") -> int | None:
    """The micro-batch of the demo's runs: None (the whole minibatch at once) on a GPU and, on a CPU,
    for the families of :data:`WHOLE_BATCH_ON_CPU`; otherwise micro-batches of the baseline's size (the
    same update, where a CPU is slower per sample on the larger batch)."""
    if resolve_device(device).type != "cpu" or WHOLE_BATCH_ON_CPU.get(model, False):
        return None
    return presets["baseline"].plan.stages[0].batch


def fast_precision(device: str = "auto") -> tuple[str | None, str]:
    """``(precision, note)`` of the demo's fast run on ``device``: ``"bf16"`` or ``"fp16"``, or None
    where the device has no fast low precision (the run is then skipped; the note says why)."""
    dev = resolve_device(device)
    precision = resolve_precision(dev, True)
    return (None if precision == "fp32" else precision), precision_note(dev, True)


def run_demo(out: str | Path, model: str = "basicvsr", options: RunOptions | None = None, *,
             iterations: int | None = None, evals: int = DEMO_EVALS, fresh: bool = False, fast: bool | None = None,
             seeds: int = 1) -> dict:
    """Train and compare baseline, ours and fast; write the report into ``out``; return ``report.json``'s dict.

    ``options``: the device, loader workers and progress bars of the runs (their micro-batches, precision
    and evaluation intervals are the demo's).  ``iterations`` shrinks the runs to that many baseline
    iterations (ours keeps the same number of samples), for a quick look or a test.  ``evals``:
    evaluations on the held-out clips during each run (for the PSNR-against-time curve), the last at
    the end.  A finished run of the same spec in ``out/<run>`` is read, not retrained
    (:mod:`mgvsr.runs`); ``fresh`` removes it and retrains.  ``fast``: train the fast run (ours + mixed
    precision); None: where the device computes a low precision natively (:func:`fast_precision`);
    False: not trained, but a finished one in ``out`` is read and kept in the report (which is rewritten).
    ``seeds``: with more than one, baseline and ours also train with the next seeds (``out/<run>-seed<k>``,
    evaluated at their end), and the report gives each the PSNRs of its seeds, their mean and standard
    deviation, and the verdict on ours' PSNR against that noise (:func:`mgvsr.tables.seeds_verdict`).
    """
    options = options or RunOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    presets = demo_presets(model, iterations)
    precision, note = fast_precision(options.device)
    trains = {run: (preset, False) for run, preset in presets.items()}
    if fast is None:
        fast = precision is not None
        if not fast and options.progress:
            print(f"[{FAST}] skipped: {note}")
    elif fast and precision is None:
        raise MgvsrError(f"the fast run needs mixed precision, and here {note}")
    if fast or (fast is False and precision is not None and runs.finished_summary(out / FAST) is not None):
        trains[FAST] = (presets["ours"], True)  # asked for, or finished before: read (the spec decides), kept in the report
    test = open_dataset("sample", split="test")
    t0 = time.perf_counter()
    bicubic = evaluate_bicubic(test, channel="y", progress=False).to_dict()
    base = options.replace(micro_batch=demo_micro_batch(presets, options.device, model))
    results = {run: _train_run(run, preset, out / run, base.replace(amp=amp), fresh, evals)
               for run, (preset, amp) in trains.items()}
    for run, (_, amp) in trains.items():
        if amp:
            results[run]["precision"] = precision
    compared = compare_folders(out / "baseline", {run: out / run for run in results if run != "baseline"},
                               device=options.device, progress=options.progress)
    report = demo_report(results, bicubic, model, compared)
    if seeds > 1:
        add_seeds(report, presets, out, base.replace(eval_every=0, checkpoint_every=0, progress=False), seeds)
    if FAST not in results:
        report["fast_note"] = note if precision is None else "not asked for"
    report["total_seconds"] = time.perf_counter() - t0
    write_demo_report(report, results, out)
    return report


def _train_run(run: str, preset: Preset, folder: Path, options: RunOptions, fresh: bool, evals: int) -> dict:
    """One run of the demo into ``folder`` (evaluated ``evals`` times), as the report reads it."""
    if fresh:
        runs.remove_run(folder)
    total = preset.plan.total_iterations
    if options.progress:
        print(f"[{run}] {preset.name}{' + ' + fast_precision(options.device)[0] if options.amp else ''}: "
              f"{preset.plan.description}")
    every = max(1, total // evals)
    result = run_preset(preset, folder, options.replace(eval_every=every, checkpoint_every=every))
    record = runs.read_run(folder)
    return {"preset": preset.name, "folder": str(folder), "summary": result.summary, "evals": record.evals,
            "plan": record.plan}


def seed_run_folder(out: str | Path, run: str, k: int) -> Path:
    """The folder of ``run``'s ``k``-th seed (from 0): ``out/<run>``, then ``out/<run>-seed<k>``."""
    return Path(out) / (run if k == 0 else f"{run}-seed{k}")


def finished_seeds(out: str | Path) -> int:
    """How many seeds of both baseline and ours are finished in ``out`` (:func:`seed_run_folder`), counting
    on while both have the next one; 0 where either first run is not."""
    k = 0
    while all(runs.finished_summary(seed_run_folder(out, run, k)) is not None for run in RUNS):
        k += 1
    return k


def add_seeds(report: dict, presets: dict[str, Preset], out: Path, options: RunOptions, seeds: int) -> None:
    """Train baseline and ours with ``seeds - 1`` more seeds (``out/<run>-seed<k>``; finished ones are read)
    and put each run's ``seeds`` (PSNRs, the first seed's first), ``psnr_mean`` and ``psnr_sd`` into
    ``report``, and ``psnr_verdict``: ours against the baseline under the verdict rule."""
    for run in RUNS:
        psnrs = [report[run]["psnr"]]
        for k in range(1, seeds):
            psnrs.append(run_preset(presets[run], seed_run_folder(out, run, k),
                                    options.replace(seed=options.seed + k)).summary["psnr"])
        report[run].update(seeds=psnrs, psnr_mean=statistics.fmean(psnrs), psnr_sd=statistics.stdev(psnrs))
    report["psnr_verdict"] = seeds_verdict(report["ours"]["seeds"], report["baseline"]["seeds"])


def demo_report(results: dict, bicubic: dict, model: str, compared: dict | None = None) -> dict:
    """``report.json``'s content from the runs' summaries, the bicubic scores and ``compared``, the
    calibrated comparison of each run with the baseline (:func:`mgvsr.costs.compare_folders`: the keys
    ``speedup_flops``, ``speedup_calibrated``, ``speedup_to_baseline_psnr``, ``flags``)."""
    def entry(run: str) -> dict:
        return {**summary_entry(results[run]["summary"], results[run]["plan"], results[run]["preset"]),
                **(compared or {}).get(run, {})}

    base, ours = entry("baseline"), entry("ours")
    ours.update(speedup_wall=base["wall_seconds"] / ours["wall_seconds"],
                speedup_compute=base["compute_seconds"] / ours["compute_seconds"], psnr_gap=ours["psnr"] - base["psnr"])
    fast = None
    if FAST in results:  # ours + mixed precision, against the fp32 baseline
        fast = entry(FAST)
        fast.update(precision=results[FAST].get("precision", "bf16"),
                    speedup_wall=base["wall_seconds"] / fast["wall_seconds"],
                    speedup_compute=base["compute_seconds"] / fast["compute_seconds"],
                    psnr_gap=fast["psnr"] - base["psnr"])
    return {
        "model": model,
        "dataset": "sample (held-out clips, Y channel)",
        "baseline": base,
        "ours": ours,
        "fast": fast,
        "bicubic": {"psnr": bicubic["mean"]["psnr"], "ssim": bicubic["mean"]["ssim"]},
        "speedup_wall": ours["speedup_wall"],
        "speedup_compute": ours["speedup_compute"],
        "psnr_gap": ours["psnr_gap"],
        **{key: ours.get(key) for key in SPEEDUP_KEYS},
    }


def shown_runs(report: dict) -> list[str]:
    """The runs of ``report`` in the order they are shown: baseline, ours, and fast when it trained."""
    return list(RUNS) + ([FAST] if report.get(FAST) else [])


def run_label(report: dict, run: str) -> str:
    """A run's name in tables and figures (``"ours + bf16"`` for the fast run)."""
    return f"ours + {report[FAST]['precision']}" if run == FAST else run


def format_table(report: dict) -> str:
    """The Table-1-style comparison as a markdown table (:func:`mgvsr.report.comparison_table`;
    every speedup against the fp32 baseline)."""
    return comparison_table({run_label(report, run): report[run] for run in shown_runs(report)},
                            report["bicubic"], reference="baseline")


def write_demo_report(report: dict, results: dict, out: Path) -> None:
    """``report.json``, ``report.md``, ``psnr_vs_time.png`` and ``plans.png`` into ``out``."""
    (out / "report.json").write_text(json.dumps(report, indent=1))
    save_figures(out, {run_label(report, run): results[run]["evals"] for run in shown_runs(report)},
                 {run: results[run]["plan"] for run in RUNS}, bicubic_psnr=report["bicubic"]["psnr"])
    md = [
        f"# mgvsr demo: {report['model']} on the sample clips",
        "",
        "Baseline (largest shape throughout, small minibatch) against ours (multigrid + Eq. 1 LR + "
        "large minibatch with linear scaling and warmup), the same number of training samples, "
        "scored on the held-out sample clips (Y channel).  Wall-clock is training time (compute + "
        "waiting for data), without evaluations; compute excludes data loading, as the paper reports.",
        "",
        format_table(report),
        "",
        SPEEDUP_NOTE,
        *flags_text({run: report[run] for run in shown_runs(report)}),
        "",
        speedup_sentence(report),
        *([f"Seeds: baseline {_seeds_text(report['baseline'])}, ours {_seeds_text(report['ours'])}; ours "
           f"{report['psnr_verdict']}.", ""] if report.get("psnr_verdict") else []),
        f"Speedup: {report['speedup_wall']:.2f}x wall-clock, {report['speedup_compute']:.2f}x compute; "
        f"PSNR ours - baseline: {report['psnr_gap']:+.2f} dB; "
        f"above bicubic: baseline {report['baseline']['psnr'] - report['bicubic']['psnr']:+.2f} dB, "
        f"ours {report['ours']['psnr'] - report['bicubic']['psnr']:+.2f} dB.",
        "",
        fast_sentence(report),
        "",
        "![PSNR against training time](psnr_vs_time.png)",
        "",
        "![Shapes and learning rate over iterations](plans.png)",
        "",
        f"Produced by `mgvsr demo` in {report.get('total_seconds', 0):.0f} s.",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")


def _seeds_text(entry: dict) -> str:
    return f"{entry['psnr_mean']:.2f} ± {entry['psnr_sd']:.2f} dB ({', '.join(f'{p:.2f}' for p in entry['seeds'])})"


def speedup_sentence(report: dict) -> str:
    """Ours against the baseline by the measures a shared machine cannot move (:mod:`mgvsr.costs`)."""
    if report.get("speedup_calibrated") is None:
        return "Ours was not calibrated: no calibrated speedup."
    to_psnr = report.get("speedup_to_baseline_psnr")
    return (f"Ours: {report['speedup_calibrated']:.2f}x faster by the calibrated step costs (the FLOP bound is "
            f"{report['speedup_flops']:.2f}x); " + ("it never reached the baseline's final PSNR." if to_psnr is None else
                                                    f"it reached the baseline's final PSNR {to_psnr:.2f}x sooner."))


def fast_sentence(report: dict) -> str:
    """What the fast run (ours + mixed precision) gained against the fp32 baseline, or why it did not run."""
    fast = report.get(FAST)
    if not fast:
        return f"Ours + mixed precision (beyond the paper) did not run: {report.get('fast_note', 'not asked for')}."
    return (f"Beyond the paper, ours + {fast['precision']} (the same preset, samples and initial weights, "
            f"{fast['precision']} autocast): {fast['speedup_wall']:.2f}x wall-clock, {fast['speedup_compute']:.2f}x "
            f"compute against the fp32 baseline; PSNR - baseline {fast['psnr_gap']:+.2f} dB, "
            f"{fast['psnr'] - report['bicubic']['psnr']:+.2f} dB above bicubic.")
