"""What reproduced: every claim of the paper, decided from the finished runs of its tables.

One row per claim: what the paper shows (its rows and numbers), what our runs show (their rows, the
calibrated speedups and the PSNR differences against the measured noise), and a verdict:

- **reproduced**: our runs show what the paper claims (faster where it claims faster, by the calibrated
  measure; the PSNR not worse, or better, as it claims, beyond the noise of the seeds);
- **not shown at this scale**: the runs cannot decide it here (a difference inside the noise, a claim
  about GPU parallelism on one device, a dataset that the scale replaces), with the measured reason;
- **contradicted**: our runs show the opposite beyond the noise.

``mgvsr reproduce --summary`` prints it (:func:`what_reproduced` over the rows of
:func:`mgvsr.reproduce.reproduce_tables`); notebook 7 stores it under "What reproduced".  Generated,
never written by hand: a claim with a missing run says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mgvsr.tables import SPEED_MARGIN, Row

REPRODUCED, NOT_SHOWN, CONTRADICTED = "reproduced", "not shown at this scale", "contradicted"


@dataclass(frozen=True)
class Claim:
    """One claim: what the paper shows, what ours shows, the verdict and why."""

    claim: str
    paper: str
    ours: str
    verdict: str
    why: str


def compare_psnr(a: Row, b: Row) -> tuple[str, float, float | None]:
    """``(outcome, gap, noise)`` of ``a`` against ``b``: ``"better"``, ``"worse"`` or ``"same"`` by the verdict
    rule of :mod:`mgvsr.tables` (twice the pooled standard deviation of their seeds; ``"unknown"`` below two seeds)."""
    gap = a.psnr_mean - b.psnr_mean
    if a.psnr_sd is None or b.psnr_sd is None:
        return "unknown", gap, None
    noise = 2 * math.sqrt((a.psnr_sd ** 2 + b.psnr_sd ** 2) / 2)
    return ("same" if abs(gap) <= noise else "better" if gap > 0 else "worse"), gap, noise


def _psnr_text(a: Row, b: Row) -> str:
    outcome, gap, noise = compare_psnr(a, b)
    label = f"{_label(a)} {gap:+.2f} dB from {_label(b)}"
    return label + ("" if noise is None else f" (noise ±{noise:.2f})")


def _label(r: Row) -> str:
    return r.row if r.row else r.preset.rsplit("/", 1)[-1]


def _speed(a: Row, b: Row | None = None) -> float | None:
    """``a``'s calibrated speedup over its baseline, or over ``b``'s (both against the same baseline)."""
    if a.speedup_calibrated is None or (b is not None and b.speedup_calibrated is None):
        return None
    return a.speedup_calibrated / (1.0 if b is None else b.speedup_calibrated)


def _missing(rows: dict[str, Row], names) -> list[str]:
    """The runs of ``names`` not finished by this code (missing, unfinished, or trained by other code)."""
    return list(dict.fromkeys(n for n in names if n not in rows or rows[n].psnr is None or rows[n].status == "other code"))


def faster_at_equal_psnr(claim: str, paper: str, rows: dict[str, Row], run: str, than: str, base: str) -> Claim:
    """``run`` faster (calibrated) than ``than`` and its PSNR not worse than ``base``'s."""
    missing = _missing(rows, (run, than, base))
    if missing:
        return Claim(claim, paper, "-", NOT_SHOWN, f"not run: {', '.join(missing)}")
    r, t, b = rows[run], rows[than], rows[base]
    speed = _speed(r, None if than == base else t)
    outcome, _, _ = compare_psnr(r, b)
    ours = (f"{_label(r)} {'-' if speed is None else f'{speed:.2f}x'} the speed of {_label(t)} (calibrated); "
            + _psnr_text(r, b))
    if speed is None or outcome == "unknown":
        return Claim(claim, paper, ours, NOT_SHOWN, "speed not calibrated or noise not measured")
    if outcome == "worse":
        return Claim(claim, paper, ours, CONTRADICTED, "the PSNR is worse beyond the noise")
    if speed < SPEED_MARGIN:
        return Claim(claim, paper, ours, CONTRADICTED if speed < 1 / SPEED_MARGIN else NOT_SHOWN,
                     f"not faster by the calibrated measure ({speed:.2f}x)")
    return Claim(claim, paper, ours, REPRODUCED, "faster by the calibrated measure, the PSNR within the noise or better")


def psnr_order(claim: str, paper: str, rows: dict[str, Row], pairs, expect: str) -> Claim:
    """Each ``(a, b)`` of ``pairs``: ``a`` ``expect`` s (``"better"``, or ``"same"``: not worse) than ``b``."""
    names = [n for pair in pairs for n in pair]
    missing = _missing(rows, names)
    if missing:
        return Claim(claim, paper, "-", NOT_SHOWN, f"not run: {', '.join(missing)}")
    found = [compare_psnr(rows[a], rows[b])[0] for a, b in pairs]
    ours = "; ".join(_psnr_text(rows[a], rows[b]) for a, b in pairs)
    if "unknown" in found:
        return Claim(claim, paper, ours, NOT_SHOWN, "the noise was not measured (one seed)")
    if "worse" in found:
        return Claim(claim, paper, ours, CONTRADICTED, "worse beyond the noise")
    if expect == "better" and any(f == "same" for f in found):
        return Claim(claim, paper, ours, NOT_SHOWN, "the difference is inside the noise of the seeds")
    return Claim(claim, paper, ours, REPRODUCED, "better beyond the noise" if expect == "better" else
                 "within the noise or better")


def _paper(rows: dict[str, Row], names) -> str:
    parts = []
    for n in names:
        r = rows.get(n)
        if r is None:
            continue
        p = r.paper or {}
        bits = [f"{p['psnr']:.2f} dB" if p.get("psnr") is not None else None,
                f"{p['speedup']}x" if p.get("speedup") is not None else None]
        parts.append(f"{_label(r)} " + ", ".join(b for b in bits if b))
    return "; ".join(parts)


M, B = "table1/basicvsr_m/", "table1/basicvsr/"


def what_reproduced(rows: dict[str, Row], comparable_datasets: bool = True) -> list[Claim]:
    """Every claim of the paper decided from ``rows`` (``{preset name: Row}``, the union of the tables'
    rows); ``comparable_datasets``: False where the scale trains on other data than the paper's (Table 3's
    Vimeo-90K is then not shown)."""
    def faster(claim, run, than, base, names):
        return faster_at_equal_psnr(claim, _paper(rows, names), rows, run, than, base)

    claims = [
        faster("multigrid with a large minibatch is faster at equal PSNR (Table 1, BasicVSR-M)", M + "ours",
               M + "baseline", M + "baseline", (M + "baseline", M + "ours")),
        faster("multigrid with a large minibatch is faster at equal PSNR (Table 1, BasicVSR)", B + "ours",
               B + "baseline", B + "baseline", (B + "baseline", B + "ours")),
        psnr_order("a large minibatch with the linear scaling rule and warmup keeps the PSNR (Table 1)",
                   _paper(rows, (M + "large-batch", B + "large-batch")), rows,
                   [(M + "large-batch", M + "baseline"), (B + "large-batch", B + "baseline")], "same"),
        faster("the spatial cycle speeds up large-minibatch training at equal PSNR (Table 1, BasicVSR-M)",
               M + "multi-s", M + "large-batch", M + "baseline", (M + "large-batch", M + "multi-s")),
        faster("the temporal cycle speeds up large-minibatch training at equal PSNR (Table 1, BasicVSR-M)",
               M + "multi-t", M + "large-batch", M + "baseline", (M + "large-batch", M + "multi-t")),
        faster("the spatial cycle speeds up large-minibatch training at equal PSNR (Table 1, BasicVSR)",
               B + "multi-s", B + "large-batch", B + "baseline", (B + "large-batch", B + "multi-s")),
        faster("the temporal cycle speeds up large-minibatch training at equal PSNR (Table 1, BasicVSR)",
               B + "multi-t", B + "large-batch", B + "baseline", (B + "large-batch", B + "multi-t")),
        faster("EDVR-M: the spatial cycle and a large minibatch are faster at equal PSNR (Table 2)",
               "table2/edvr_m/ours", "table2/edvr_m/baseline", "table2/edvr_m/baseline",
               ("table2/edvr_m/baseline", "table2/edvr_m/ours")),
        _vimeo(rows, comparable_datasets),
        psnr_order("scaling the LR with the minibatch matters (Table 4)",
                   _paper(rows, ("table4/lr-scaling", "table4/no-lr-scaling")), rows,
                   [("table4/lr-scaling", "table4/no-lr-scaling")], "better"),
        psnr_order("a warmup helps large-minibatch training (Table 5: linear against none)",
                   _paper(rows, ("table5/linear-warmup", "table5/no-warmup")), rows,
                   [("table5/linear-warmup", "table5/no-warmup")], "better"),
        psnr_order("minibatches of 32, 48 and 64 keep the PSNR with the scaling rule (Table 6)",
                   _paper(rows, ("table6/batch-32", "table6/batch-48", "table6/batch-64")), rows,
                   [(f"table6/batch-{b}", M + "baseline") for b in (32, 48, 64)], "same"),
        _more_stages(rows),
        psnr_order("hierarchical cycles beat synchronous ones (Table 8)",
                   _paper(rows, ("table8/hierarchical-4", "table8/synchronous-2", "table8/hierarchical-6",
                                 "table8/synchronous-3")), rows,
                   [("table8/hierarchical-4", "table8/synchronous-2"),
                    ("table8/hierarchical-6", "table8/synchronous-3")], "better"),
        psnr_order("an extra 72&17 stage raises the PSNR (Table 9)",
                   _paper(rows, ("table9/extra-72-17", "table9/ours")), rows,
                   [("table9/extra-72-17", "table9/ours")], "better"),
        psnr_order("Eq. 1's restarts train the multigrid better than one cosine (Eq. 1)",
                   "Sec. 3.3: the LR restarts at every stage change", rows, [(M + "ours", "eq1/one-cosine")], "better"),
        psnr_order("small shapes cost accuracy (Fig. 2: half the patch, half the frames)",
                   "Fig. 2: PSNR falls with the patch size and the clip length", rows,
                   [(M + "baseline", "fig2/half-patch"), (M + "baseline", "fig2/half-frames")], "better"),
    ]
    return claims


def _vimeo(rows: dict[str, Row], comparable_datasets: bool) -> Claim:
    claim = "multigrid is faster at equal PSNR on Vimeo-90K (Table 3, BasicVSR and EDVR-M)"
    names = ("table3/basicvsr/ours", "table3/basicvsr/baseline-b32", "table3/edvr_m/ours", "table3/edvr_m/baseline")
    found = faster_at_equal_psnr(claim, _paper(rows, names), rows, names[0], names[1], names[1])
    edvr = faster_at_equal_psnr(claim, found.paper, rows, names[2], names[3], names[3])
    ours = f"BasicVSR: {found.ours}; EDVR-M: {edvr.ours}"
    if not comparable_datasets:
        return Claim(claim, found.paper, ours, NOT_SHOWN,
                     "this scale trains and tests Table 3's recipes on the sample clips, not on Vimeo-90K")
    verdicts = {found.verdict, edvr.verdict}
    verdict = CONTRADICTED if CONTRADICTED in verdicts else REPRODUCED if verdicts == {REPRODUCED} else NOT_SHOWN
    return Claim(claim, found.paper, ours, verdict, f"BasicVSR: {found.why}; EDVR-M: {edvr.why}")


def _more_stages(rows: dict[str, Row]) -> Claim:
    claim = "more stages in a cycle keep the PSNR and add speed (Table 7)"
    groups = [["table7/spatial-32-64", "table7/spatial-32-48-64", "table7/spatial-32-40-48-64"],
              ["table7/temporal-7-15", "table7/temporal-7-11-15", "table7/temporal-7-9-11-15"]]
    paper = _paper(rows, [n for g in groups for n in g])
    found = psnr_order(claim, paper, rows, [(n, g[0]) for g in groups for n in g[1:]], "same")
    if found.verdict != REPRODUCED:
        return found
    speeds = [[_speed(rows[n]) for n in g] for g in groups]
    text = found.ours + "; calibrated speedups " + ", ".join("/".join("-" if s is None else f"{s:.2f}x" for s in g)
                                                             for g in speeds)
    if any(s is None for g in speeds for s in g):
        return Claim(claim, paper, text, NOT_SHOWN, "speed not calibrated")
    if all(g[-1] >= g[0] * SPEED_MARGIN for g in speeds):
        return Claim(claim, paper, text, REPRODUCED, "the PSNR within the noise; more stages faster")
    return Claim(claim, paper, text, NOT_SHOWN, "the PSNR within the noise; more stages not measurably faster")


def render_claims(claims: list[Claim], scale: str) -> str:
    """The claims as a markdown table, with the counts of each verdict."""
    lines = [f"**What reproduced at scale {scale!r}**", "", "| claim of the paper | the paper | ours | verdict | why |",
             "|---|---|---|---|---|"]
    lines += [f"| {c.claim} | {c.paper} | {c.ours} | **{c.verdict}** | {c.why} |" for c in claims]
    counts = {v: sum(c.verdict == v for c in claims) for v in (REPRODUCED, NOT_SHOWN, CONTRADICTED)}
    lines += ["", f"{counts[REPRODUCED]} reproduced, {counts[NOT_SHOWN]} not shown at this scale, "
                  f"{counts[CONTRADICTED]} contradicted, of {len(claims)} claims."]
    return "\n".join(lines)
