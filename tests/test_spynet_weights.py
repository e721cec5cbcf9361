"""The pretrained SpyNet files people have, written here in each project's layout
(docs/paper-reading.md, from BasicSR's and MMagic's source), loaded by ``--spynet``; any other
layout refused with its missing and unexpected names; the requirement of BasicVSR's recipe
(``flow_init``)."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch

from mgvsr.errors import CheckpointError, MgvsrError
from mgvsr.models import NO_SPYNET, SpynetRequiredError, build_model, flow_init
from mgvsr.models.basicvsr import BasicVSR
from mgvsr.models.spynet import SpyNet, check_spynet_file, read_spynet_weights


def spynet(seed: int) -> SpyNet:
    torch.manual_seed(seed)
    return SpyNet()


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def mmagic_name(name: str) -> str:
    """MMagic's SPyNet name of a BasicSR SpyNet name: ConvModules numbered 0..4 wrap '.conv'."""
    m = re.fullmatch(r"(.*)basic_module\.(\d)\.basic_module\.(\d)\.(weight|bias)", name)
    return f"{m[1]}basic_module.{m[2]}.basic_module.{int(m[3]) // 2}.conv.{m[4]}" if m else name


def basicsr_spynet_file(path, net: SpyNet) -> None:
    """``spynet_sintel_final-3d2a1287.pth``: ``{'params': ...}`` with the conv tensors only."""
    torch.save({"params": {k: v for k, v in net.state_dict().items() if k.startswith("basic_module.")}}, path)


def mmagic_spynet_file(path, net: SpyNet) -> None:
    """``spynet_20210409-c6c1bd09.pth``: an mmcv checkpoint, ``state_dict`` in ConvModule names."""
    state = {mmagic_name(k): v for k, v in net.state_dict().items()}
    torch.save({"meta": {"mmcv_version": "1.3.1", "time": "Fri Apr  9 2021"}, "state_dict": state}, path)


def test_basicsr_spynet_file(tmp_path):
    source = spynet(0)
    path = tmp_path / "spynet_sintel_final-3d2a1287.pth"
    basicsr_spynet_file(path, source)
    state, layout = read_spynet_weights(path)
    assert "basic_module.5.basic_module.8.weight" in state and "mean" not in state
    assert layout.startswith("BasicSR SpyNet")
    loaded = spynet(1)
    assert loaded.load_pretrained(path) == layout
    assert same(source, loaded)


def test_mmagic_spynet_file(tmp_path):
    source = spynet(0)
    path = tmp_path / "spynet_20210409-c6c1bd09.pth"
    mmagic_spynet_file(path, source)
    assert "basic_module.0.basic_module.4.conv.weight" in torch.load(path)["state_dict"]
    _, layout = read_spynet_weights(path)
    assert layout.startswith("MMagic SPyNet")
    loaded = spynet(1)
    loaded.load_pretrained(path)
    assert same(source, loaded)


@pytest.mark.parametrize("project", ["basicsr", "mmagic"])
def test_the_spynet_of_a_full_basicvsr_checkpoint(tmp_path, project):
    torch.manual_seed(0)
    full = BasicVSR(num_feat=8, num_block=1)
    path = tmp_path / f"basicvsr_{project}.pth"
    if project == "basicsr":
        torch.save({"params": full.state_dict(), "params_ema": BasicVSR(num_feat=8, num_block=1).state_dict()}, path)
    else:
        state = {"generator." + mmagic_name(k): v for k, v in full.state_dict().items()}
        state["generator.backward_resblocks.main.0.weight"] = state.pop("generator.backward_trunk.main.0.weight")
        torch.save({"meta": {}, "state_dict": state}, path)
    state, layout = read_spynet_weights(path)
    assert layout == f"the SpyNet of a {'BasicSR' if project == 'basicsr' else 'MMagic'} BasicVSR checkpoint"
    assert not any(k.startswith(("spynet.", "backward")) for k in state)
    loaded = spynet(1)
    loaded.load_pretrained(path)
    assert same(full.spynet, loaded)  # BasicSR: 'params', not 'params_ema'


def test_another_layout_lists_missing_and_unexpected_names(tmp_path):
    path = tmp_path / "flownet.pth"
    torch.save({"params": {"flow.conv1.weight": torch.zeros(64, 6, 7, 7), **{
        k: v for k, v in spynet(0).state_dict().items() if not k.startswith("basic_module.5.")}}}, path)
    with pytest.raises(CheckpointError) as err:
        spynet(1).load_pretrained(path)
    message = str(err.value)
    assert f"{path} (a BasicSR file of another layout) does not fit SpyNet" in message
    assert "missing (in the model, not in the file) (10):\n    basic_module.5.basic_module.0.bias" in message
    assert "unexpected (in the file, not in the model) (1):\n    flow.conv1.weight" in message
    assert "spynet_sintel_final-3d2a1287.pth" in message and "spynet_20210409-c6c1bd09.pth" in message


def test_check_spynet_file_hashes_the_bytes(tmp_path):
    path = tmp_path / "spynet.pth"
    basicsr_spynet_file(path, spynet(0))
    found = check_spynet_file(path)
    assert found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and found.path == path.resolve()
    with pytest.raises(CheckpointError, match="not found"):
        check_spynet_file(tmp_path / "absent.pth")


def test_basicvsr_recipes_require_the_weights_or_an_explicit_none(tmp_path):
    for model in ("basicvsr", "basicvsr_m"):
        with pytest.raises(SpynetRequiredError) as err:
            flow_init(model, None)
        message = str(err.value)
        for needle in ("--spynet PATH", "spynet_sintel_final-3d2a1287.pth", "spynet_20210409-c6c1bd09.pth",
                       "https://download.openmmlab.com/mmediting/restorers/basicvsr/spynet_20210409-c6c1bd09.pth",
                       "BasicVSR checkpoint", "--spynet none"):
            assert needle in message
    opted = flow_init("basicvsr_m", NO_SPYNET)
    assert opted.opted_out and opted.spec == "none" and opted.overrides == {}

    path = tmp_path / "spynet.pth"
    basicsr_spynet_file(path, spynet(0))
    given = flow_init("basicvsr_m", path)
    assert given.spec == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    torch.manual_seed(3)
    net = build_model("basicvsr_m", **given.overrides)
    assert same(net.spynet, spynet(0))


def test_models_that_learn_their_own_flow_need_nothing_and_take_no_file(tmp_path):
    for model in ("basicvsr_cpu", "edvr_m", "edvr_cpu"):
        assert flow_init(model, None).spec is None
        assert flow_init(model, "none").spec is None  # nothing to opt out of: nothing recorded
    path = tmp_path / "spynet.pth"
    basicsr_spynet_file(path, spynet(0))
    with pytest.raises(MgvsrError, match="basicvsr_cpu learns its own SpyNet .width 0.25. from scratch"):
        flow_init("basicvsr_cpu", path)
    with pytest.raises(MgvsrError, match="edvr_m has no SpyNet"):
        flow_init("edvr_m", path)
