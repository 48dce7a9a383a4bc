"""Building blocks: shapes, maths and the official parameter counts."""

import pytest
import torch
from conftest import configured_network
from helpers.params import count
from torch import nn

from i2i.errors import ConfigError
from i2i.nets.blocks import ConvBlock, ConvTransposeBlock, ResidualBlock, make_activation
from i2i.nets.init import init_weights
from i2i.nets.norms import LayerNorm2d, make_norm
from i2i.nets.pool import ImagePool


@pytest.mark.parametrize("pad_type", ["zero", "reflect", "replicate"])
def test_conv_block_keeps_size_with_same_padding(pad_type):
    block = ConvBlock(3, 8, 7, 1, 3, norm="in", activation="relu", pad_type=pad_type)
    assert block(torch.randn(2, 3, 16, 16)).shape == (2, 8, 16, 16)


def test_reflection_padding_is_a_layer_and_zero_padding_is_in_the_conv():
    reflect = ConvBlock(3, 8, 3, 1, 1, pad_type="reflect")
    zero = ConvBlock(3, 8, 3, 1, 1, pad_type="zero")
    assert isinstance(reflect[0], nn.ReflectionPad2d) and reflect[1].padding == (0, 0)
    assert isinstance(zero[0], nn.Identity) and zero[1].padding == (1, 1)


def test_conv_transpose_block_doubles_the_size():
    assert ConvTransposeBlock(8, 4, norm="in")(torch.randn(1, 8, 5, 5)).shape == (1, 4, 10, 10)


def test_residual_block_is_identity_when_its_body_outputs_zero():
    block = ResidualBlock(4, norm="none")
    for conv in block.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
    x = torch.randn(1, 4, 6, 6)
    assert torch.equal(block(x), x)


def test_residual_block_has_no_activation_after_the_second_conv():
    block = ResidualBlock(4, norm="in")
    assert isinstance(block.body[1][3], nn.Identity)


def test_layer_norm_matches_hand_computation():
    x = torch.randn(2, 3, 4, 5)
    norm = LayerNorm2d(3)
    flat = x.view(2, -1)
    expected = (x - flat.mean(1).view(2, 1, 1, 1)) / (flat.std(1).view(2, 1, 1, 1) + 1e-5)
    expected = expected * norm.gamma.view(1, 3, 1, 1) + norm.beta.view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), expected)


def test_unknown_norm_and_activation_name_the_choices():
    with pytest.raises(ConfigError, match="norm='xx'.*choose one of none, bn, in"):
        make_norm("xx", 3)
    with pytest.raises(ConfigError, match="activation='gelu'"):
        make_activation("gelu")


def test_resnet_generator_official_parameter_count_and_shape():
    generator = configured_network("cyclegan", "generator")
    assert count(generator) == 11_378_179
    assert generator(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_patch_discriminator_official_parameter_count_and_patch_map():
    discriminator = configured_network("cyclegan", "discriminator")
    assert count(discriminator) == 2_764_737
    assert discriminator.output_size(256) == 30  # the official 30x30 patch map of a 70x70 PatchGAN
    assert discriminator(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_patch_discriminator_refuses_a_size_it_cannot_score():
    with pytest.raises(ConfigError, match="data.image_size=16 .* needs at least 24 px"):
        configured_network("cyclegan", "discriminator", ndf=8).check_input_size(16)


def test_multi_scale_discriminator_official_count_and_one_patch_map_per_scale():
    discriminator = configured_network("munit", "discriminator")
    assert count(discriminator) == 8_271_171  # MUNIT/UNIT dis_a (research/reference_perf.md)
    outputs = discriminator(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]
    assert [tuple(o.shape) for o in discriminator(torch.randn(1, 3, 256, 256))] == [
        (1, 1, 16, 16),
        (1, 1, 8, 8),
        (1, 1, 4, 4),
    ]


def test_multi_scale_discriminator_scales_have_their_own_weights_and_see_pooled_images():
    discriminator = configured_network("munit", "discriminator", dim=4, n_layer=2, num_scales=2)
    first, second = discriminator.cnns
    assert first[0][1].weight is not second[0][1].weight
    x = torch.randn(1, 3, 16, 16)
    seen = []
    second.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    discriminator(x)
    # AvgPool2d(3, 2, 1) that averages only the pixels inside the image (count_include_pad=False)
    corner = x[..., :2, :2].mean(dim=(2, 3))
    torch.testing.assert_close(seen[0][..., 0, 0], corner)
    torch.testing.assert_close(seen[0][..., 1, 1], x[..., 1:4, 1:4].mean(dim=(2, 3)))
    assert seen[0].shape == (1, 3, 8, 8)


def test_multi_scale_discriminator_layers_are_conv_lrelu_without_norm():
    scale = configured_network("munit", "discriminator", dim=8).cnns[0]
    assert [type(block[3]) for block in scale[:-1]] == [nn.LeakyReLU] * 4
    assert all(isinstance(block[2], nn.Identity) for block in scale[:-1])  # norm none
    assert all(isinstance(block[0], nn.ReflectionPad2d) for block in scale[:-1])
    assert (
        isinstance(scale[-1], nn.Conv2d) and scale[-1].kernel_size == (1, 1) and scale[-1].out_channels == 1
    )


def test_multi_scale_discriminator_refuses_a_size_its_coarsest_scale_cannot_score():
    discriminator = configured_network("munit", "discriminator", dim=8)
    discriminator.check_input_size(64)
    with pytest.raises(ConfigError, match="data.image_size=32 .* 3-scale discriminator needs at least 61 px"):
        discriminator.check_input_size(32)
    discriminator(torch.randn(1, 3, 61, 61))  # the arithmetic agrees with the network itself
    with pytest.raises(RuntimeError):  # reflection padding wider than the coarsest map
        discriminator(torch.randn(1, 3, 60, 60))


def test_normal_init_gives_the_official_statistics():
    layer = init_weights(nn.Conv2d(64, 64, 3), "normal", gain=0.02)
    assert abs(layer.weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(layer.bias) == 0


def test_kaiming_init_uses_fan_in():
    layer = init_weights(nn.Conv2d(64, 32, 3), "kaiming", gain=0.02)
    assert abs(layer.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.005


def test_image_pool_returns_new_images_until_full_then_mixes():
    torch.manual_seed(0)
    pool = ImagePool(2)
    first, second = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    assert torch.equal(pool.query(first), first)
    assert torch.equal(pool.query(second), second)
    returned = torch.cat([pool.query(torch.full((1, 3, 2, 2), 2.0)) for _ in range(50)])
    values = set(returned[:, 0, 0, 0].tolist())
    assert values <= {0.0, 1.0, 2.0} and len(values) > 1  # old images come back, new ones pass


def test_image_pool_state_survives_a_state_dict_round_trip():
    pool = ImagePool(3)
    pool.query(torch.randn(2, 3, 4, 4))
    restored = ImagePool(3)
    restored.load_state_dict(pool.state_dict())
    assert torch.equal(restored.images, pool.images)


def test_image_pool_of_size_zero_passes_through():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ImagePool(0).query(x), x)
