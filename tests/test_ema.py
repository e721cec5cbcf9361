"""The EMA of the weights (BasicSR's ``ema_decay``): the average after every optimizer step equals the
update computed by hand, the evaluations score it, a resumed run continues it exactly, ``final.pth``
holds it as ``params_ema`` where the loaders find it, and a preset's decay scales with its run."""

from __future__ import annotations

import pytest
import torch

from mgvsr.callbacks import Callback, WeightEMA, default_callbacks
from mgvsr.data.sample import sample_source
from mgvsr.errors import MgvsrError
from mgvsr.launch import train_config
from mgvsr.models import build_model, load_model
from mgvsr.models.checkpoints import load_pretrained
from mgvsr.options import RunOptions, TrainConfig
from mgvsr.presets import Preset, get_preset, scaled_decay
from mgvsr.runs import read_log, run_spec
from mgvsr.schedule import Plan, Stage, baseline
from mgvsr.train import Trainer

DECAY = 0.9  # large steps of the average, so that a wrong update shows


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("basicvsr", num_feat=4, num_block=1, hr_feat=4, spynet_zero_init=True)


def plan() -> Plan:
    return Plan((Stage(3, 8, 3, 2, 1e-3), Stage(3, 16, 3, 2, 1e-3)))


@pytest.fixture(scope="module")
def train_clips():
    return sample_source("train")


@pytest.fixture(scope="module")
def test_clips():
    return sample_source("test")


class Weights(Callback):
    """The trained weights at the start and after every optimizer step."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_start(self, trainer) -> None:
        self.seen.append({k: v.detach().clone() for k, v in trainer.model.named_parameters()})

    def on_step(self, trainer, record: dict) -> None:
        self.seen.append({k: v.detach().clone() for k, v in trainer.model.named_parameters()})


class StopAt(Callback):
    """Ctrl-C after the step that ends at iteration ``it`` (after its checkpoint)."""

    def __init__(self, it: int) -> None:
        self.it = it

    def on_step_end(self, trainer) -> None:
        if trainer.it == self.it:
            raise KeyboardInterrupt


def cfg(**changes) -> TrainConfig:
    return TrainConfig(**{"progress": False, "ema_decay": DECAY, "frozen_iters": 2, **changes})


@pytest.mark.usefixtures("one_thread")
def test_the_average_is_the_hand_computed_update_and_evaluations_score_it(tmp_path, train_clips, test_clips):
    scored = []

    def evaluate(model, source):  # which weights the trainer scores
        scored.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return {"mean": {"psnr": 0.0, "ssim": 0.0}}

    weights = Weights()
    config = cfg(eval_every=3)
    trainer = Trainer(tiny_model(), plan(), train_clips, tmp_path, config, test=test_clips, evaluate=evaluate,
                      callbacks=default_callbacks(config) + [weights])
    buffers = {k: v.clone() for k, v in trainer.model.named_buffers()}
    trainer.run()
    assert len(weights.seen) == 7  # the initial weights, then after each of the 6 steps
    expected = [{k: v.double() for k, v in weights.seen[0].items()}]  # BasicSR's model_ema(0): a copy
    for w in weights.seen[1:]:
        expected.append({k: DECAY * expected[-1][k] + (1 - DECAY) * w[k].double() for k in w})
    # the evaluations (at iterations 3 and 6) scored the average of that step, not the trained weights
    assert len(scored) == 2
    for got, it in zip(scored, (3, 6)):
        for k in got:
            torch.testing.assert_close(got[k].double(), expected[it][k], rtol=1e-6, atol=1e-9)
    trained_moved = [k for k in weights.seen[6] if not torch.equal(weights.seen[6][k], scored[-1][k])]
    assert trained_moved  # the average is not the trained weights
    final = torch.load(tmp_path / "final.pth")
    assert set(final) == {"params", "params_ema"}
    for k, v in final["params"].items():
        if k in weights.seen[6]:
            assert torch.equal(v, weights.seen[6][k])
            torch.testing.assert_close(final["params_ema"][k].double(), expected[6][k], rtol=1e-6, atol=1e-9)
        else:  # buffers (SpyNet's normalisation) keep their values, as BasicSR's
            assert torch.equal(final["params_ema"][k], buffers[k])
    evals = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "eval"]
    assert [r["weights"] for r in evals] == ["ema", "ema"]


@pytest.mark.usefixtures("one_thread")
def test_params_ema_loads_where_the_loaders_look(tmp_path, train_clips):
    torch.manual_seed(0)
    Trainer(build_model("basicvsr_cpu"), plan(), train_clips, tmp_path, cfg()).run()
    final = torch.load(tmp_path / "final.pth")
    assert any(not torch.equal(final["params"][k], final["params_ema"][k]) for k in final["params"])
    for key, entry in (("params_ema", "params_ema"), ("auto", "params_ema"), ("params", "params")):
        model = build_model("basicvsr_cpu")
        load_pretrained(model, tmp_path / "final.pth", key=key)
        assert all(torch.equal(v, final[entry][k]) for k, v in model.state_dict().items()), key
    # load_model (`mgvsr eval`, the notebooks) reads the average the run evaluated
    loaded = load_model("basicvsr_cpu", tmp_path / "final.pth")
    assert all(torch.equal(v, final["params_ema"][k]) for k, v in loaded.state_dict().items())


@pytest.mark.usefixtures("one_thread")
def test_a_resumed_run_continues_the_average_exactly(tmp_path, train_clips):
    config = cfg(checkpoint_every=2)
    Trainer(tiny_model(), plan(), train_clips, tmp_path / "full", config).run()
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), plan(), train_clips, tmp_path / "cut", config,
                callbacks=default_callbacks(config) + [StopAt(4)]).run()
    state = torch.load(tmp_path / "cut" / "last.pth", weights_only=False)
    assert state["iteration"] == 4 and "params_ema" in state
    Trainer(tiny_model(), plan(), train_clips, tmp_path / "cut", config).run(resume=True)
    full, cut = torch.load(tmp_path / "full" / "final.pth"), torch.load(tmp_path / "cut" / "final.pth")
    for entry in ("params", "params_ema"):
        assert all(torch.equal(full[entry][k], cut[entry][k]) for k in full[entry]), entry
    losses = [[r["loss"] for r in read_log(tmp_path / run / "log.jsonl") if r["event"] == "step"] for run in ("full", "cut")]
    assert losses[0] == losses[1]


@pytest.mark.usefixtures("one_thread")
def test_resuming_with_an_ema_from_a_checkpoint_without_one_is_refused(tmp_path, train_clips):
    with pytest.raises(KeyboardInterrupt):
        config = cfg(ema_decay=None, checkpoint_every=2)
        Trainer(tiny_model(), plan(), train_clips, tmp_path, config, callbacks=default_callbacks(config) + [StopAt(2)]).run()
    with pytest.raises(MgvsrError, match="holds none"):
        Trainer(tiny_model(), plan(), train_clips, tmp_path, cfg()).run(resume=True)


def test_the_callback_comes_first_and_only_where_asked():
    assert isinstance(default_callbacks(cfg())[0], WeightEMA)  # a step's evaluation scores that step's average
    assert not any(isinstance(c, WeightEMA) for c in default_callbacks(cfg(ema_decay=None)))
    with pytest.raises(MgvsrError, match=r"decay must be in \(0, 1\)"):
        WeightEMA(1.0)


def test_a_preset_carries_its_decay_into_the_config_and_the_spec_only_where_set():
    plain = get_preset("demo/basicvsr/baseline")
    with_ema = Preset(name="x/ema", model="basicvsr_cpu", dataset="sample", plan=plain.plan, ema_decay=0.999)
    options = RunOptions(device="cpu", workers=0)
    assert train_config(plain, options).ema_decay is None
    assert train_config(with_ema, options).ema_decay == 0.999
    assert "ema_decay" not in run_spec(plain, train_config(plain, options), device_type="cpu")
    assert run_spec(with_ema, train_config(with_ema, options), device_type="cpu")["ema_decay"] == 0.999
    assert "EMA of the weights (decay 0.999" in with_ema.describe()
    with pytest.raises(MgvsrError, match="ema_decay"):
        Preset(name="x/bad", model="basicvsr_cpu", dataset="sample", plan=plain.plan, ema_decay=1.5)


def test_the_decay_keeps_the_average_s_share_of_a_shrunk_run():
    p = Preset(name="x/ema", model="basicvsr_cpu", dataset="sample", ema_decay=0.999,
               plan=baseline(1000, 32, 8, 4, 1e-3))
    half = p.shrunk(iterations=500)
    assert half.ema_decay == pytest.approx(0.999 ** 2)  # one step of the half-length run stands for two
    assert p.shrunk(batch=2).ema_decay == 0.999  # the same iterations: the same decay
    assert scaled_decay(0.999, 1 / 4) == pytest.approx(0.999 ** 4)  # a 4x minibatch (Busbridge et al. 2023)
    assert scaled_decay(None, 0.5) is None
    # the horizon (1 / (1 - decay) iterations) keeps its share of the run: ~1000 of 1000, ~500 of 500
    assert 1 / (1 - half.ema_decay) == pytest.approx(500, rel=2e-3)
