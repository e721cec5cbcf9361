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
and checkpoints: running the demo again resumes an interrupted run and reuses a finished one.

On a CPU the larger minibatch is computed as micro-batches whose gradients accumulate
(REFERENCE.md section 4: a CPU is slower per sample on big batches); the update is the
same, so the comparison is the paper's, and the speed difference comes from the multigrid.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mgvsr.experiments import get_preset
from mgvsr.schedule import shrink
from mgvsr.train import read_log, resolve_device, run_preset

RUNS = ("baseline", "ours")
# model families the demo runs: BasicVSR (basicvsr_cpu) and EDVR-M (edvr_cpu, the spatial cycle only)
FAMILIES = ("basicvsr", "edvr_m")


def demo_presets(model: str = "basicvsr") -> dict:
    """The two presets the demo compares for the model family ``model`` (:data:`FAMILIES`)."""
    from mgvsr.errors import MgvsrError

    if model not in FAMILIES:
        raise MgvsrError(f"the demo runs the model families {', '.join(FAMILIES)}, got {model!r}")
    return {run: get_preset(f"demo/{model}/{run}") for run in RUNS}


def read_run(folder: str | Path) -> dict:
    """What a run's ``log.jsonl`` in ``folder`` tells: ``{"plan": the plan as logged (a dict),
    "evals": the evaluation records, "end": the end record, or None while unfinished}``."""
    records = read_log(Path(folder) / "log.jsonl")
    return {"plan": records[0]["plan"], "evals": [r for r in records if r["event"] == "eval"],
            "end": records[-1] if records[-1]["event"] == "end" else None}


def _finished_summary(folder: Path, plan) -> dict | None:
    """The summary of the finished run of ``plan`` in ``folder`` (its log's "end" record); None
    when nothing finished there; MgvsrError when what finished there followed another plan."""
    from mgvsr.errors import MgvsrError
    from mgvsr.reproduce import finished_summary

    summary = finished_summary(folder)
    if summary is None:
        return None
    if read_run(folder)["plan"] != plan.to_dict():
        raise MgvsrError(f"{folder} holds a finished run of another plan than {plan.name} at this length "
                         "(the demo changed, or another --iterations); use --fresh or another --out")
    return summary


def run_demo(out: str | Path, model: str = "basicvsr", *, device: str = "auto", iterations: int | None = None,
             evals: int = 6, num_workers: int = 0, progress: bool = True, fresh: bool = False) -> dict:
    """Train and compare baseline and ours; write the report into ``out``; return ``report.json``'s dict.

    ``iterations`` shrinks both runs to that many baseline iterations (ours keeps the same
    number of samples), for a quick look or a test.  ``evals``: evaluations on the
    held-out clips during each run (for the PSNR-against-time curve), the last at the end.
    ``fresh``: retrain even where a finished run is in ``out``.
    """
    from mgvsr.data.datasets import open_dataset
    from mgvsr.evaluate import evaluate_bicubic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    presets = demo_presets(model)
    base_total = presets["baseline"].plan.total_iterations
    # ours' larger minibatch as micro-batches of the baseline's size (same update; on a CPU
    # a big batch is slower per sample); on a GPU the whole batch goes at once
    micro_batch = presets["baseline"].plan.stages[0].batch if resolve_device(device).type == "cpu" else None
    test = open_dataset("sample", split="test")
    t0 = time.perf_counter()
    bicubic = evaluate_bicubic(test, channel="y", progress=False).to_dict()

    runs = {}
    for run in RUNS:
        preset = presets[run]
        folder = out / run
        its = None
        if iterations is not None:  # the same share of the run for both: same samples
            its = max(len(preset.plan), round(preset.plan.total_iterations * iterations / base_total))
        plan = preset.plan if its is None else shrink(preset.plan, iterations=its)
        summary = None if fresh else _finished_summary(folder, plan)
        if summary is None:
            total = plan.total_iterations
            if progress:
                print(f"[{run}] {preset.name}: {preset.plan.description}")
            summary = run_preset(preset, folder, iterations=its, device=device, num_workers=num_workers,
                                 micro_batch=micro_batch,
                                 eval_every=max(1, total // evals), checkpoint_every=max(1, total // evals),
                                 progress=progress, resume=(folder / "last.pth").is_file() and not fresh)
        logged = read_run(folder)
        runs[run] = {"preset": preset.name, "folder": str(folder), "summary": summary,
                     "evals": logged["evals"], "plan": logged["plan"]}

    report = make_report(runs, bicubic, model)
    report["total_seconds"] = time.perf_counter() - t0
    write_report(report, runs, out)
    return report


def make_report(runs: dict, bicubic: dict, model: str) -> dict:
    """``report.json``'s content from the two runs' summaries and the bicubic scores."""
    def entry(run: str) -> dict:
        s = runs[run]["summary"]
        plan = runs[run]["plan"]
        return {
            "preset": runs[run]["preset"],
            "wall_seconds": s["train_seconds"],
            "compute_seconds": s["compute_seconds"],
            "data_seconds": s["data_seconds"],
            "psnr": s["psnr"],
            "ssim": s["ssim"],
            "iterations": plan["total_iterations"],
            "samples": s["samples"],
            "stages": [f"{st['patch']}&{st['frames']}" for st in plan["stages"]],
            "batch": plan["stages"][0]["batch"],
        }

    base, ours = entry("baseline"), entry("ours")
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
    """The Table-1-style comparison as a markdown table."""
    rows = [
        "| run | minibatch | stages (LR patch & frames) | iterations | samples | wall-clock (s) | compute (s) "
        "| speedup (wall) | speedup (compute) | PSNR (dB) | SSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| bicubic | - | - | - | - | - | - | - | - | {report['bicubic']['psnr']:.2f} | {report['bicubic']['ssim']:.4f} |",
    ]
    for run in RUNS:
        r = report[run]
        sw = "-" if run == "baseline" else f"{report['speedup_wall']:.2f}x"
        sc = "-" if run == "baseline" else f"{report['speedup_compute']:.2f}x"
        rows.append(f"| {run} | {r['batch']} | {' / '.join(r['stages'])} | {r['iterations']} | {r['samples']} "
                    f"| {r['wall_seconds']:.0f} | {r['compute_seconds']:.0f} | {sw} | {sc} "
                    f"| {r['psnr']:.2f} | {r['ssim']:.4f} |")
    return "\n".join(rows)


def write_report(report: dict, runs: dict, out: Path) -> None:
    """``report.json``, ``report.md``, ``psnr_vs_time.png`` and ``plans.png`` into ``out``."""
    from mgvsr.schedule import Plan
    from mgvsr.viz import plot_plans, plot_psnr_vs_time

    (out / "report.json").write_text(json.dumps(report, indent=1))
    fig = plot_psnr_vs_time({run: runs[run]["evals"] for run in RUNS}, bicubic=report["bicubic"]["psnr"])
    fig.savefig(out / "psnr_vs_time.png", dpi=110, bbox_inches="tight")
    plans = {run: Plan.from_dict(runs[run]["plan"]) for run in RUNS}
    fig = plot_plans(plans)
    fig.savefig(out / "plans.png", dpi=110, bbox_inches="tight")
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
