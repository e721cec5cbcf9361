"""The benchmarks run: every script of ``bench/`` starts (``--help``) and runs a tiny case as a user runs it
(a subprocess, with a timeout); a new script without a case here fails.  None imports from ``tests/``.
The benchmarks' reference step trains as ours does but for the forward.

And ``bench/run.py``, the benchmark suite: its cases are the plans' stage shapes, and one command writes a
RESULTS file with step time, FLOPs, achieved FLOP/s and MFU for every case, the loader and the peak.

The numbers the scripts print are the benchmarks' business (measured on a quiet machine), not a test's:
these tests check that each runs and prints what it measures.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.presets import get_preset
from mgvsr.step import TrainStep

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))
from reference_models import reference_model  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
suite = sys.modules["bench_run"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(suite)

# modules the scripts import, no scripts themselves
HELPERS = ("reference_models.py", "timed_step.py")
# script -> [(arguments of a tiny case, a line it must print)]; "{tmp}" is a temporary folder
CASES = {
    "bench_basicvsr_step.py": [(["--quick"], r"speedup \(reference / fast, medians\): \d+\.\d\dx")],
    "bench_channels_last.py": [(["--quick"], r"^\| edvr_cpu \| 1 \| 16&5 \| fp32 \| [\d.]+ \| [\d.]+ \| \d+\.\d\dx \|$")],
    "bench_checkpoint.py": [(["--quick"], r"write: [\d.]+x a plain torch\.save; read: [\d.]+x a plain torch\.load")],
    "bench_demo.py": [(["--quick", "--device", "cpu"], r"(MET|MISSED)\s+the whole demo <= 10 minutes")],
    "bench_edvr.py": [(["--quick"], r"spatial cycle \(8x8 then 16x16.*: [\d.]+x faster measured, [\d.]+x by FLOPs")],
    "bench_eval_memory.py": [(["--quick"], r"^\s+4\s+2\s+\d+\s+\d+\s+[\d.]+\s+yes$")],
    "bench_faster_start.py": [(["--quick"], r"init fast, Charbonnier eps 1e-12, LR x 1: steps to bicubic"),
                              (["--diagnose"], r"basicvsr_cpu, init fast: output std fusion")],
    "bench_micro_batch.py": [(["--quick"], r"^  16&3: fp32 [\d.]+ s -> [\d.]+ s \(\d+\.\d\dx\)")],
    "bench_reference.py": [(["--quick"], r"edvr_cpu\s+16&5: reference [\d.]+ s, ours .* as trained [\d.]+ s")],
    "bench_store.py": [(["--quick"], r"store vs PNG \(the trainer's windows\): \d+x")],
    "learn_edvr_cpu.py": [(["--quick"], r"^compute [\d.]+ s \(16&5: .*wall [\d.]+ s$")],
}
# scripts whose tiny case runs in another test (named here, checked to name the script and its flag)
ELSEWHERE = {
    "run.py": ("tests/test_bench_suite.py", "--quick"),  # below: test_one_command_writes_results_with_mfu_for_every_row
    "gpu_check.py": ("tests/test_gpu_check.py", "--smoke"),
    "bench_recon_chunk.py": ("tests/test_bench_gpu_micro.py", "--quick"),
    "bench_dcn_sync.py": ("tests/test_bench_gpu_micro.py", "--quick"),
    "bench_ddp_unused.py": ("tests/test_bench_gpu_micro.py", "--quick"),
}
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS)
TINY = [pytest.param(name, args, pattern, id=f"{name} {' '.join(args)}")
        for name, cases in CASES.items() for args, pattern in cases]


def run_script(name: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_every_script_has_a_tiny_case_and_helpers_are_no_scripts():
    assert SCRIPTS, "no bench scripts found"
    missing = [s for s in SCRIPTS if s not in CASES and s not in ELSEWHERE]
    assert not missing, f"bench scripts without a tiny case in tests/test_bench_suite.py: {missing}"
    assert set(CASES) | set(ELSEWHERE) <= set(SCRIPTS), "a case names a script that is gone"
    for name in SCRIPTS:
        assert 'if __name__ == "__main__":' in (BENCH / name).read_text(), name
    for name in HELPERS:
        assert 'if __name__ == "__main__":' not in (BENCH / name).read_text(), name
    for name, (test_file, flag) in ELSEWHERE.items():
        text = (REPO / test_file).read_text()
        assert name in text and flag in text, f"{test_file} does not run {name} {flag}"


def test_no_script_imports_from_tests():
    """bench/ and tools/ may be imported by the tests, never the reverse."""
    bad = re.compile(r"^\s*(from\s+tests?\b|import\s+tests?\b|from\s+test_\w+\s+import|import\s+test_\w+)"
                     r"|sys\.path.*[\"']tests[\"']|/\s*[\"']tests[\"']", re.M)
    for folder in ("bench", "tools"):
        for path in sorted((REPO / folder).glob("*.py")):
            found = bad.search(path.read_text())
            assert found is None, f"{path.relative_to(REPO)} reaches into tests/: {found.group(0)!r}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_starts(name):
    done = run_script(name, "--help", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("usage:"), done.stdout
    assert "--quick" in done.stdout or "--smoke" in done.stdout  # a tiny case anyone can run


@pytest.mark.slow
@pytest.mark.parametrize("name, args, pattern", TINY)
def test_tiny_case_runs_and_prints_what_it_measures(name, args, pattern, tmp_path):
    done = run_script(name, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(pattern, done.stdout, re.M), done.stdout[-3000:]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name, frozen", [("basicvsr_cpu", 0), ("basicvsr_cpu", 1), ("edvr_cpu", 0)])
def test_the_reference_step_trains_as_ours_but_for_the_forward(name, frozen):
    """bench/reference_models.reference_model under TrainStep: the same loss, the same gradients (and the
    same frozen parameters: the flow network's warm start) as the model's own forward."""
    torch.manual_seed(0)
    model = build_model(name)
    lq, gt = torch.rand(2, 5, 3, 16, 16), torch.rand(2, 5, 3, 64, 64)
    cfg = TrainConfig(channels_last=False, frozen_iters=frozen)
    ours = TrainStep(copy.deepcopy(model), cfg, torch.device("cpu"))
    ref = TrainStep(reference_model(copy.deepcopy(model), 16), cfg, torch.device("cpu"))
    losses = [step(iter([(lq, gt)]), lr=1e-4, it=0, samples=2).loss for step in (ours, ref)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    grads = [{n.removeprefix("model."): p.grad for n, p in step.model.named_parameters()} for step in (ours, ref)]
    assert grads[0].keys() == grads[1].keys()
    for key, g in grads[0].items():
        if g is None:
            assert grads[1][key] is None, key
        else:
            torch.testing.assert_close(grads[1][key], g, rtol=1e-3, atol=1e-6, msg=key)
    flow = [g for k, g in grads[0].items() if k.startswith("spynet")]
    if frozen:
        assert flow and all(g is None for g in flow)
    elif name.startswith("basicvsr"):
        assert any(g is not None for g in flow)


def test_cases_are_every_stage_shape_of_the_demo_and_paper_plans():
    cases = suite.cases(torch.device("cpu"), quick=False, models=None)
    demo = [(c.patch, c.frames) for c in cases if c.model == "basicvsr_cpu" and c.plan == "demo"]
    assert demo == [(s.patch, s.frames) for s in get_preset("demo/basicvsr/ours").plan.stages]
    paper = {(c.patch, c.frames, c.batch) for c in cases if c.model == "edvr_m" and c.plan == "paper"}
    assert paper == {(32, 5, 1), (64, 5, 1)}
    assert {c.model for c in cases} == {"basicvsr_cpu", "basicvsr_m", "edvr_cpu", "edvr_m", "basicvsrpp_cpu", "basicvsrpp"}
    bvpp = [(c.plan, c.patch, c.frames, c.batch) for c in cases if c.model == "basicvsrpp"]
    assert bvpp == [("demo", s.patch, s.frames, 4) for s in get_preset("demo/basicvsrpp/ours").plan.stages] + [
        ("paper", s.patch, s.frames, 1) for s in get_preset("basicvsrpp/reds/ours").plan.stages]
    quick = suite.cases(torch.device("cpu"), quick=True, models=["basicvsr_m"])
    assert [(c.plan, c.patch, c.frames) for c in quick] == [("demo", 16, 4), ("demo", 32, 8), ("paper", 32, 7),
                                                            ("paper", 64, 15)]


@pytest.mark.slow
def test_one_command_writes_results_with_mfu_for_every_row(tmp_path):
    """bench/run.py's tiny case."""
    out = tmp_path / "RESULTS.md"
    done = run_script("run.py", "--models", "edvr_cpu", "--quick", "--steps", "1", "--no-reference", "--threads", "1",
                      "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    assert "python bench/run.py --models edvr_cpu" in text and "load average" in text and "CPU:" in text
    steps_table = text.split("### Training steps")[1].split("###")[0]
    rows = [line for line in steps_table.splitlines() if line.startswith("| edvr_cpu |")]
    precisions = suite.precisions(torch.device("cpu"))
    assert len(rows) == 4 * len(precisions)  # 2 demo + 2 paper shapes, each precision
    bounds = text.split("### Speedup bounds by FLOPs")[1].split("###")[0]
    assert re.search(r"^\| edvr_cpu \| demo/edvr_m/ours \| demo/edvr_m/baseline \| \d+\.\d\dx \|", bounds, re.M)
    for row in rows:
        assert re.search(r"\| \d+\.\d% \|", row), row  # an MFU
    assert "### Data loader" in text and "| 32&5 | 4 |" in text
    assert re.search(r"\| fp32 \| [\d,.]+ \| [\d,.]+ \| [\d,.]+ \|", text)  # the peak measured


def test_flop_bounds_are_the_pixel_bounds_where_flops_follow_pixels():
    """bench/run.py's speedup bounds by FLOPs: with FLOPs per sample proportional to LR pixels they are the
    bounds by LR pixels; a model lacking a shape of a plan or its baseline gets no row."""
    per_sample = {}
    for family, names in suite.MODELS.items():
        for which, name in zip(("demo", "paper"), suite.PLANS[family]):
            ours = get_preset(name)
            for s in ours.plan.stages + get_preset(ours.baseline).plan.stages:
                per_sample[(names[0], which, s.patch, s.frames)] = 3.0 * s.frames * s.patch ** 2
    rows = [line for line in suite.flop_bounds(per_sample) if line.startswith("| ") and "x |" in line]
    assert len(rows) == 2 * len(suite.MODELS)  # the first model of each family, demo and paper plans
    for row in rows:
        by_flops, by_pixels = re.findall(r"(\d+\.\d\d)x", row)
        assert by_flops == by_pixels, row
    assert "| basicvsrpp_cpu | basicvsrpp/reds/ours | basicvsrpp/reds/baseline | 2.18x | 2.18x |" in rows
    del per_sample[("basicvsrpp_cpu", "paper", 64, 30)]  # the baseline's shape (ours' last stage)
    assert not any("basicvsrpp/reds/ours" in line for line in suite.flop_bounds(per_sample))


def test_the_basicvsrpp_demo_has_its_issues_targets():
    """bench/bench_demo.py --model basicvsrpp: issue 21's thresholds (0.3 dB above bicubic, 15 minutes), no
    targets for its fast run."""
    import bench_demo

    report = {"bicubic": {"psnr": 24.91}, "baseline": {"psnr": 25.25}, "ours": {"psnr": 25.16},
              "speedup_wall": 1.9, "speedup_compute": 1.95, "total_seconds": 14 * 60, "fast": None}
    got = {name: met for name, met, _ in bench_demo.targets(report, "basicvsrpp")}
    assert got == {"ours >= 1.8x faster (wall-clock)": True, "PSNR within 0.1 dB of the baseline": True,
                   "baseline >= 0.3 dB above bicubic": True, "ours >= 0.3 dB above bicubic": False,
                   "the whole demo <= 15 minutes": True}
    assert not {name: met for name, met, _ in bench_demo.targets(report)}["the whole demo <= 10 minutes"]


@pytest.mark.usefixtures("one_thread")
def test_flops_only_counts_without_timing_or_writing(tmp_path, capsys):
    """bench/run.py --flops-only: the fp32 FLOPs of every case printed, nothing timed, no file written."""
    assert suite.main(["--flops-only", "--models", "edvr_cpu", "--quick", "--devices", "cpu",
                       "--out", str(tmp_path / "R.md")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[cpu] edvr_cpu")]
    assert len(lines) == 4 and all(re.search(r": [\d,.]+ GFLOP per step \(fp32\)$", line) for line in lines)
    assert not (tmp_path / "R.md").exists()
