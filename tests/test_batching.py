"""One pass over joined inputs (`i2i.nets.batching`): the same results as separate calls."""

from typing import NamedTuple

import pytest
import torch
from conftest import configured_network
from torch import Tensor, nn

from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.nets.batching import in_one_pass, mixes_samples
from i2i.nets.blocks import ConvBlock
from i2i.nets.discriminators import MultiScaleDiscriminator


class CountingNet(nn.Module):
    """A per-sample conv net that counts its forward passes."""

    def __init__(self, norm: str = "in") -> None:
        super().__init__()
        self.body = ConvBlock(3, 4, 3, 1, 1, norm=norm)
        self.passes = 0

    def forward(self, x: Tensor) -> Tensor:
        self.passes += 1
        return self.body(x)


def test_per_sample_network_runs_once_and_matches_separate_calls():
    torch.manual_seed(0)
    net = CountingNet("in")
    a, b = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)
    separate = [net(a), net(b)]
    net.passes = 0
    joined = in_one_pass(net, (a,), (b,))
    assert net.passes == 1
    assert [t.shape for t in joined] == [(1, 4, 8, 8), (2, 4, 8, 8)]
    for one, other in zip(joined, separate):
        torch.testing.assert_close(one, other)


@pytest.mark.parametrize(
    "layer",
    [nn.BatchNorm2d(4), nn.InstanceNorm2d(4, track_running_stats=True)],
    ids=["batch_norm", "instance_norm_with_running_stats"],
)
def test_network_with_batch_statistics_is_called_once_per_input(layer):
    net = CountingNet("none")
    net.body.append(layer)
    assert mixes_samples(net)
    in_one_pass(net, (torch.randn(2, 3, 8, 8),), (torch.randn(2, 3, 8, 8),))
    assert net.passes == 2


def test_inputs_of_different_sizes_are_not_joined():
    net = CountingNet()
    outputs = in_one_pass(net, (torch.randn(1, 3, 8, 8),), (torch.randn(1, 3, 16, 16),))
    assert net.passes == 2 and outputs[1].shape == (1, 4, 16, 16)


def test_a_plain_function_counts_as_mixing_samples():
    assert mixes_samples(lambda x: x)
    assert not mixes_samples(CountingNet().forward)  # a bound method is judged by its module


def test_bound_method_with_several_arguments_matches_separate_calls():
    torch.manual_seed(0)
    generator = configured_network(
        "munit", "generator", dim=8, style_dim=4, n_res=1, mlp_dim=16, style_downsample=2
    )
    contents = [torch.randn(1, 32, 4, 4) for _ in range(2)]
    styles = [torch.randn(1, 4) for _ in range(2)]
    separate = [generator.decode(c, s) for c, s in zip(contents, styles)]
    joined = in_one_pass(generator.decode, *zip(contents, styles))
    for one, other in zip(joined, separate):
        torch.testing.assert_close(one, other, rtol=1e-4, atol=1e-5)


class Scores(NamedTuple):
    logit: Tensor
    extra: list[Tensor]


def test_outputs_are_split_field_by_field():
    def two_heads(x: Tensor) -> Scores:
        return Scores(x * 2, [x + 1, x - 1])

    net = nn.Identity()
    net.forward = two_heads  # a module without batch statistics, returning a named tuple of lists
    first, second = in_one_pass(net, (torch.zeros(1, 1),), (torch.ones(2, 1),))
    assert isinstance(first, Scores) and first.logit.shape == (1, 1) and second.extra[0].shape == (2, 1)
    torch.testing.assert_close(second.extra[1], torch.zeros(2, 1))


@pytest.mark.parametrize(
    "make_discriminator",
    [
        lambda: configured_network("munit", "discriminator", dim=8, n_layer=2, num_scales=2),
        lambda: configured_network("cyclegan", "discriminator", ndf=8),
    ],
    ids=["multi_scale", "patch_in"],
)
def test_discriminator_loss_in_one_pass_equals_the_separate_terms(make_discriminator):
    torch.manual_seed(0)
    discriminator, loss = make_discriminator(), AdversarialLoss("lsgan")
    real, fake = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64, requires_grad=True)
    if isinstance(discriminator, MultiScaleDiscriminator):
        real_scores, fake_scores = discriminator(real), discriminator(fake)
        expected = summed_over(loss.d_real, real_scores) + summed_over(loss.d_fake, fake_scores)
        joined = loss.d_summed(discriminator, real, fake)
    else:
        expected = loss.d_real(discriminator(real)) + loss.d_fake(discriminator(fake))
        joined = loss.d(discriminator, real, fake)
    torch.testing.assert_close(joined, expected, rtol=1e-5, atol=1e-6)
    joined.backward()
    assert fake.grad is None  # the fakes are detached
