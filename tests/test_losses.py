"""Adversarial objectives, gradient penalties and the perceptual loss against hand computations."""

import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.losses.penalties import gradient_penalty, r1_penalty
from i2i.losses.perceptual import DomainInvariantPerceptualLoss, vgg16_weights_file
from i2i.weights import VGG16_FILE, WeightsError

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


def test_terms_of_several_outputs_are_summed_where_the_model_asks():
    loss = AdversarialLoss("lsgan")
    scales = [SCORES, SCORES * 2, SCORES * 3]
    expected = torch.stack([loss.d_fake(SCORES), loss.d_fake(SCORES * 2), loss.d_fake(SCORES * 3)]).sum()
    assert torch.equal(summed_over(loss.d_fake, scales), expected)  # one reduction, bit for bit


def test_discriminator_loss_scores_reals_and_detached_fakes():
    loss = AdversarialLoss("lsgan")
    real, fake = torch.randn(2, 3), torch.randn(2, 3, requires_grad=True)
    weight = torch.tensor(2.0, requires_grad=True)
    value = loss.d(lambda x: weight * x, real, fake)
    torch.testing.assert_close(value, ((2 * real - 1) ** 2).mean() + ((2 * fake) ** 2).mean())
    value.backward()
    assert fake.grad is None and weight.grad is not None


def test_discriminator_loss_of_several_outputs_sums_each_side_over_them():
    loss = AdversarialLoss("lsgan")
    real, fake = torch.randn(2, 3), torch.randn(2, 3, requires_grad=True)
    weight = torch.tensor(2.0, requires_grad=True)
    value = loss.d_summed(lambda x: [weight * x, x], real, fake)
    expected_real = ((2 * real - 1) ** 2).mean() + ((real - 1) ** 2).mean()
    expected = expected_real + ((2 * fake) ** 2).mean() + (fake**2).mean()
    torch.testing.assert_close(value, expected)
    value.backward()
    assert fake.grad is None and weight.grad is not None


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
    assert r1_penalty(scores, images, "mean").item() == pytest.approx(
        weight.pow(2).sum().item() / 4, rel=1e-5
    )


def test_r1_is_differentiable_into_the_discriminator():
    weight = torch.randn(3, 4, 4, requires_grad=True)
    images = torch.randn(2, 3, 4, 4, requires_grad=True)
    r1_penalty((images * weight).flatten(1).sum(1), images).backward()
    torch.testing.assert_close(weight.grad, 2 * weight.detach())


def test_gradient_penalty_of_a_linear_critic():
    weight = torch.randn(3, 4, 4)
    critic = lambda x: (x * weight).flatten(1).sum(1)
    penalty = gradient_penalty(critic, torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert penalty.item() == pytest.approx((weight.norm() - 1).pow(2).item(), rel=1e-5)


# ------------------------------------------------------------------ domain-invariant perceptual loss
def official_relu5_3(features: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """torchvision's layers run as the official Vgg16.forward does: no pooling after relu4_3."""
    for index, layer in enumerate(features[:30]):
        x = x if index == 23 else layer(x)
    return x


def test_perceptual_loss_is_mse_of_instance_normalised_relu5_3(vgg_file):
    path, features = vgg_file
    loss = DomainInvariantPerceptualLoss(str(path), allow_unpublished=True)
    image, source = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    prepare = lambda x: ((x + 1) / 2 - mean) / std
    fake, real = official_relu5_3(features, prepare(image)), official_relu5_3(features, prepare(source))
    assert fake.shape == (2, 512, 4, 4)  # 1/8 of the input: three poolings, not four
    expected = F.mse_loss(F.instance_norm(fake), F.instance_norm(real))
    value = loss(image, source)
    torch.testing.assert_close(value, expected)
    assert value > 0


def test_perceptual_loss_is_zero_for_the_source_and_trains_only_the_translation(vgg_file):
    loss = DomainInvariantPerceptualLoss(str(vgg_file[0]), allow_unpublished=True)
    source = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(source, source).item() == pytest.approx(0, abs=1e-6)
    image, target = torch.rand(1, 3, 32, 32).requires_grad_(), source.clone().requires_grad_()
    loss(image, target).backward()
    assert image.grad.abs().sum() > 0 and target.grad is None


def test_perceptual_loss_finds_torchvisions_file_in_the_hub_cache(vgg_file, tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    vgg_file[0].rename(hub / "checkpoints" / VGG16_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert vgg16_weights_file(None) == hub / "checkpoints" / VGG16_FILE
    DomainInvariantPerceptualLoss(None, allow_unpublished=True).load()


def test_perceptual_loss_offline_without_weights_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(ConfigError) as error:
        DomainInvariantPerceptualLoss(None, allow_unpublished=True).load()
    message = str(error.value)
    assert "\n" not in message and "loss.vgg_weights_path" in message
    assert f"place torchvision's {VGG16_FILE} in {tmp_path / 'empty_hub' / 'checkpoints'}" in message
    with pytest.raises(ConfigError, match="loss.vgg_weights_path='/no/vgg.pth' .* no such file"):
        DomainInvariantPerceptualLoss("/no/vgg.pth", allow_unpublished=True).load()


def test_perceptual_loss_refuses_a_file_that_is_not_vgg16(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="not a torchvision VGG16 state dict"):
        DomainInvariantPerceptualLoss(str(path), allow_unpublished=True).load()


def test_perceptual_loss_checks_the_published_digest_before_reading_the_file(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / VGG16_FILE
    path.write_bytes(pickle.dumps(WritesMarker(str(marker))))
    with pytest.raises(
        WeightsError, match=f"{path}: SHA-256 [0-9a-f]{{64}} is not the published 397923af"
    ) as error:
        DomainInvariantPerceptualLoss(str(path), allow_unpublished=False).load()
    assert "loss.allow_unpublished_weights=true" in str(error.value) and not marker.exists()
    with pytest.raises(ConfigError, match="not a readable PyTorch file"):
        DomainInvariantPerceptualLoss(str(path), allow_unpublished=True).load()
    assert not marker.exists()


class WritesMarker:
    """A pickle that writes a file when it is unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "ran"))
