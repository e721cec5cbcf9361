"""Compare runs from their folders, without retraining: the table and figures ``mgvsr demo`` prints.

``mgvsr report RUN [RUN ...] --out DIR`` reads each run folder's ``log.jsonl`` (and
``spec.json``), finished or still training, and writes into ``DIR``:

- ``report.md``: the Table-1-style comparison (minibatch, stages, iterations, samples,
  wall-clock and compute seconds, speedups against the first run, PSNR and SSIM of the last
  evaluation; bicubic on the same clips when they can be opened), and each run's per-stage
  share of its training time;
- ``report.json``: the same numbers;
- ``psnr_vs_time.png`` (PSNR at each evaluation against training wall-clock),
  ``plans.png`` (LR patch, frames and learning rate over iterations, one column per run),
  ``stage_times.png`` (seconds per stage, compute and data).

:mod:`mgvsr.demo` builds its report with the same functions (:func:`run_entry`,
:func:`comparison_table`, :func:`save_figures`).  Wall-clock is training time (compute +
waiting for data) without evaluations and checkpoints; compute excludes data loading, as the
paper reports; device-seconds are wall-clock times the processes of the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mgvsr import runs
from mgvsr.costs import compare_folders
from mgvsr.data.datasets import open_dataset
from mgvsr.errors import MgvsrError
from mgvsr.evaluate import evaluate_bicubic
from mgvsr.figures import plot_plans, plot_psnr_vs_time, plot_stage_times
from mgvsr.schedule import Plan

FIGURES = ("psnr_vs_time.png", "plans.png", "stage_times.png")


def _stage_sums(steps: list[dict], n_stages: int, key: str) -> list[float]:
    sums = [0.0] * n_stages
    for s in steps:
        sums[s["stage"]] += s[key]
    return sums


def summary_entry(summary: dict, plan: dict, preset: str) -> dict:
    """A run's row of the comparison from its summary (the log's ``end`` record:
    ``train_seconds``, ``compute_seconds``, ``data_seconds``, ``psnr``, ``ssim``, ``samples``) and its
    plan (a dict): ``preset``, ``wall_seconds``, ``compute_seconds``, ``data_seconds``, ``psnr``,
    ``ssim``, ``iterations``, ``samples``, ``stages`` (``patch&frames`` each), ``batch``."""
    return {
        "preset": preset,
        "wall_seconds": summary["train_seconds"],
        "compute_seconds": summary["compute_seconds"],
        "data_seconds": summary["data_seconds"],
        "psnr": summary["psnr"],
        "ssim": summary["ssim"],
        "iterations": plan["total_iterations"],
        "samples": summary["samples"],
        "stages": [f"{st['patch']}&{st['frames']}" for st in plan["stages"]],
        "batch": plan["stages"][0]["batch"],
    }


def _summary_so_far(records: list[dict], plan: dict) -> dict:
    """The numbers of an ``end`` record for a run that has not ended, from its step and eval records."""
    steps = [r for r in records if r["event"] == "step"]
    evals = [r for r in records if r["event"] == "eval"]
    compute, data = sum(s["compute"] for s in steps), sum(s["data"] for s in steps)
    n = len(plan["stages"])
    return {"it": steps[-1]["it"] + 1 if steps else 0, "train_seconds": compute + data, "compute_seconds": compute,
            "data_seconds": data, "stage_compute_seconds": _stage_sums(steps, n, "compute"),
            "stage_data_seconds": _stage_sums(steps, n, "data"),
            "psnr": evals[-1]["psnr"] if evals else None, "ssim": evals[-1]["ssim"] if evals else None,
            "samples": sum(s["iterations"] * s["batch"] for s in plan["stages"])}


def run_entry(folder: str | Path) -> dict:
    """One run's row of the comparison, read from its folder's log, finished or not: the keys of
    :func:`summary_entry` and ``folder``, ``finished``, ``it`` (iterations done), ``world_size``,
    ``device_seconds`` (wall-clock x processes), ``stage_compute_seconds``, ``stage_data_seconds``."""
    folder = Path(folder)
    records = runs.read_log(folder)
    if not records or records[0].get("event") != "start":
        raise runs.RunFolderError(f"{folder / runs.LOG_FILE} does not start with a 'start' record: not a run log")
    start, plan = records[0], records[0]["plan"]
    end = records[-1] if records[-1]["event"] == "end" else None
    summary = end if end is not None else _summary_so_far(records, plan)
    spec = runs.read_spec(folder) or {}
    preset = spec.get("preset") or start.get("config", {}).get("extra", {}).get("preset") or plan.get("name") or folder.name
    world = int(start.get("world_size", 1) or 1)
    entry = summary_entry(summary, plan, preset)
    entry.update(folder=str(folder), finished=end is not None, it=summary["it"], world_size=world,
                 device_seconds=summary["train_seconds"] * world,
                 stage_compute_seconds=summary["stage_compute_seconds"],
                 stage_data_seconds=summary["stage_data_seconds"])
    return entry


@dataclass
class RunView:
    """What the report shows of one run: its table ``entry`` (:func:`run_entry`), its evaluation
    records and its plan (as trained, a dict)."""

    entry: dict
    evals: list[dict] = field(repr=False)
    plan: dict = field(repr=False)


def read_view(folder: str | Path) -> RunView:
    record = runs.read_run(folder)
    return RunView(run_entry(folder), record.evals, record.plan)


def run_names(folders: list[Path]) -> list[str]:
    """Short unique names for run folders: the folder's name, with as many parents as it takes."""
    folders = [Path(f).resolve() for f in folders]
    depth = 1
    while True:
        names = ["/".join(f.parts[-depth:]) for f in folders]
        if len(set(names)) == len(names) or depth >= max(len(f.parts) for f in folders):
            return names
        depth += 1


# ---- the table --------------------------------------------------------------------------------


def _speedup(reference: dict, entry: dict, key: str) -> str:
    return f"{reference[key] / entry[key]:.2f}x" if entry[key] > 0 else "-"


def _score(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def comparison_table(entries: dict[str, dict], bicubic: dict | None = None, reference: str | None = None) -> str:
    """The Table-1-style comparison as a markdown table: a row per run (speedups against
    ``reference``, the first run when None) after a bicubic row when ``bicubic`` (``{"psnr", "ssim"}``)
    is given.  An unfinished run shows ``done of total`` iterations."""
    reference = reference or next(iter(entries))
    ref = entries[reference]
    rows = [
        "| run | minibatch | stages (LR patch & frames) | iterations | samples | wall-clock (s) | compute (s) "
        "| speedup (wall) | speedup (compute) | speedup (calibrated) | FLOP bound | to the baseline's PSNR "
        "| PSNR (dB) | SSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if bicubic is not None:
        rows.append(f"| bicubic | - | - | - | - | - | - | - | - | - | - | - | {bicubic['psnr']:.2f} "
                    f"| {bicubic['ssim']:.4f} |")
    for name, r in entries.items():
        sw = "-" if name == reference else _speedup(ref, r, "wall_seconds")
        sc = "-" if name == reference else _speedup(ref, r, "compute_seconds")
        calibrated = [_ratio(r.get(k)) for k in ("speedup_calibrated", "speedup_flops", "speedup_to_baseline_psnr")]
        if name != reference and r.get("speedup_calibrated") is not None and r.get("speedup_to_baseline_psnr") is None:
            calibrated[2] = "never"
        iterations = r["iterations"] if r.get("finished", True) else f"{r['it']} of {r['iterations']}"
        rows.append(f"| {name} | {r['batch']} | {' / '.join(r['stages'])} | {iterations} | {r['samples']} "
                    f"| {r['wall_seconds']:.0f} | {r['compute_seconds']:.0f} | {sw} | {sc} | {' | '.join(calibrated)} "
                    f"| {_score(r['psnr'], 2)} | {_score(r['ssim'], 4)} |")
    return "\n".join(rows)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


SPEEDUP_KEYS = ("speedup_flops", "speedup_calibrated", "speedup_to_baseline_psnr")
SPEEDUP_NOTE = ("Speedups: wall-clock and compute are measured (a shared machine moves them); calibrated = the "
                "runs' iterations x each step configuration's fastest time in one round-robin calibration pass "
                "(verdicts on speed use it); FLOP bound = the baseline's training FLOPs over the run's; to the "
                "baseline's PSNR = the calibrated time the baseline took to reach its final PSNR over the time the "
                "run took to reach it (never: it did not).")


def flags_text(entries: dict[str, dict]) -> list[str]:
    """The flags of the compared runs (:func:`mgvsr.costs.compare`), each once, as lines."""
    flags = list(dict.fromkeys(f for e in entries.values() for f in e.get("flags") or []))
    return [f"Flagged: {f}." for f in flags]


def stage_share_table(entries: dict[str, dict]) -> str:
    """Each run's per-stage share of its training time (compute + data), as a markdown table."""
    rows = ["| run | share of training time per stage (LR patch & frames: %) | device-seconds |", "|---|---|---|"]
    for name, r in entries.items():
        seconds = [c + d for c, d in zip(r["stage_compute_seconds"], r["stage_data_seconds"])]
        total = sum(seconds) or 1.0
        shares = " · ".join(f"{label} {100 * s / total:.0f}%" for label, s in zip(r["stages"], seconds))
        rows.append(f"| {name} | {shares} | {r['device_seconds']:.0f} |")
    return "\n".join(rows)


# ---- figures ----------------------------------------------------------------------------------


def save_figures(out: str | Path, evals: dict[str, list[dict]], plans: dict[str, dict],
                 bicubic_psnr: float | None = None, entries: dict[str, dict] | None = None) -> list[Path]:
    """``psnr_vs_time.png`` and ``plans.png`` into ``out`` (and ``stage_times.png`` when ``entries``
    are given); returns the paths written."""
    out = Path(out)
    written = []
    fig = plot_psnr_vs_time(evals, bicubic=bicubic_psnr)
    fig.savefig(out / "psnr_vs_time.png", dpi=110, bbox_inches="tight")
    written.append(out / "psnr_vs_time.png")
    fig = plot_plans({name: Plan.from_dict(plan) for name, plan in plans.items()})
    fig.savefig(out / "plans.png", dpi=110, bbox_inches="tight")
    written.append(out / "plans.png")
    if entries is not None:
        fig = plot_stage_times(entries)
        fig.savefig(out / "stage_times.png", dpi=110, bbox_inches="tight")
        written.append(out / "stage_times.png")
    return written


# ---- bicubic on the runs' clips ----------------------------------------------------------------


def _test_set(folder: Path) -> tuple | None:
    """``(dataset, root, channel)`` a run was evaluated on, from its spec and log; None if unknown."""
    spec = runs.read_spec(folder)
    if spec is None:
        return None
    channel = runs.read_run(folder).config.get("eval_channel")
    return spec.get("test_dataset") or spec["dataset"], spec.get("root"), channel


def bicubic_scores(folders: list[Path]) -> tuple[dict | None, str]:
    """Bicubic's ``{"psnr", "ssim"}`` on the clips every run was evaluated on, and a note saying what
    was scored (or why nothing was: runs scored on different clips, no spec.json, a missing root)."""
    sets = {_test_set(Path(f)) for f in folders}
    if None in sets:
        return None, "bicubic: not scored (a run folder has no spec.json saying what it was evaluated on)"
    if len(sets) > 1:
        return None, "bicubic: not scored (the runs were evaluated on different clips)"
    dataset, root, channel = sets.pop()
    try:
        test = open_dataset(dataset, root, split="test")
    except MgvsrError as exc:
        return None, f"bicubic: not scored ({exc})"
    scores = evaluate_bicubic(test, channel=channel, progress=False).to_dict()
    return ({"psnr": scores["mean"]["psnr"], "ssim": scores["mean"]["ssim"]},
            f"bicubic: scored on {test.name} ({len(test.clips())} clips), as the runs were")


# ---- the report --------------------------------------------------------------------------------


def make_report(folders: list[str | Path], names: list[str] | None = None, bicubic: bool = True,
                calibrate: bool = True, device: str = "auto") -> tuple[dict, dict]:
    """``(report, views)``: ``report.json``'s content for the runs in ``folders`` (speedups against
    the first; with ``calibrate``, also the FLOP bound, the calibrated speedup and the speedup to the
    first run's PSNR, with one calibration pass on ``device``: :func:`mgvsr.costs.compare_folders`) and
    each run's :class:`RunView` by name."""
    folders = [Path(f) for f in folders]
    for f in folders:
        if not (f / runs.LOG_FILE).is_file():
            raise runs.RunFolderError(f"{f} is not a run folder: no {runs.LOG_FILE} in it")
    names = names or run_names(folders)
    if len(set(names)) != len(names):
        raise MgvsrError(f"run names must differ, got {', '.join(names)}")
    views = {name: read_view(f) for name, f in zip(names, folders)}
    scores, note = bicubic_scores(folders) if bicubic else (None, "bicubic: not scored (--no-bicubic)")
    entries = {name: v.entry for name, v in views.items()}
    if calibrate and len(folders) > 1:
        compared = compare_folders(folders[0], dict(zip(names[1:], folders[1:])), device=device)
        for name, keys in compared.items():
            entries[name].update(keys)
    return {"reference": names[0], "runs": entries, "bicubic": scores, "bicubic_note": note}, views


def write_report(report: dict, views: dict[str, RunView], out: str | Path) -> Path:
    """``report.md``, ``report.json`` and the figures (:data:`FIGURES`) into ``out``; returns report.md's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    entries = report["runs"]
    bicubic = report["bicubic"]
    save_figures(out, {n: v.evals for n, v in views.items()}, {n: v.plan for n, v in views.items()},
                 bicubic_psnr=bicubic["psnr"] if bicubic else None, entries=entries)
    unfinished = [n for n, e in entries.items() if not e["finished"]]
    md = [
        f"# mgvsr report: {', '.join(entries)}",
        "",
        f"Speedups against {report['reference']}.  Wall-clock is training time (compute + waiting for data), "
        "without evaluations; compute excludes data loading, as the paper reports.  PSNR/SSIM: each run's "
        f"last evaluation.  {report['bicubic_note']}.",
        "",
        comparison_table(entries, bicubic, report["reference"]),
        "",
        SPEEDUP_NOTE,
        *flags_text(entries),
        "",
        *([f"Unfinished (still training, or stopped): {', '.join(unfinished)}: their numbers so far.", ""]
          if unfinished else []),
        "Per-stage share of each run's training time:",
        "",
        stage_share_table(entries),
        "",
        "![PSNR against training time](psnr_vs_time.png)",
        "",
        "![Shapes and learning rate over iterations](plans.png)",
        "",
        "![Seconds per stage](stage_times.png)",
        "",
        "Runs: " + "; ".join(f"{n} = {e['folder']} ({e['preset']})" for n, e in entries.items()),
    ]
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path
