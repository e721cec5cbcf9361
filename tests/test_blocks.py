"""mgvsr.models.blocks: BasicSR's residual block and init, shared by BasicVSR and EDVR."""

from __future__ import annotations

import torch
import torch.nn as nn

from mgvsr.models.basicvsr import ConvResidualBlocks
from mgvsr.models.blocks import ResidualBlockNoBN, default_init_weights, make_layer
from mgvsr.models.edvr import EDVR


def basicsr_block_params(num_feat: int) -> dict[str, torch.Tensor]:
    """BasicSR's ResidualBlockNoBN.__init__ written out: two convs, then kaiming-normal x 0.1, bias 0."""
    conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
    conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
    with torch.no_grad():
        for conv in (conv1, conv2):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data *= 0.1
            conv.bias.data.fill_(0)
    return {"conv1.weight": conv1.weight, "conv1.bias": conv1.bias,
            "conv2.weight": conv2.weight, "conv2.bias": conv2.bias}


def test_residual_block_init_draws_as_basicsr():
    torch.manual_seed(7)
    expected = basicsr_block_params(8)
    after_expected = torch.rand(3)
    torch.manual_seed(7)
    block = ResidualBlockNoBN(8)
    assert list(block.state_dict()) == list(expected)
    for k, v in block.state_dict().items():
        assert torch.equal(v, expected[k]), k
    assert torch.equal(torch.rand(3), after_expected)  # the same random numbers were consumed


def test_default_init_weights_scale_and_bias_fill():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, 1, 1)
    default_init_weights(nn.Sequential(nn.ReLU(), conv), scale=0.1, bias_fill=0.5)
    # kaiming normal (fan_in, gain sqrt(2)): std sqrt(2 / 576), times 0.1
    assert abs(conv.weight.std().item() / (0.1 * (2 / 576) ** 0.5) - 1) < 0.02
    assert torch.equal(conv.bias, torch.full((64,), 0.5))


def test_block_forward_is_conv_relu_conv_plus_identity():
    torch.manual_seed(0)
    block = ResidualBlockNoBN(4)
    x = torch.randn(2, 4, 6, 5)
    expected = x + block.conv2(torch.relu(block.conv1(x)))
    torch.testing.assert_close(block(x), expected)


def test_both_models_use_the_shared_block():
    layer = make_layer(3, 8)
    assert [type(m) for m in layer] == [ResidualBlockNoBN] * 3
    assert isinstance(ConvResidualBlocks(11, 8, 2).main[2][1], ResidualBlockNoBN)
    edvr = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=2)
    assert isinstance(edvr.reconstruction[1], ResidualBlockNoBN)
    assert isinstance(edvr.feature_extraction[0], ResidualBlockNoBN)


# ---- the fast start (fast_start_init) ----------------------------------------------------------------


def test_fast_start_init_keeps_the_signal_scale_and_starts_at_the_skip():
    """He init passes a LeakyReLU chain's scale on (PyTorch's default shrinks it ~0.4x a layer); ICNR makes
    the pixel shuffle a nearest-neighbour upsampling at first; the last conv is zero."""
    from mgvsr.models.blocks import fast_start_init

    torch.manual_seed(0)
    convs = [nn.Conv2d(32, 32, 3, 1, 1) for _ in range(4)]
    shuffle = nn.Conv2d(32, 32 * 4, 3, 1, 1)
    last = nn.Conv2d(32, 3, 3, 1, 1)

    def scale_after_chain(x):
        for conv in convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
        return x.pow(2).mean().sqrt()

    x = torch.randn(4, 32, 24, 24)
    default_scale = scale_after_chain(x)
    fast_start_init(convs, shuffled=[shuffle], last=last)
    fast_scale = scale_after_chain(x)
    assert default_scale < 0.1 and 0.5 < fast_scale < 2.0
    up = nn.functional.pixel_shuffle(shuffle(x), 2)  # (4, 32, 48, 48): every 2x2 block one value
    torch.testing.assert_close(up[..., ::2, ::2], up[..., 1::2, 1::2])
    assert not last.weight.any() and not last.bias.any()


def test_fast_start_models_output_their_bilinear_skip_and_keep_their_names():
    from mgvsr.models import build_model

    for name in ("basicvsr_cpu", "edvr_cpu"):
        torch.manual_seed(0)
        basicsr = build_model(name, fast_start=False)
        torch.manual_seed(0)
        fast = build_model(name, fast_start=True)
        assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in basicsr.state_dict().items()}
        x = torch.rand(1, 5, 3, 16, 16)
        skip = nn.functional.interpolate(x.flatten(0, 1), scale_factor=4, mode="bilinear", align_corners=False)
        out = fast(x)
        expected = skip.view(1, 5, 3, 64, 64)[:, 2] if out.dim() == 4 else skip.view(1, 5, 3, 64, 64)
        torch.testing.assert_close(out, expected)
        # what the fast start leaves alone is BasicSR's init, drawn in the same order (SpyNet, residual blocks)
        same = [k for k in basicsr.state_dict() if ".conv1." in k or ".conv2." in k or k.startswith("spynet.")]
        assert same and all(torch.equal(fast.state_dict()[k], basicsr.state_dict()[k]) for k in same)
