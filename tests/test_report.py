"""``mgvsr report``: run folders, finished or stopped, become the demo's comparison without retraining."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch.nn as nn

from mgvsr.cli import main
from mgvsr.errors import Preempted
from mgvsr.presets import get_preset
from mgvsr.launch import run_preset
from mgvsr.options import RunOptions
from mgvsr.runs import read_log

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


def quick(name: str):
    return get_preset(name).shrunk(iterations=6, batch=2, patch_div=2)


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory):
    """A finished baseline, a finished ours, and an ours stopped by SIGUSR1 in its 4th step."""
    root = tmp_path_factory.mktemp("runs")
    options = RunOptions(device="cpu", progress=False)
    run_preset(quick("demo/basicvsr/baseline"), root / "baseline", options)  # evaluated at the end
    run_preset(quick("demo/basicvsr/ours"), root / "ours", options)

    steps = []

    def signal_in_the_fourth_step(module, args):  # on the model run_preset builds (its class is BasicVSR)
        if type(module).__name__ == "BasicVSR" and module.training:
            steps.append(1)
            if len(steps) == 4:
                os.kill(os.getpid(), signal.SIGUSR1)

    handle = nn.modules.module.register_module_forward_pre_hook(signal_in_the_fourth_step)
    try:
        with pytest.raises(Preempted):
            run_preset(quick("demo/basicvsr/ours"), root / "stopped", options.replace(eval_every=3))
    finally:
        handle.remove()
    return root


def test_report_compares_finished_and_stopped_runs(run_folders, tmp_path, capsys):
    out = tmp_path / "report"
    runs_ = [run_folders / name for name in ("baseline", "ours", "stopped")]
    assert main(["report", *map(str, runs_), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("report.md", "report.json", "psnr_vs_time.png", "plans.png", "stage_times.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["reference"] == "baseline" and list(report["runs"]) == ["baseline", "ours", "stopped"]
    for name in ("baseline", "ours"):
        end = read_log(run_folders / name)[-1]
        entry = report["runs"][name]
        assert entry["finished"] and entry["it"] == entry["iterations"] == end["it"]
        assert (entry["psnr"], entry["ssim"]) == (end["psnr"], end["ssim"])
        assert entry["compute_seconds"] == end["compute_seconds"]
        assert entry["wall_seconds"] == pytest.approx(end["train_seconds"])
        assert entry["stage_compute_seconds"] == end["stage_compute_seconds"]
    stopped = report["runs"]["stopped"]
    steps = [r for r in read_log(run_folders / "stopped") if r["event"] == "step"]
    assert not stopped["finished"] and stopped["it"] == len(steps) == 4
    assert stopped["compute_seconds"] == pytest.approx(sum(s["compute"] for s in steps))
    assert stopped["psnr"] == [r for r in read_log(run_folders / "stopped") if r["event"] == "eval"][-1]["psnr"]
    assert report["bicubic"]["psnr"] == pytest.approx(24.91, abs=0.01)  # the sample test clips, Y channel

    base, ours = report["runs"]["baseline"], report["runs"]["ours"]
    speedup = f"{base['wall_seconds'] / ours['wall_seconds']:.2f}x"
    assert f"| ours | 2 | {' / '.join(ours['stages'])} | 6 | 12 |" in printed and speedup in printed
    assert "| stopped | 2 |" in printed and "| 4 of 6 |" in printed
    assert "| bicubic | - |" in printed
    md = (out / "report.md").read_text()
    assert "Unfinished (still training, or stopped): stopped" in md and "![Seconds per stage](stage_times.png)" in md


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert f"{tmp_path} is not a run folder: no log.jsonl in it" in capsys.readouterr().err
