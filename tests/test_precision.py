"""Mixed precision: which arithmetic a run uses and says it uses, and what stays in fp32.

The CPU's native bfloat16 is detected from torch's cpuinfo probes and ``/proc/cpuinfo``;
``MGVSR_BF16=0`` forces the detection off (the path of a CPU without bfloat16), ``1`` on."""

from __future__ import annotations

import math

import pytest
import torch

from mgvsr import device as device_module
from mgvsr import step as step_module
from mgvsr.data.sample import sample_source
from mgvsr.models import build_model
from mgvsr.runs import read_log
from mgvsr.schedule import Plan, Stage
from mgvsr.device import BF16_ENV, bf16_supported, cpu_flags, precision_note, resolve_precision
from mgvsr.options import TrainConfig
from mgvsr.train import Trainer

CPU = torch.device("cpu")


def test_without_amp_fp32_everywhere():
    assert resolve_precision(CPU, False) == "fp32"
    assert precision_note(CPU, False) == "precision fp32"


def test_cpu_without_native_bf16_falls_back_to_fp32_and_says_why(monkeypatch):
    monkeypatch.setenv(BF16_ENV, "0")
    assert not bf16_supported(CPU)
    assert resolve_precision(CPU, True) == "fp32"
    assert "mixed precision was asked for" in precision_note(CPU, True)
    assert f"{BF16_ENV}=0" in precision_note(CPU, True)


def test_cpu_with_native_bf16_uses_bf16(monkeypatch):
    monkeypatch.setenv(BF16_ENV, "1")
    assert resolve_precision(CPU, True) == "bf16"
    assert precision_note(CPU, True).startswith("precision bf16")


def test_cpuinfo_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(info)) == {"fpu", "sse", "avx512f", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "absent")) == set()


def test_detection_agrees_with_proc_cpuinfo(monkeypatch):
    """torch's probes and the kernel's flags tell the same story on this machine (x86)."""
    monkeypatch.delenv(BF16_ENV, raising=False)
    flags = cpu_flags()
    if "avx512f" not in flags and "avx2" not in flags:
        pytest.skip("not an x86 CPU with readable /proc/cpuinfo")
    assert bf16_supported(CPU) == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("forced, expected", [("1", "bf16"), ("0", "fp32")])
def test_amp_run_logs_its_precision_and_keeps_fp32_state(tmp_path, monkeypatch, forced, expected):
    monkeypatch.setenv(BF16_ENV, forced)
    torch.manual_seed(0)
    model = build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)
    dtypes = []
    model.conv_last.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    plan = Plan((Stage(2, 8, 3, 2, 1e-3),))
    trainer = Trainer(model, plan, sample_source("train"), tmp_path, TrainConfig(progress=False, amp=True))
    summary = trainer.run()
    start = read_log(tmp_path / "log.jsonl")[0]
    assert start["event"] == "start" and start["precision"] == expected
    assert start["precision_note"] == precision_note(CPU, True)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    state = trainer.optimizer.state_dict()["state"]
    assert state and all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != "step")
    steps = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "step"]
    assert all(isinstance(r["loss"], float) for r in steps)
    assert summary["it"] == 2
    # the convolutions ran in the arithmetic chosen
    assert set(dtypes) == {torch.bfloat16 if expected == "bf16" else torch.float32}


def test_channels_last_trains_the_same_steps(tmp_path):
    """channels_last changes the memory format, not the arithmetic: the same losses to float rounding."""
    losses = {}
    for cl in (False, True):
        torch.manual_seed(0)
        model = build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)
        cfg = TrainConfig(progress=False, channels_last=cl)
        trainer = Trainer(model, Plan((Stage(3, 8, 3, 2, 1e-3),)), sample_source("train"), tmp_path / str(cl), cfg)
        trainer.run()
        records = read_log(tmp_path / str(cl) / "log.jsonl")
        assert records[0]["channels_last"] is cl
        assert model.conv_hr.weight.is_contiguous(memory_format=torch.channels_last) is cl
        losses[cl] = [r["loss"] for r in records if r["event"] == "step"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_channels_last_by_default_only_where_the_model_measured_faster():
    from mgvsr.models.protocol import prefers_channels_last

    plain = torch.nn.Conv2d(3, 3, 3)
    assert not prefers_channels_last(plain, "cpu", "fp32")
    basicvsr, edvr = build_model("basicvsr_cpu"), build_model("edvr_cpu")
    assert prefers_channels_last(basicvsr, "cpu", "fp32") and prefers_channels_last(basicvsr, "cpu", "bf16")
    assert not prefers_channels_last(edvr, "cpu", "fp32") and not prefers_channels_last(edvr, "cpu", "bf16")
    assert not prefers_channels_last(basicvsr, "cuda", "bf16")  # not measured: left as it is


# ---- precision chosen by the hardware (a V100 / T4 is compute capability 7.x: no native bfloat16) ----

CUDA = torch.device("cuda")


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"),
                                                  ((9, 0), "bf16")])
def test_cuda_precision_follows_the_devices_compute_capability(monkeypatch, capability, expected):
    """``torch.cuda.is_bf16_supported()`` says yes on a V100 (emulated bf16); the capability decides here."""
    monkeypatch.delenv(BF16_ENV, raising=False)
    monkeypatch.setattr(device_module, "cuda_capability", lambda device: capability)
    assert bf16_supported(CUDA) is (expected == "bf16")
    assert resolve_precision(CUDA, True) == expected
    note = precision_note(CUDA, True)
    assert note.startswith(f"precision {expected}")
    if expected == "fp16":
        assert f"compute capability {capability[0]}.{capability[1]}" in note and "loss scaling" in note


def fp16_run(folder, monkeypatch, plan, stop_after=None):
    """A run in fp16 autocast with loss scaling and micro-batches, as a compute capability 7.x GPU trains:
    the same path on the CPU (its autocast computes float16 too)."""
    monkeypatch.setattr(step_module, "resolve_precision", lambda device, amp: "fp16" if amp else "fp32")
    torch.manual_seed(0)
    model = build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)
    dtypes = []
    model.conv_last.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    if stop_after is not None:
        calls = iter(range(10**6))
        model.register_forward_pre_hook(lambda m, args: (_ for _ in ()).throw(KeyboardInterrupt)
                                        if next(calls) == stop_after else None)
    trainer = Trainer(model, plan, sample_source("train"), folder,
                      TrainConfig(progress=False, amp=True, micro_batch=2, checkpoint_every=1))
    return trainer, dtypes


def test_the_fp16_path_scales_the_loss_per_micro_batch_and_resumes_exactly(tmp_path, monkeypatch):
    plan = Plan((Stage(4, 8, 3, 4, 1e-3),))
    trainer, dtypes = fp16_run(tmp_path / "whole", monkeypatch, plan)
    assert trainer.precision == "fp16" and trainer.step.scaler is not None
    trainer.run()
    assert set(dtypes) == {torch.float16} and len(dtypes) == 8  # 4 steps of 2 micro-batches
    whole = [r["loss"] for r in read_log(tmp_path / "whole") if r["event"] == "step"]
    assert len(whole) == 4 and all(math.isfinite(v) for v in whole)
    state = torch.load(tmp_path / "whole" / "last.pth", weights_only=False)
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0  # the scaler's state is checkpointed
    # interrupted inside step 3 (its 5th forward), then resumed from the checkpoint after step 2
    stopped, _ = fp16_run(tmp_path / "stopped", monkeypatch, plan, stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        stopped.run()
    resumed, _ = fp16_run(tmp_path / "stopped", monkeypatch, plan)
    resumed.run(resume=True)
    assert [r["loss"] for r in read_log(tmp_path / "stopped") if r["event"] == "step"] == whole
