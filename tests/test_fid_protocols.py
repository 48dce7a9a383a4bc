"""`metrics.protocol`: how images are resized and scaled for the FID/KID Inception. Each protocol's
Inception input is checked against a bilinear resize written out here from the two conventions
(TensorFlow 1.x: source = output x in/out; torch's align_corners=False: half-pixel centres), not
from the libraries that implement them."""

from dataclasses import replace

import pytest
import torch
from hydra.utils import instantiate
from test_metrics_real import SETTINGS

from i2i.errors import ConfigError
from i2i.metrics.extractors import build_extractor
from i2i.metrics.protocols import Evaluator


def bilinear_axis(
    size_in: int, size_out: int, half_pixel: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower index, upper index, upper weight) of each output position along one axis."""
    scale = size_in / size_out
    out = torch.arange(size_out, dtype=torch.float64)
    source = ((out + 0.5) * scale - 0.5).clamp(min=0) if half_pixel else out * scale
    lower = source.floor().long().clamp(max=size_in - 1)
    upper = (lower + 1).clamp(max=size_in - 1)
    return lower, upper, source - lower


def reference_resize(images: torch.Tensor, size: int, half_pixel: bool) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to size x size, one axis after the other, in float64."""
    x = images.double()
    lower, upper, weight = bilinear_axis(x.shape[2], size, half_pixel)
    x = x[:, :, lower] * (1 - weight)[:, None] + x[:, :, upper] * weight[:, None]
    lower, upper, weight = bilinear_axis(x.shape[3], size, half_pixel)
    return x[..., lower] * (1 - weight) + x[..., upper] * weight


def inception_input(extractor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(what the extractor feeds its first Inception layer, the features) for uint8 `images`."""
    seen = []
    first = next(m for n, m in extractor.network.named_modules() if n.endswith("Conv2d_1a_3x3"))
    handle = first.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        features = extractor(images)
    finally:
        handle.remove()
    return seen[0], features


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(
        0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )


@pytest.fixture
def extractors(metric_weights_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    return {
        protocol: build_extractor("inception", None, False, False, allow_unpublished=True, protocol=protocol)
        for protocol in ("torch_fidelity", "pytorch_fid")
    }


def test_torch_fidelity_protocol_is_the_tensorflow_resize_and_scaling(extractors, images):
    network_input, _ = inception_input(extractors["torch_fidelity"], images)
    expected = (reference_resize(images, 299, half_pixel=False) - 128) / 128
    assert network_input.shape == (2, 3, 299, 299)
    assert torch.allclose(network_input.double(), expected, atol=1e-5)


def test_pytorch_fid_protocol_is_the_torch_resize_and_scaling(extractors, images):
    network_input, _ = inception_input(extractors["pytorch_fid"], images)
    expected = 2 * reference_resize(images / 255, 299, half_pixel=True) - 1
    assert torch.allclose(network_input.double(), expected, atol=1e-5)
    assert extractors["pytorch_fid"].name == "inception-v3-compat (pytorch-fid input)"


def test_pytorch_fid_runs_the_same_inception_on_its_own_input(extractors, images):
    """The pytorch_fid extractor's features are those of torch-fidelity's own forward pass given the
    pytorch-fid input in place of its own (swapped in at the first layer): only the input differs."""
    pytorch_fid, torch_fidelity = extractors["pytorch_fid"], extractors["torch_fidelity"]
    network_input, features = inception_input(pytorch_fid, images)
    first = torch_fidelity.network.Conv2d_1a_3x3
    handle = first.register_forward_pre_hook(lambda module, args: (network_input,))
    try:
        swapped = torch_fidelity(images)
    finally:
        handle.remove()
    assert torch.allclose(features, swapped, atol=1e-5)


def test_the_two_protocols_give_different_features_at_256_px(extractors):
    images = torch.randint(
        0, 256, (2, 3, 256, 256), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    inputs = {protocol: inception_input(e, images) for protocol, e in extractors.items()}
    (fidelity_input, fidelity_features), (fid_input, fid_features) = inputs.values()
    # in pixels: the resizes alone differ by ~7/255 on noise, as measured in extractors.py
    pixel_difference = ((fidelity_input * 128 + 128) - (fid_input + 1) * 127.5).abs().mean()
    assert 5 < pixel_difference < 9
    assert (fidelity_features - fid_features).abs().max() > 1e-2


def test_protocol_is_a_checked_setting_recorded_with_every_score():
    with pytest.raises(ConfigError, match=r"metrics.protocol='clean_fid' is not allowed"):
        replace(SETTINGS, protocol="clean_fid")
    with pytest.raises(ConfigError, match=r"metrics.antialias=True.*pytorch_fid"):
        replace(SETTINGS, protocol="pytorch_fid", antialias=True)


def test_metrics_config_defaults_to_torch_fidelity_and_takes_pytorch_fid(make_cfg):
    settings = instantiate(make_cfg().metrics)
    assert settings.protocol == "torch_fidelity"
    settings = instantiate(make_cfg("metrics.protocol=pytorch_fid").metrics)
    assert settings.protocol == "pytorch_fid"


def test_scores_name_the_resize_they_were_computed_with(extractors):
    class Shift:
        device = torch.device("cpu")

        def translate(self, x, direction):
            return (x + 0.1).clamp(-1, 1)

    images = {
        d: torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1
        for i, d in enumerate("AB")
    }
    settings = replace(SETTINGS, names=("kid",), protocol="pytorch_fid")
    scores = Evaluator(settings, extractor=extractors["pytorch_fid"]).evaluate(Shift(), images)
    assert all("pytorch-fid input: x / 255, torch bilinear to 299 px" in s.protocol for s in scores)
    assert all(s.extractor == "inception-v3-compat (pytorch-fid input)" for s in scores)
