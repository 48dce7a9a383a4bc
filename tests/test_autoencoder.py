"""The MUNIT-family blocks: AdaIN maths and parameter order, encoders, decoder, MLP; official counts."""

import pytest
import torch
import torch.nn.functional as F
from conftest import configured_network, network_factory
from helpers.params import count
from torch import nn

from i2i.nets.adain import AdaINResidualBlock, AdaptiveInstanceNorm2d, adaptive_instance_norm
from i2i.nets.blocks import ActFirstResidualBlock
from i2i.nets.fewshot import FewShotGenerator


def test_adain_equals_the_official_batch_norm_formulation():
    x, mean, std = torch.randn(2, 3, 5, 5), torch.randn(2, 3), torch.rand(2, 3) + 0.5
    # NVlabs/MUNIT AdaptiveInstanceNorm2d: batch_norm in training mode over a (1, B*C, H, W) view
    official = F.batch_norm(
        x.reshape(1, 6, 5, 5), torch.zeros(6), torch.ones(6), std.reshape(6), mean.reshape(6), True, 0.1, 1e-5
    ).view(2, 3, 5, 5)
    torch.testing.assert_close(adaptive_instance_norm(x, torch.cat([mean, std], 1)), official)


def test_adain_output_has_the_given_statistics():
    out = AdaptiveInstanceNorm2d(4)(
        torch.randn(3, 4, 8, 8) * 5 + 2, torch.cat([torch.full((3, 4), 1.5), torch.full((3, 4), 0.5)], 1)
    )
    torch.testing.assert_close(out.mean(dim=(2, 3)), torch.full((3, 4), 1.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3), correction=0), torch.full((3, 4), 0.5), atol=1e-3, rtol=0)


def test_residual_block_consumes_mean_then_std_per_layer_in_module_order():
    block = AdaINResidualBlock(2)
    seen = []
    block.first.norm.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    block.second.norm.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    params = torch.arange(8.0).view(1, 8)
    block(torch.randn(1, 2, 4, 4), params)
    assert seen[0].tolist() == [[0, 1, 2, 3]] and seen[1].tolist() == [[4, 5, 6, 7]]  # [mean | std] each


def test_decoder_splits_the_mlp_output_over_its_adain_layers():
    decoder = configured_network("funit", "decoder", in_channels=8, n_upsample=1, n_res=2, up_norm="adain")
    assert decoder.param_sizes == [32, 32, 8] and decoder.num_adain_params == 72
    out = decoder(torch.randn(2, 8, 4, 4), torch.randn(2, 72))
    assert out.shape == (2, 3, 8, 8) and out.abs().max() <= 1


def test_decoder_without_adain_needs_no_parameters():
    decoder = configured_network(
        "funit", "decoder", in_channels=8, n_upsample=2, n_res=1, res_norm="in", up_norm="ln"
    )
    assert decoder.num_adain_params == 0
    assert decoder(torch.randn(1, 8, 4, 4)).shape == (1, 3, 16, 16)


def test_encoders_give_the_official_shapes():
    content = configured_network("funit", "content_encoder", dim=8, n_downsample=2, n_res=1)
    style = configured_network("funit", "class_encoder", dim=8, n_downsample=4, style_dim=5)
    x = torch.randn(2, 3, 32, 32)
    assert content(x).shape == (2, 32, 8, 8) and content.out_channels == 32
    assert style(x).shape == (2, 5)


def test_official_generator_parameter_counts():
    """MUNIT gen_a 15,026,187; UNIT gen_a 11,140,483; FUNIT gen 29,866,435 (research/reference_perf.md)."""
    assert count(configured_network("munit", "generator")) == 15_026_187
    assert count(configured_network("unit", "generator")) == 11_140_483
    parts = ("content_encoder", "class_encoder", "decoder", "mlp")
    funit = FewShotGenerator.assemble(**{part: network_factory("funit", part) for part in parts})
    assert count(funit) == 29_866_435


def test_mlp_layers_and_final_activation():
    mlp = configured_network(
        "funit", "mlp", in_dim=8, out_dim=4, hidden_dim=16, n_blocks=3, final_activation="relu"
    )
    assert [layer[0].out_features for layer in mlp] == [16, 16, 4]
    assert (mlp(torch.randn(5, 8, 1, 1)) >= 0).all()


@pytest.mark.parametrize(("fin", "fout"), [(8, 8), (8, 16)])
def test_act_first_residual_block_keeps_its_input_intact(fin, fout):
    block = ActFirstResidualBlock(fin, fout)
    x = torch.randn(1, fin, 6, 6)
    before = x.clone()
    out = block(x)
    assert out.shape == (1, fout, 6, 6) and torch.equal(x, before)
    assert isinstance(block.shortcut, nn.Conv2d if fin != fout else nn.Identity)
