"""The run folder rule (mgvsr.runs) and the one transformation of a preset (Preset.shrunk / at_scale / on):
what a run folder records is what was trained, and `mgvsr plan` prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgvsr import runs
from mgvsr.cli import main
from mgvsr.errors import MgvsrError
from mgvsr.options import TrainConfig
from mgvsr.presets import get_preset, scaled_span
from mgvsr.schedule import shrink


def test_shrunk_scales_the_plan_and_the_warm_start_once():
    preset = get_preset("table1/basicvsr_m/ours")  # 75k iterations, SpyNet frozen 1,250
    small = preset.shrunk(iterations=750, batch=4, patch_div=4, lr_mult=10.0)
    assert small.plan == shrink(preset.plan, iterations=750, batch=4, patch_div=4, lr_mult=10.0)
    assert small.plan.total_iterations == 750 and {s.batch for s in small.plan.stages} == {4}
    assert [s.patch for s in small.plan.stages] == [8, 8, 8, 16, 16, 16]
    assert small.plan.stages[0].lr == pytest.approx(8e-3)
    assert small.plan.warmup.iterations == 50  # 5k of 75k
    assert small.flow_frozen_iters == 12  # 1,250 x 750 / 75k, rounded
    assert preset.shrunk() is preset
    assert scaled_span(0, 0.5) == 0 and scaled_span(5000, 1e-6) == 1  # a warm start never vanishes


def test_at_scale_substitutes_model_and_data_and_shrinks():
    ci = get_preset("table2/edvr_m/ours").at_scale("smoke")
    assert (ci.model, ci.dataset, ci.test_dataset) == ("edvr_cpu", "sample", None)
    assert ci.fusion_only_iters == scaled_span(2500, ci.plan.total_iterations / 300_000)
    assert get_preset("table2/edvr_m/ours").at_scale("paper") is get_preset("table2/edvr_m/ours")


def _plan_json(argv, capsys) -> dict:
    assert main(["plan", *argv, "--json", "--no-figure"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_prints_the_plan_of_an_overridden_run(capsys):
    args = ["table1/basicvsr_m/ours", "--iterations", "24", "--batch", "2", "--patch-div", "4", "--model",
            "basicvsr_cpu", "--dataset", "sample"]
    printed = _plan_json(args, capsys)
    want = get_preset("table1/basicvsr_m/ours").on(model="basicvsr_cpu", dataset="sample").shrunk(
        iterations=24, batch=2, patch_div=4)
    assert printed["stages"] == [s.to_dict() for s in want.plan.stages]
    assert (printed["model"], printed["dataset"], printed["total_iterations"]) == ("basicvsr_cpu", "sample", 24)
    scaled = _plan_json(["table1/basicvsr_m/ours", "--scale", "smoke"], capsys)
    assert scaled["stages"] == [s.to_dict() for s in get_preset("table1/basicvsr_m/ours").at_scale("smoke").plan.stages]


def _spec(preset_name="demo/basicvsr/baseline", **kw):
    preset = get_preset(preset_name).shrunk(iterations=kw.pop("iterations", 12))
    return runs.run_spec(preset, TrainConfig(**kw), device_type="cpu")


def test_the_rule_new_unfinished_finished_refused(tmp_path: Path):
    parent, tmp_path = tmp_path, tmp_path / "run"  # find_finished searches only this test's folder
    spec = _spec()
    assert runs.check_folder(tmp_path / "none", spec) == "new"
    runs.write_spec(tmp_path, spec)
    assert runs.check_folder(tmp_path, spec) == "unfinished"
    (tmp_path / runs.LOG_FILE).write_text(json.dumps({"event": "start", "it": 0, "plan": {}}) + "\n"
                                          + json.dumps({"event": "end", "it": 12, "psnr": 25.0}) + "\n")
    (tmp_path / runs.FINAL).write_bytes(b"weights")
    assert runs.check_folder(tmp_path, spec) == "finished"
    assert runs.finished_summary(tmp_path)["psnr"] == 25.0
    renamed = dict(spec, preset="another/name")  # the same training under another name
    assert runs.check_folder(tmp_path, renamed) == "finished" and runs.find_finished(renamed, parent) == tmp_path
    with pytest.raises(runs.RunFolderError, match="holds another run of demo/basicvsr/baseline .differs in plan"):
        runs.check_folder(tmp_path, _spec(iterations=16))
    with pytest.raises(runs.RunFolderError, match="differs in seed"):
        runs.check_folder(tmp_path, _spec(seed=1))


def test_a_run_without_a_spec_is_refused(tmp_path: Path):
    (tmp_path / runs.LOG_FILE).write_text("")
    with pytest.raises(runs.RunFolderError, match="without spec.json"):
        runs.check_folder(tmp_path, _spec())
    (tmp_path / runs.SPEC_FILE).write_text("{not json")
    with pytest.raises(MgvsrError, match="not valid JSON"):
        runs.check_folder(tmp_path, _spec())


def test_train_records_the_spec_and_refuses_another_run(tmp_path: Path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "demo/basicvsr/baseline", "--iterations", "2", "--batch", "1", "--patch-div", "4",
            "--out", str(out), "--device", "cpu", "--workers", "0", "--no-progress"]
    assert main(argv) == 0
    spec = runs.read_spec(out)
    assert spec["plan"]["total_iterations"] == 2 and spec["plan"]["stages"][0]["patch"] == 8
    assert runs.finished_summary(out)["it"] == 2
    log = (out / runs.LOG_FILE).read_text()
    capsys.readouterr()
    assert main(argv) == 0 and "already holds this run" in capsys.readouterr().out
    assert (out / runs.LOG_FILE).read_text() == log  # nothing retrained
    assert main(argv[:4] + ["3"] + argv[5:]) == 2  # 3 iterations: another run, refused
    assert "holds another run of demo/basicvsr/baseline (differs in" in capsys.readouterr().err
    assert (out / runs.LOG_FILE).read_text() == log  # nothing overwritten


def test_a_non_default_charbonnier_eps_is_part_of_the_spec():
    preset = get_preset("demo/basicvsr/baseline")
    default = runs.run_spec(preset, TrainConfig(), device_type="cpu")
    assert "loss_eps" not in default  # BasicSR's 1e-12: specs written before it was a setting still match
    other = runs.run_spec(preset, TrainConfig(loss_eps=1e-3), device_type="cpu")
    assert other["loss_eps"] == 1e-3 and not runs.same_training(default, other)
