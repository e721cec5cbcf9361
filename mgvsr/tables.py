"""A reproduced table: its rows (ours beside the paper's), one verdict rule, the markdown and the JSON.

:mod:`mgvsr.reproduce` trains (or finds) the runs and builds the :class:`Row` s; this module decides
what each row shows and renders it.  The verdict rule, written once (:data:`VERDICT_RULE`) and
printed under every table:

- **accuracy**: the mean PSNR of a row's seeds against its baseline's; "better" or "worse" when the
  difference of the means exceeds twice the pooled standard deviation of the two
  (``sqrt((sd_row^2 + sd_base^2) / 2)``), else "within the noise"; with a single seed on either side,
  "noise not measured";
- **speed**: the calibrated speedup (:mod:`mgvsr.costs`: every step configuration timed in one
  round-robin pass): "faster" above :data:`SPEED_MARGIN`, "slower" below its inverse, else "not
  faster"; the measured (wall-clock, compute) speedups are shown beside it;
- and the row against bicubic on the same clips.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mgvsr.errors import MgvsrError
from mgvsr.presets import BEYOND_PAPER, SCALES

SPEED_MARGIN = 1.05  # a calibrated speedup must exceed this to count as faster (its inverse: slower)
VERDICT_RULE = ("Verdict rule: PSNR is the mean of a row's seeds against its baseline's, 'better'/'worse' when the "
                "difference exceeds twice the pooled standard deviation sqrt((sd_row^2 + sd_base^2)/2), else 'within "
                f"the noise'; speed is the calibrated speedup, 'faster' above {SPEED_MARGIN:.2f}x, 'slower' below "
                f"1/{SPEED_MARGIN:.2f}, else 'not faster'.")


@dataclass
class Row:
    """One row of a reproduced table: the preset, the paper's numbers, ours, and how ours were computed.

    ``psnr``/``ssim``: the first seed's run; ``seeds``: the PSNR of every seed (the first included).
    Times are ``compute_seconds`` (training without data loading, the paper's measure) and
    ``device_seconds`` (the same times the devices).  ``speedup``: the baseline's compute seconds over
    this run's; ``speedup_device``: the same in device-seconds; ``paper_speedup_device``: the paper's
    wall-clock speedup turned into device-time with the paper's device counts; ``speedup_flops``,
    ``speedup_calibrated``, ``speedup_to_baseline_psnr`` and ``flags``: :func:`mgvsr.costs.compare`.
    ``setup``: the run's :meth:`~mgvsr.train.Trainer.setup`; ``spynet``: what its SpyNet started from,
    as its spec records it (``"none"``: opted out).
    """

    preset: str
    table: str | None
    row: str | None
    description: str
    paper: dict
    psnr: float | None
    ssim: float | None
    compute_seconds: float | None
    train_seconds: float | None
    iterations: int
    stages: list[str]
    batch: int
    speedup: float | None
    status: str
    folder: str
    baseline: str | None
    scale: str
    comparable: bool
    device_seconds: float | None = None
    speedup_device: float | None = None
    setup: dict | None = None
    paper_devices: dict | None = None
    baseline_paper_devices: dict | None = None
    paper_speedup_device: float | None = None
    spynet: str | None = None
    bicubic_psnr: float | None = None
    seeds: list[float] = field(default_factory=list)
    speedup_flops: float | None = None
    speedup_calibrated: float | None = None
    speedup_to_baseline_psnr: float | None = None
    flags: list[str] = field(default_factory=list)
    verdict: str | None = None

    @property
    def devices(self) -> int | None:
        return (self.setup or {}).get("world_size")

    @property
    def psnr_mean(self) -> float | None:
        return statistics.fmean(self.seeds) if self.seeds else self.psnr

    @property
    def psnr_sd(self) -> float | None:
        """The standard deviation of the seeds' PSNRs (n - 1); None with fewer than two."""
        return statistics.stdev(self.seeds) if len(self.seeds) > 1 else None

    @property
    def noise(self) -> dict | None:
        """The run-to-run noise of this row's PSNR: ``seeds``, their ``psnrs``, ``psnr_sd`` and ``band``, twice
        the standard deviation (the verdict's threshold against a baseline as noisy); None below two seeds."""
        if self.psnr_sd is None:
            return None
        return {"seeds": len(self.seeds), "psnrs": list(self.seeds), "psnr_sd": self.psnr_sd, "band": 2 * self.psnr_sd}

    def to_dict(self) -> dict:
        return {**self.__dict__, "psnr_mean": self.psnr_mean, "psnr_sd": self.psnr_sd}


def seeds_verdict(seeds: Sequence[float], base_seeds: Sequence[float]) -> str:
    """The accuracy half of :data:`VERDICT_RULE`: the PSNRs of a run's seeds against its baseline's."""
    gap = statistics.fmean(seeds) - statistics.fmean(base_seeds)
    if len(seeds) < 2 or len(base_seeds) < 2:
        return f"PSNR {gap:+.2f} dB (noise not measured)"
    noise = 2 * math.sqrt((statistics.stdev(seeds) ** 2 + statistics.stdev(base_seeds) ** 2) / 2)
    if abs(gap) <= noise:
        return f"PSNR {gap:+.2f} dB: within the noise (±{noise:.2f})"
    return f"PSNR {gap:+.2f} dB: {'better' if gap > 0 else 'worse'} beyond the noise (±{noise:.2f})"


def psnr_verdict(row: Row, base: Row) -> str:
    """:func:`seeds_verdict` of two rows."""
    return seeds_verdict(row.seeds or [row.psnr], base.seeds or [base.psnr])


def speed_verdict(row: Row) -> str | None:
    """The speed half of :data:`VERDICT_RULE` (None where the row was not calibrated)."""
    s = row.speedup_calibrated
    if s is None:
        return None
    if s > SPEED_MARGIN:
        return f"{s:.2f}x faster (calibrated)"
    if s < 1 / SPEED_MARGIN:
        return f"{1 / s:.2f}x slower (calibrated)"
    return f"not faster ({s:.2f}x calibrated)"


def verdict(row: Row, base: Row | None, bicubic: float | None) -> str | None:
    """What a row shows against its baseline (:data:`VERDICT_RULE`) and bicubic; a baseline's: bicubic only."""
    if row.psnr is None:
        return None
    if row.status == "other code":
        return "trained by other code than this checkout's: shown, not counted"
    parts = []
    if base is not None and base.psnr is not None:
        parts += [p for p in (speed_verdict(row), psnr_verdict(row, base)) if p]
    if bicubic is not None:
        parts.append(f"{row.psnr_mean - bicubic:+.2f} dB vs bicubic")
    return "; ".join(parts) or None


def add_verdicts(rows: list[Row], bicubic: float | None) -> list[Row]:
    """Fill each row's ``bicubic_psnr`` and ``verdict`` (against its baseline when it is among ``rows``)."""
    by_name = {r.preset: r for r in rows}
    for r in rows:
        r.bicubic_psnr = bicubic
        r.verdict = verdict(r, by_name.get(r.baseline) if r.baseline else None, bicubic)
    return rows


# ---- rendering ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _per_device(r: Row) -> str:
    """``"64 (8 x 8)"``: samples per device per step (micro-batches x their size), as trained."""
    setup = r.setup or {}
    if not setup.get("per_device_batch"):
        return "-"
    per, micro = setup["per_device_batch"][0], setup["micro_batch"][0]
    return str(per) if micro == per else f"{per} ({per // micro} x {micro})"


def _speedup_cell(r: Row, value: float | None) -> str:
    if r.baseline is None and r.compute_seconds is not None:
        return "1.00x"
    return fmt(value, 2, "x")


def _paper_device_speedup(r: Row) -> str:
    if r.paper_speedup_device is not None:
        return fmt(r.paper_speedup_device, 2, "x")
    return "1.00x" if r.baseline is None and r.paper.get("psnr") is not None else "-"


def _psnr_cell(r: Row) -> str:
    if r.psnr is None:
        return "-"
    if len(r.seeds) < 2:
        return f"{r.psnr:.2f}"
    return f"{r.psnr_mean:.2f} ± {r.psnr_sd:.2f} ({len(r.seeds)})"


def device_notes(rows: Sequence[Row]) -> list[str]:
    """What the rendered table says under itself about devices: which devices ran the rows, and for
    every row with a speedup whose device counts differ from the paper's, on which axis to compare."""
    notes = []
    names = sorted({(r.setup or {}).get("device_name") for r in rows if r.setup} - {None})
    if names:
        notes.append("Devices: " + "; ".join(names) + ".")
    by_name = {r.preset: r for r in rows}
    differ: dict[tuple, list[str]] = {}  # (ours, our baseline's, the paper's, its baseline's) -> rows
    for r in rows:
        base = by_name.get(r.baseline) if r.baseline else None
        if r.paper_devices is None or r.devices is None or base is None or base.devices is None:
            continue
        counts = (r.devices, base.devices, r.paper_devices["gpus"], (r.baseline_paper_devices or {}).get("gpus"))
        if counts[:2] != counts[2:]:
            differ.setdefault(counts, []).append(r.row or r.preset)
    if differ:
        groups = [f"{' '.join(labels)} (ours {a} against {b}, the paper's {c} against {d})"
                  for (a, b, c, d), labels in differ.items()]
        notes.append("The device counts differ from the paper's for " + "; ".join(groups) + ". The paper's "
                     "speedups are wall-clock with its device counts (a 4x minibatch ran on 4x the GPUs): "
                     "compare ours with the paper's on the device-time axis (wall-clock x devices), "
                     "not on wall-clock.")
    return notes


def render_table(rows: Sequence[Row], title: str | None = None) -> str:
    """The rows as a markdown table, ours beside the paper's, then each row's verdict, the rule, and notes
    on the scale and the devices.

    Columns: the paper's row label, the preset, its stages and minibatch as trained, the devices and
    samples per device (micro-batches) and precision of our run, PSNR (ours: the seeds' mean ± sd and
    their number / the paper's) and SSIM, the speedups (ours calibrated, its FLOP bound, to the
    baseline's PSNR, measured wall-clock and device-time / the paper's), compute seconds, how the run
    was obtained.  A row trained with ``--spynet none`` is marked with a dagger.
    """
    if not rows:
        raise MgvsrError("no rows to render")
    scale = rows[0].scale
    tables = sorted({r.table for r in rows if r.table})
    head = title or (f"mgvsr's table {', '.join(tables)} (beyond the paper) at scale {scale!r}"
                     if set(tables) <= set(BEYOND_PAPER) else f"Table {', '.join(tables)} of the paper at scale {scale!r}")
    lines = [f"**{head}**", "",
             "| row | preset | stages (trained) | batch | devices | per device | precision | PSNR ours | PSNR paper "
             "| SSIM ours | SSIM paper | speedup ours (calibrated) | FLOP bound | to the baseline's PSNR "
             "| speedup ours (measured) | speedup paper | device-time speedup ours | device-time speedup paper "
             "| paper's devices | compute (s) | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = (r.row if r.row else "(baseline)") + (" †" if r.spynet == "none" else "")
        paper_devices = "-" if r.paper_devices is None else f"{r.paper_devices['gpus']} {r.paper_devices['kind']}"
        lines.append(
            f"| {label} | {r.preset} | {' '.join(r.stages)} | {r.batch} | {fmt(r.devices, 0)} | {_per_device(r)} "
            f"| {(r.setup or {}).get('precision', '-')} | {_psnr_cell(r)} | {fmt(r.paper.get('psnr'), 2)} "
            f"| {fmt(r.ssim, 4)} | {fmt(r.paper.get('ssim'), 4)} | {_speedup_cell(r, r.speedup_calibrated)} "
            f"| {_speedup_cell(r, r.speedup_flops)} | {_speedup_cell(r, r.speedup_to_baseline_psnr)} "
            f"| {_speedup_cell(r, r.speedup)} | {fmt(r.paper.get('speedup'), 1, 'x')} "
            f"| {_speedup_cell(r, r.speedup_device)} | {_paper_device_speedup(r)} | {paper_devices} "
            f"| {fmt(r.compute_seconds, 1)} | {r.status} |")
    verdicts = [r for r in rows if r.verdict]
    if verdicts:
        lines += ["", "| row | preset | verdict |", "|---|---|---|"]
        lines += [f"| {r.row if r.row else '(baseline)'} | {r.preset} | {r.verdict} |" for r in verdicts]
    lines += ["", VERDICT_RULE]
    lines += [f"Flagged: {f}." for f in dict.fromkeys(f for r in rows for f in r.flags)]
    lines += _notes(rows)
    return "\n".join(lines)


def _notes(rows: Sequence[Row]) -> list[str]:
    scale = rows[0].scale
    lines = []
    if rows[0].bicubic_psnr is not None:
        lines.append(f"Bicubic on the same test clips: {rows[0].bicubic_psnr:.2f} dB.")
    if not rows[0].comparable:
        lines.append(f"Scale {scale!r}: {SCALES[scale].description if scale in SCALES else scale}. "
                     "These numbers exercise the pipeline; they are NOT comparable with the paper's "
                     "(other model, other data, a few iterations).")
    else:
        lines.append("Ours: PSNR/SSIM on the preset's test set under its protocol.")
    lines.append("Speedups: calibrated = the baseline's iterations x calibrated step times over the run's (a shared "
                 "machine cannot move it); FLOP bound = the baseline's training FLOPs over the run's; to the "
                 "baseline's PSNR = the calibrated time the baseline took to reach its final PSNR over the run's "
                 "('-': never); measured = the baseline's compute seconds over the run's; device-time = the same in "
                 "device-seconds (compute seconds x devices). The paper's device-time speedups are its wall-clock "
                 "speedups times its baseline's GPUs over the run's (4 samples per V100, Table 6).")
    lines += device_notes(rows)
    opted_out = [r.row or r.preset for r in rows if r.spynet == "none"]
    if opted_out:
        lines.append(f"† {', '.join(opted_out)}: trained with --spynet none, SpyNet from random weights instead "
                     "of BasicVSR's pretrained flow; not the paper's recipe.")
    missing = [r.preset for r in rows if r.psnr is None]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)}.")
    return lines


def write_results(rows: Sequence[Row], out: str | Path, table: str | int) -> tuple[Path, Path]:
    """``out/table<N>-<scale>.md`` (the rendered table) and ``.json`` (the rows)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"table{table}-{rows[0].scale}"
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    md.write_text(render_table(rows) + "\n")
    js.write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    return md, js
