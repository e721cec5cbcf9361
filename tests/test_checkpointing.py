"""Checkpoints you can trust: each carries a checksum of its content; a truncated or altered
``last.pth`` is named and the run resumes from ``previous.pth``, repeating the iterations it
says, to the same losses; a checkpoint of another model, a run folder of another preset and
a stop signal in-process are handled with clear errors or records."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from mgvsr import checkpointing, runs
from mgvsr.cli import main
from mgvsr.cli.train import shared_store_warning
from mgvsr.data.sample import sample_source
from mgvsr.errors import CheckpointError, Preempted
from mgvsr.models import build_model
from mgvsr.presets import get_preset
from mgvsr.runs import read_log
from mgvsr.schedule import Plan, Stage
from mgvsr.launch import run_preset
from mgvsr.options import RunOptions, TrainConfig
from mgvsr.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

PLAN = Plan((Stage(8, 8, 3, 2, 1e-3),))  # checkpoints at 3, 6 (checkpoint_every 3) and 8 (the stage end)


def tiny_model(num_feat: int = 4):
    torch.manual_seed(0)
    return build_model("basicvsr", num_feat=num_feat, num_block=1, hr_feat=4, spynet_zero_init=True)


@pytest.fixture(scope="module")
def train_clips():
    return sample_source("train")


def trainer(folder, clips, model=None, **cfg) -> Trainer:
    config = TrainConfig(progress=False, checkpoint_every=3, **cfg)
    return Trainer(model or tiny_model(), PLAN, clips, folder, config)


def step_losses(folder) -> list[float]:
    return [r["loss"] for r in read_log(folder) if r["event"] == "step"]


def interrupted(folder, clips, at_forward: int) -> None:
    """A run killed in the middle of the step of forward ``at_forward`` (no checkpoint for it)."""
    model = tiny_model()
    calls = []

    def die(module, args):
        calls.append(1)
        if len(calls) == at_forward:
            raise KeyboardInterrupt

    model.register_forward_pre_hook(die)
    with pytest.raises(KeyboardInterrupt):
        trainer(folder, clips, model).run()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, train_clips) -> list[float]:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("full")
    trainer(folder, train_clips).run()
    return step_losses(folder)


def test_each_checkpoint_carries_the_checksum_of_its_content(tmp_path, train_clips):
    trainer(tmp_path, train_clips).run()
    last, previous = tmp_path / "last.pth", tmp_path / "previous.pth"
    state = torch.load(last, weights_only=False)
    assert state["iteration"] == 8 and torch.load(previous, weights_only=False)["iteration"] == 6
    assert state["checksum"] == checkpointing.content_checksum(state)
    assert checkpointing.read_verified(last)["iteration"] == 8
    state["params"][next(iter(state["params"]))].view(-1)[0] += 1e-3  # one weight changed
    assert checkpointing.content_checksum(state) != state["checksum"]


def test_a_truncated_last_pth_is_named_and_the_run_resumes_from_previous_pth(tmp_path, train_clips, reference):
    interrupted(tmp_path, train_clips, at_forward=8)  # in step 7: steps 0-6 logged, checkpoints at 3 and 6
    last = tmp_path / "last.pth"
    size = last.stat().st_size
    with open(last, "r+b") as f:  # a copy cut short
        f.truncate(size // 2)
    with pytest.warns(UserWarning) as caught:
        trainer(tmp_path, train_clips).run(resume=True)
    message = str(caught[0].message)
    assert "\n" not in message and message.startswith(f"{last} is damaged: it cannot be read (")
    assert f"resuming from {tmp_path / 'previous.pth'} at iteration 3: 4 iterations (3-6) trained again" in message
    assert step_losses(tmp_path) == reference
    assert (tmp_path / "last.pth.damaged").stat().st_size == size // 2  # kept for a look, not rotated over
    resume = [r for r in read_log(tmp_path) if r["event"] == "resume"]
    assert resume == [{"event": "resume", "it": 3, "checkpoint": "previous.pth", "repeated": 4,
                       "damaged": ["last.pth"], "restart": 0}]


def _flip_a_weight_byte(path) -> None:
    """Change one byte inside a stored tensor (the bit rot a checksum is for)."""
    state = torch.load(path, weights_only=False)
    name, tensor = max(state["params"].items(), key=lambda kv: kv[1].numel())
    # the bytes as stored: the tensor's storage in its own memory format (channels_last or not)
    flat = tensor.as_strided((tensor.untyped_storage().nbytes() // tensor.element_size(),), (1,), 0)
    payload = flat.view(torch.uint8).numpy().tobytes()
    data = bytearray(path.read_bytes())
    at = data.find(payload)
    assert at >= 0, f"{name}'s bytes not found in {path}"
    data[at + len(payload) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_altered_bytes_fail_the_checksum_and_with_no_intact_checkpoint_nothing_is_touched(tmp_path, train_clips):
    interrupted(tmp_path, train_clips, at_forward=8)
    last, previous = tmp_path / "last.pth", tmp_path / "previous.pth"
    _flip_a_weight_byte(last)
    with pytest.raises(CheckpointError) as err:
        checkpointing.read_verified(last)
    assert str(err.value) == f"{last} is damaged: its content does not match its checksum"
    previous.write_bytes(previous.read_bytes()[:1000])
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CheckpointError) as err:
        trainer(tmp_path, train_clips).run(resume=True)
    assert f"cannot resume: no intact checkpoint in {tmp_path}" in str(err.value)
    assert str(last) in str(err.value) and str(previous) in str(err.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_a_checkpoint_of_another_model_is_refused_with_what_differs(tmp_path, train_clips):
    interrupted(tmp_path, train_clips, at_forward=5)
    wider = tiny_model(num_feat=8)
    with pytest.raises(CheckpointError) as err:
        trainer(tmp_path, train_clips, wider, extra={"model": "wider"}).run(resume=True)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'last.pth'} does not fit BasicVSR")
    assert "shape mismatches" in message and "upconv2.weight: file (16, 4, 3, 3) vs model (16, 8, 3, 3)" in message


def test_the_old_checkpoint_names_its_model(tmp_path, train_clips):
    interrupted(tmp_path, train_clips, at_forward=5)
    state = torch.load(tmp_path / "last.pth", weights_only=False)
    state["config"]["extra"]["model"] = "basicvsr_m"
    with pytest.raises(CheckpointError, match=r"\(written for the model basicvsr_m, this run trains basicvsr_cpu\)"):
        checkpointing.check_model(tiny_model(8), state, tmp_path / "last.pth", model_name="basicvsr_cpu")


def test_a_stop_signal_finishes_the_step_and_checkpoints(tmp_path, train_clips, reference):
    model = tiny_model()
    calls = []

    def signal_in_step_5(module, args):  # the signal arrives in the middle of a forward
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGUSR1)

    model.register_forward_pre_hook(signal_in_step_5)
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Preempted) as err:
        trainer(tmp_path, train_clips, model).run()
    assert (err.value.signal, err.value.iteration) == ("SIGUSR1", 5)
    assert signal.getsignal(signal.SIGUSR1) == before  # the handler is given back
    assert torch.load(tmp_path / "last.pth", weights_only=False)["iteration"] == 5
    assert read_log(tmp_path)[-1] == {"event": "preempted", "it": 5, "signal": "SIGUSR1", "checkpoint": "last.pth"}
    trainer(tmp_path, train_clips).run(resume=True)
    assert step_losses(tmp_path) == reference


def test_resuming_into_a_folder_of_another_preset_is_refused(tmp_path, capsys):
    ours, baseline = get_preset("demo/basicvsr/ours"), get_preset("demo/basicvsr/baseline")
    runs.write_spec(tmp_path, runs.run_spec(ours, TrainConfig(), device_type="cpu"))
    (tmp_path / "last.pth").write_bytes(b"not looked at")
    for resume in (True, None):  # --resume, and a torchrun restart
        with pytest.raises(runs.RunFolderError, match="holds a run of demo/basicvsr/ours, not of demo/basicvsr/baseline"):
            run_preset(baseline, tmp_path, RunOptions(device="cpu", progress=False), resume=resume)
    code = main(["train", "--preset", "demo/basicvsr/baseline", "--out", str(tmp_path), "--resume", "--device", "cpu"])
    assert code == 2 and f"{tmp_path} holds a run of demo/basicvsr/ours" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth", "spec.json"]


def test_torchrun_restarts_with_a_shared_store_are_warned_about(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "2")
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "c0ffee")
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in shared_store_warning()
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")  # what that variable gives
    assert shared_store_warning() is None
