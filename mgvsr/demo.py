"""The main job: baseline against ours on the embedded sample clips, on whatever device is here.

``mgvsr demo --out DIR`` trains two runs of the same model on the same number of training
samples:

- **baseline**: the usual recipe, the largest shape (LR patch and frames) throughout, a
  small minibatch, one cosine;
- **ours**: the paper's recipe, the multigrid (spatial cycle, a temporal cycle inside each
  spatial stage) with Eq. 1's restarting LR, and an m-times larger minibatch with the
  linear scaling rule (LR x m, iterations / m) and a linear warmup;

then evaluates both and bicubic on the held-out sample clips and writes, into ``DIR``,
``report.md`` (a Table-1-style comparison), ``report.json``, ``psnr_vs_time.png`` and
``plans.png``.  Each run keeps its own folder (``DIR/baseline``, ``DIR/ours``) with its log
and checkpoints: running the demo again resumes an interrupted run and reuses a finished one
of the same spec (:mod:`mgvsr.runs`).

On a CPU the larger minibatch is computed as micro-batches whose gradients accumulate
(REFERENCE.md section 4: a CPU is slower per sample on big batches); the update is the
same, so the comparison is the paper's, and the speed difference comes from the multigrid.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mgvsr import runs
from mgvsr.data.datasets import open_dataset
from mgvsr.errors import MgvsrError
from mgvsr.evaluate import evaluate_bicubic
from mgvsr.presets import Preset, get_preset
from mgvsr.report import comparison_table, save_figures, summary_entry
from mgvsr.train import resolve_device, run_preset

RUNS = ("baseline", "ours")
# model families the demo runs: BasicVSR (basicvsr_cpu) and EDVR-M (edvr_cpu, the spatial cycle only)
FAMILIES = ("basicvsr", "edvr_m")


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


def demo_micro_batch(presets: dict[str, Preset], device: str) -> int | None:
    """On a CPU, ours' larger minibatch runs as micro-batches of the baseline's size (the same update;
    a CPU is slower per sample on big batches); on a GPU the whole batch goes at once."""
    return presets["baseline"].plan.stages[0].batch if resolve_device(device).type == "cpu" else None


def run_demo(out: str | Path, model: str = "basicvsr", *, device: str = "auto", iterations: int | None = None,
             evals: int = 6, num_workers: int = 0, progress: bool = True, fresh: bool = False) -> dict:
    """Train and compare baseline and ours; write the report into ``out``; return ``report.json``'s dict.

    ``iterations`` shrinks both runs to that many baseline iterations (ours keeps the same
    number of samples), for a quick look or a test.  ``evals``: evaluations on the
    held-out clips during each run (for the PSNR-against-time curve), the last at the end.
    A finished run of the same spec in ``out/<run>`` is read, not retrained (:mod:`mgvsr.runs`);
    ``fresh`` removes it and retrains.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    presets = demo_presets(model, iterations)
    micro_batch = demo_micro_batch(presets, device)
    test = open_dataset("sample", split="test")
    t0 = time.perf_counter()
    bicubic = evaluate_bicubic(test, channel="y", progress=False).to_dict()

    results = {}
    for run, preset in presets.items():
        folder = out / run
        if fresh:
            runs.remove_run(folder)
        total = preset.plan.total_iterations
        if progress:
            print(f"[{run}] {preset.name}: {preset.plan.description}")
        result = run_preset(preset, folder, device=device, num_workers=num_workers, micro_batch=micro_batch,
                            eval_every=max(1, total // evals), checkpoint_every=max(1, total // evals),
                            progress=progress)
        record = runs.read_run(folder)
        results[run] = {"preset": preset.name, "folder": str(folder), "summary": result.summary,
                        "evals": record.evals, "plan": record.plan}

    report = make_report(results, bicubic, model)
    report["total_seconds"] = time.perf_counter() - t0
    write_report(report, results, out)
    return report


def make_report(results: dict, bicubic: dict, model: str) -> dict:
    """``report.json``'s content from the two runs' summaries and the bicubic scores."""
    base, ours = (summary_entry(results[run]["summary"], results[run]["plan"], results[run]["preset"])
                  for run in RUNS)
    return {
        "model": model,
        "dataset": "sample (held-out clips, Y channel)",
        "baseline": base,
        "ours": ours,
        "bicubic": {"psnr": bicubic["mean"]["psnr"], "ssim": bicubic["mean"]["ssim"]},
        "speedup_wall": base["wall_seconds"] / ours["wall_seconds"],
        "speedup_compute": base["compute_seconds"] / ours["compute_seconds"],
        "psnr_gap": ours["psnr"] - base["psnr"],
    }


def format_table(report: dict) -> str:
    """The Table-1-style comparison as a markdown table (:func:`mgvsr.report.comparison_table`)."""
    return comparison_table({run: report[run] for run in RUNS}, report["bicubic"], reference="baseline")


def write_report(report: dict, results: dict, out: Path) -> None:
    """``report.json``, ``report.md``, ``psnr_vs_time.png`` and ``plans.png`` into ``out``."""
    (out / "report.json").write_text(json.dumps(report, indent=1))
    save_figures(out, {run: results[run]["evals"] for run in RUNS}, {run: results[run]["plan"] for run in RUNS},
                 bicubic_psnr=report["bicubic"]["psnr"])
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
        f"Speedup: {report['speedup_wall']:.2f}x wall-clock, {report['speedup_compute']:.2f}x compute; "
        f"PSNR ours - baseline: {report['psnr_gap']:+.2f} dB; "
        f"above bicubic: baseline {report['baseline']['psnr'] - report['bicubic']['psnr']:+.2f} dB, "
        f"ours {report['ours']['psnr'] - report['bicubic']['psnr']:+.2f} dB.",
        "",
        "![PSNR against training time](psnr_vs_time.png)",
        "",
        "![Shapes and learning rate over iterations](plans.png)",
        "",
        f"Produced by `mgvsr demo` in {report.get('total_seconds', 0):.0f} s.",
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")
