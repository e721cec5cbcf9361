"""mgvsr.tutorial.eq1_restarts (notebook 4's short training with and without restarts) and mgvsr.tutorial.series
(where the notebooks share their runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mgvsr.errors import MgvsrError
from mgvsr.schedule import cosine, goyal_warmup, max_lr_gap, multigrid, one_cosine_over_stages
from mgvsr.tutorial.eq1_restarts import SETTINGS, compare_restarts, restart_plans, restarts_text
from mgvsr.tutorial.series import demo_dir, reproduce_dir, runs_dir
from mgvsr.tutorial.viz import plot_restarts


def paper_plan(**kw):
    return multigrid(75_000, 64, 15, 64, 8e-4, **kw)


def test_one_cosine_keeps_the_shapes_and_follows_the_cosine():
    plan = paper_plan()
    flat = one_cosine_over_stages(plan)
    assert [(s.label, s.iterations, s.batch) for s in flat] == [(s.label, s.iterations, s.batch) for s in plan]
    eta, total = 8e-4, plan.total_iterations
    first = plan.stages[0]
    for it in (0, 5_000, first.end - 1):  # the first stage is the one cosine exactly
        assert flat.lr(it) == pytest.approx(cosine(eta, plan.eta_min, it, total), rel=1e-12)
    for s in plan.stages:  # every stage starts where the one cosine is
        assert flat.lr(s.start) == pytest.approx(cosine(eta, plan.eta_min, s.start, total), rel=1e-9)
    assert flat.lr(total) == pytest.approx(plan.eta_min)
    lrs = flat.lrs(np.arange(total + 1))
    assert (np.diff(lrs) <= 1e-12).all()  # no restart: never climbs
    assert max_lr_gap(plan) < 0.07  # within 7% of the peak LR everywhere
    assert max_lr_gap(multigrid(600, 32, 8, 8, 2e-3, spatial=(16, 32), temporal=(4, 6, 8))) < 0.07


def test_one_cosine_keeps_the_warmup():
    plan = paper_plan(warmup=goyal_warmup(4))
    flat = one_cosine_over_stages(plan)
    assert flat.warmup == plan.warmup
    assert flat.lr(0) == pytest.approx(plan.lr(0))
    assert max_lr_gap(plan) < 0.07


def test_restart_plans_differ_only_in_the_lr():
    plans = restart_plans(SETTINGS["smoke"])
    eq1, flat = plans.values()
    assert [s.label for s in eq1] == [s.label for s in flat] == ["8&4", "8&6", "8&8", "16&4", "16&6", "16&8"]
    assert [s.lr for s in eq1] == [2e-3] * 6
    assert eq1.samples == flat.samples
    with pytest.raises(MgvsrError, match="unknown scale"):
        compare_restarts("unused", scale="huge")


def test_tutorial_folders(tmp_path: Path):
    nb = tmp_path / "artifacts" / "01_overview"
    assert runs_dir(str(nb)) == tmp_path / "artifacts" / "runs"
    assert demo_dir("smoke", str(nb)) == tmp_path / "artifacts" / "runs" / "demo-smoke"
    assert demo_dir("paper", str(nb)).name == "demo" and reproduce_dir("smoke", nb).name == "reproduce-smoke"
    assert runs_dir("").name == "tutorial"
    with pytest.raises(MgvsrError, match="unknown scale"):
        demo_dir("big", str(nb))


@pytest.mark.slow
def test_compare_restarts_trains_both_and_reuses(tmp_path: Path, monkeypatch):
    from mgvsr.tutorial import eq1_restarts as restarts

    from mgvsr.presets import SCALES, Scale

    tiny = restarts.RestartSettings("basicvsr_cpu", (4, 8), (2, 3), iterations=4, batch=1, lr=2e-3, evals=1)
    monkeypatch.setitem(SCALES, "tiny", Scale("tiny", "tests"))  # a scale of the one table, for this test
    monkeypatch.setitem(restarts.SETTINGS, "tiny", tiny)
    results = compare_restarts(tmp_path, scale="tiny", device="cpu", progress=False)
    assert list(results) == ["Eq. 1 (restarts)", "one cosine"]
    for r in results.values():
        assert [e["it"] for e in r["evals"]] == [4] and r["summary"]["psnr"] == r["evals"][-1]["psnr"]
    log = (tmp_path / "eq1" / "log.jsonl").read_text()
    again = compare_restarts(tmp_path, scale="tiny", device="cpu", progress=False)
    assert (tmp_path / "eq1" / "log.jsonl").read_text() == log
    assert [e["psnr"] for e in again["one cosine"]["evals"]] == [e["psnr"] for e in results["one cosine"]["evals"]]
    text = restarts_text(results)
    assert text.splitlines()[0].split()[0] == "iteration" and len(text.splitlines()) == 2
    assert len(plot_restarts(results, bicubic=24.0).axes) == 2
