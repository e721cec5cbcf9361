"""What a first GPU run meets, checked on the CPU (issue 22): the setup record says how the run computes,
training-time evaluation runs in segments, and an out-of-memory error names the shape, the micro-batch
that would fit and the intact checkpoint."""

from __future__ import annotations

import pytest
import torch

from mgvsr import train as train_module
from mgvsr.data.sample import sample_source
from mgvsr.errors import MgvsrError
from mgvsr.evaluate import DEFAULT_SEGMENT
from mgvsr.models import build_model
from mgvsr.options import TrainConfig
from mgvsr.runs import read_log
from mgvsr.schedule import Plan, Stage
from mgvsr.step import TrainStep
from mgvsr.train import Trainer


def tiny():
    torch.manual_seed(0)
    return build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)


def test_the_setup_record_says_how_the_run_computes(tmp_path):
    Trainer(tiny(), Plan((Stage(1, 8, 3, 2, 1e-3),)), sample_source("train"), tmp_path,
            TrainConfig(progress=False, num_workers=0)).run()
    setup = read_log(tmp_path)[0]["setup"]
    assert setup["compute"] == {"threads": torch.get_num_threads()}  # on CUDA: TF32 and cuDNN's benchmark
    assert setup["dcn_backend"] in ("torch", "torchvision")
    assert setup["loader"] == {"workers": 0, "pin_memory": False}


def test_training_time_evaluation_runs_recurrent_models_in_segments(tmp_path, monkeypatch):
    seen = {}
    real = train_module.evaluate_model

    def spy(model, source, protocol=None, **kw):
        seen.update(kw)
        return real(model, source, protocol, **kw)

    monkeypatch.setattr(train_module, "evaluate_model", spy)
    Trainer(tiny(), Plan((Stage(1, 8, 3, 2, 1e-3),)), sample_source("train"), tmp_path, TrainConfig(progress=False),
            test=sample_source("test")).run()
    assert seen["segment"] == DEFAULT_SEGMENT


def test_out_of_memory_in_a_step_names_the_shape_and_what_fits(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = TrainStep.__call__

    def step(self, batches, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, batches, **kw)

    monkeypatch.setattr(TrainStep, "__call__", step)
    plan = Plan((Stage(4, 8, 3, 4, 1e-3),))
    with pytest.raises(MgvsrError) as err:
        Trainer(tiny(), plan, sample_source("train"), tmp_path, TrainConfig(progress=False, checkpoint_every=1)).run()
    text = str(err.value)
    assert "out of memory at iteration 2 (stage 1, 8&3: 4 clips of 3 frames of 8x8 LR pixels per device" in text
    assert "micro-batch 4" in text and "--micro-batch 2 (or less)" in text and "--dry-run" in text
    assert "The last checkpoint (2) is intact" in text and "Tried to allocate 2.00 GiB" in text
    assert torch.load(tmp_path / "last.pth", weights_only=False)["iteration"] == 2


def test_out_of_memory_in_an_evaluation_says_what_to_do(tmp_path):
    def evaluate(model, source):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(MgvsrError, match=r"out of memory evaluating on .* at iteration 1 .*mgvsr eval --segment N"):
        Trainer(tiny(), Plan((Stage(1, 8, 3, 2, 1e-3),)), sample_source("train"), tmp_path,
                TrainConfig(progress=False), test=sample_source("test"), evaluate=evaluate).run()
