"""`mgvsr plan`: the table, --json, --list, errors, the figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mgvsr.cli import main
from mgvsr.presets import PRESETS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_json_output(capsys):
    assert main(["plan", "table1/basicvsr_m/ours", "--json", "--lr-at", "0,5000,12500,37499,75000"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["preset"] == "table1/basicvsr_m/ours"
    assert data["total_iterations"] == 75_000
    assert [(s["iterations"], s["patch"], s["frames"], s["batch"]) for s in data["stages"]] == [
        (12_500, 32, 7, 64), (12_500, 32, 11, 64), (12_500, 32, 15, 64),
        (12_500, 64, 7, 64), (12_500, 64, 11, 64), (12_500, 64, 15, 64)]
    assert all(s["lr"] == pytest.approx(8e-4) for s in data["stages"])
    lr = data["lr_at"]
    assert set(lr) == {"0", "5000", "12500", "37499", "75000"}
    assert lr["0"] == pytest.approx(2e-4)  # linear warmup starts at 8e-4 / 4
    # it = 5000: warmup over; cosine of D = 75k at t = 5000: 1e-7 + (8e-4 - 1e-7) * 0.5 * (1 + cos(pi / 15))
    assert lr["5000"] == pytest.approx(1e-7 + (8e-4 - 1e-7) * 0.5 * (1 + 0.9781476007338057), rel=1e-12)
    assert lr["12500"] == pytest.approx(8e-4)  # restart
    assert lr["75000"] == pytest.approx(1e-7)
    assert lr["37499"] < lr["12500"]


def test_json_writes_no_figure_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "table2/edvr_m/ours", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["lr"] for s in data["stages"]] == [pytest.approx(2e-4), pytest.approx(8e-4)]
    assert data["lr_at"] == {}
    assert list(tmp_path.iterdir()) == []


def test_table_and_default_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "table9/extra-72-17"]) == 0
    out = capsys.readouterr().out
    assert "72 (288)" in out and "95,000" in out and "30.98" in out
    figure = tmp_path / "plan-table9-extra-72-17.png"
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    from matplotlib.image import imread

    height, width = imread(figure).shape[:2]
    assert height > 300 and width > 600


def test_figure_path_and_no_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "sub.png"
    assert main(["plan", "table1/basicvsr_m/baseline", "--figure", str(target)]) == 0
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert main(["plan", "table1/basicvsr_m/multi-s", "--no-figure"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.png"]
    assert main(["plan", "table1/basicvsr_m/multi-s", "--figure", str(tmp_path / "missing" / "x.png")]) == 2
    assert "cannot write the figure" in capsys.readouterr().err


def test_list(capsys):
    assert main(["plan", "--list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1 + len(PRESETS)
    row = next(line for line in lines if line.startswith("table2/edvr_m/ours "))
    assert "edvr_m" in row and "reds" in row and "2 ④" in row


def test_errors_exit_2(capsys):
    assert main(["plan", "table1/basicvsr_m/our"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'table1/basicvsr_m/our'" in err and "table1/basicvsr_m/ours" in err
    assert main(["plan", "table1/basicvsr_m/ours", "--json", "--lr-at", "0,x"]) == 2
    assert "'x'" in capsys.readouterr().err
    assert main(["plan", "table1/basicvsr_m/ours", "--json", "--lr-at", "75001"]) == 2
    assert "iteration 75001 is outside this plan's 0..75000" in capsys.readouterr().err
    assert main(["plan"]) == 2
    assert "--list" in capsys.readouterr().err


def test_command_line_is_torch_free_and_exits_2():
    code = ("import sys; from mgvsr.cli import main; rc = main(['plan', 'table1/basicvsr_m/ours', '--no-figure']); "
            "assert rc == 0 and 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "mgvsr", "plan", "no/such/preset"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown preset 'no/such/preset'" in result.stderr and "Traceback" not in result.stderr


def test_plot_plan_on_given_axes(tmp_path):
    from matplotlib.figure import Figure

    from mgvsr.presets import get_preset
    from mgvsr.figures import plot_plan

    plan = get_preset("table8/synchronous-3").plan
    fig = Figure()
    patch_ax, frames_ax, lr_ax = fig.subplots(3, 1)
    assert plot_plan(plan, (patch_ax, frames_ax, lr_ax)) is fig
    # the LR curve drawn is the plan's own: max 8e-4 at the restarts, eta_min at the end
    (line,) = lr_ax.get_lines()
    assert max(line.get_ydata()) == pytest.approx(8e-4) and line.get_ydata()[-1] == pytest.approx(1e-7)
    # patch and frames each on their own axes, in their own unit (no twin axis)
    assert [t.get_text() for t in patch_ax.get_yticklabels()] == ["32", "48", "64"]
    assert [t.get_text() for t in frames_ax.get_yticklabels()] == ["7", "11", "15"]
    assert len(fig.axes) == 3
    assert "10^{-4}" in lr_ax.get_ylabel()  # the power of ten in the label, not in a corner over the stage labels
    with pytest.raises(ValueError, match="three Axes"):
        plot_plan(plan, (patch_ax, lr_ax))
    single = Figure()
    ax = single.subplots()
    plot_plan(plan, ax)
    assert [t.get_text() for t in ax.texts] == ["32&7", "48&11", "64&15"]
    single.savefig(tmp_path / "single.png")
    assert (tmp_path / "single.png").read_bytes()[:8] == PNG_SIGNATURE
