"""Adversarial objectives and gradient penalties against hand computations."""

import pytest
import torch
import torch.nn.functional as F

from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.penalties import gradient_penalty, r1_penalty

SCORES = torch.tensor([[-1.0, 0.5], [2.0, 0.0]])


def test_lsgan_terms():
    loss = AdversarialLoss("lsgan")
    assert loss.d_real(SCORES).item() == pytest.approx(((SCORES - 1) ** 2).mean().item())
    assert loss.d_fake(SCORES).item() == pytest.approx((SCORES**2).mean().item())
    assert loss.g(SCORES).item() == pytest.approx(((SCORES - 1) ** 2).mean().item())


def test_nsgan_terms():
    loss = AdversarialLoss("nsgan")
    ones, zeros = torch.ones_like(SCORES), torch.zeros_like(SCORES)
    assert loss.d_real(SCORES) == pytest.approx(F.binary_cross_entropy_with_logits(SCORES, ones).item())
    assert loss.d_fake(SCORES) == pytest.approx(F.binary_cross_entropy_with_logits(SCORES, zeros).item())


def test_hinge_terms():
    loss = AdversarialLoss("hinge")
    assert loss.d_real(SCORES).item() == pytest.approx((2 + 0.5 + 0 + 1) / 4)
    assert loss.d_fake(SCORES).item() == pytest.approx((0 + 1.5 + 3 + 1) / 4)
    assert loss.g(SCORES).item() == pytest.approx(-SCORES.mean().item())


def test_wgan_terms():
    loss = AdversarialLoss("wgan")
    assert loss.d_real(SCORES).item() == pytest.approx(-SCORES.mean().item())
    assert loss.d_fake(SCORES).item() == pytest.approx(SCORES.mean().item())


def test_multi_scale_predictions_are_summed():
    loss = AdversarialLoss("lsgan")
    scales = [SCORES, SCORES * 2]
    assert loss.d_fake(scales).item() == pytest.approx(loss.d_fake(SCORES).item() + loss.d_fake(SCORES * 2).item())


def test_unknown_gan_mode():
    with pytest.raises(ConfigError, match="gan_mode='vanilla'"):
        AdversarialLoss("vanilla")


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm():
    weight = torch.randn(3, 4, 4)
    images = torch.randn(2, 3, 4, 4, requires_grad=True)
    scores = (images * weight).flatten(1).sum(1)
    assert r1_penalty(scores, images).item() == pytest.approx(weight.pow(2).sum().item(), rel=1e-5)
    # FUNIT differentiates the mean score: the gradient shrinks by the number of scores (2)
    scores = (images * weight).flatten(1).sum(1)
    assert r1_penalty(scores, images, "mean").item() == pytest.approx(weight.pow(2).sum().item() / 4, rel=1e-5)


def test_r1_is_differentiable_into_the_discriminator():
    weight = torch.randn(3, 4, 4, requires_grad=True)
    images = torch.randn(2, 3, 4, 4, requires_grad=True)
    r1_penalty((images * weight).flatten(1).sum(1), images).backward()
    torch.testing.assert_close(weight.grad, 2 * weight.detach())


def test_gradient_penalty_of_a_linear_critic():
    weight = torch.randn(3, 4, 4)
    critic = lambda x: (x * weight).flatten(1).sum(1)  # noqa: E731
    penalty = gradient_penalty(critic, torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert penalty.item() == pytest.approx((weight.norm() - 1).pow(2).item(), rel=1e-5)
