"""KID/FID/LPIPS: offline weight loading, the error without weights, the protocols' maths."""

import hashlib
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
import torch
from scipy import linalg

from i2i.metrics.extractors import build_extractor, build_lpips
from i2i.metrics.protocols import (
    DistributionMetrics,
    Evaluator,
    MetricSettings,
    SubsetKID,
    per_class_scores,
    shard,
    to_uint8,
)
from i2i.weights import INCEPTION_FILE, WeightsError

SETTINGS = MetricSettings(
    extractor="inception",
    inception_weights=None,
    lpips_net="alex",
    lpips_weights=None,
    allow_download=False,
    allow_unpublished_weights=True,  # the random stand-ins of metric_weights.py
    antialias=False,
    names=("kid", "fid", "lpips_diversity"),
    kid_variant="target",
    kid_subsets=10,
    kid_max_subset_size=1000,
    kid_seed=0,
    lpips_inputs=4,
    lpips_styles=3,
    batch_size=8,
)


@pytest.fixture
def torch_home(metric_weights_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    return metric_weights_home


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    # a download attempt would call this; the lookup must refuse before ever getting here
    monkeypatch.setattr(
        torch.hub, "load_state_dict_from_url", mock.Mock(side_effect=AssertionError("download"))
    )
    return tmp_path / "empty"


def file_sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inception_loads_the_file_in_the_hub_cache(torch_home):
    path = torch_home / "hub" / "checkpoints" / INCEPTION_FILE
    extractor = build_extractor("inception", None, False, antialias=False, allow_unpublished=True)
    saved = torch.load(path, weights_only=True)
    assert torch.equal(extractor.network.Conv2d_1a_3x3.conv.weight, saved["Conv2d_1a_3x3.conv.weight"])
    assert extractor.weights == path and extractor.weights_sha256 == file_sha256(path)
    assert not extractor.proxy and extractor.num_features == 2048
    features = extractor(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert features.shape == (2, 2048) and features.std() > 0.01


def test_inception_loads_an_explicit_path_with_an_empty_cache(metric_weights_home, empty_torch_home):
    path = metric_weights_home / "hub" / "checkpoints" / INCEPTION_FILE
    extractor = build_extractor("inception", str(path), False, antialias=False, allow_unpublished=True)
    assert extractor.weights == path


def test_without_weights_one_line_names_the_file_and_where_to_put_it(empty_torch_home):
    with pytest.raises(WeightsError) as error:
        build_extractor("inception", None, False, antialias=False, allow_unpublished=True)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"the FID Inception weights are not on this machine: place {INCEPTION_FILE} in "
        f"{empty_torch_home / 'hub' / 'checkpoints'}/ (or pass metrics.inception_weights=<path>"
    )
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth"):
        build_lpips("inception", "alex", None, allow_download=False, allow_unpublished=True)
    with pytest.raises(WeightsError, match=r"metrics.inception_weights=/no/such.pth: no such file"):
        build_extractor("inception", "/no/such.pth", False, antialias=False, allow_unpublished=True)


def test_allow_download_fetches_into_the_hub_cache_and_verifies_the_file(empty_torch_home, monkeypatch):
    from metric_weights import random_inception_state

    def fake_download(url, destination, *args, **kwargs):
        assert url.endswith("/" + INCEPTION_FILE)
        torch.save(random_inception_state(), destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    cached = empty_torch_home / "hub" / "checkpoints" / INCEPTION_FILE
    with pytest.raises(WeightsError, match=r"SHA-256 [0-9a-f]{64} is not the published 6726825d"):
        build_extractor("inception", None, True, antialias=False, allow_unpublished=False)
    assert not list(cached.parent.iterdir())  # the refused download is not left in the cache
    extractor = build_extractor("inception", None, True, antialias=False, allow_unpublished=True)
    assert extractor.weights == cached
    assert extractor.weights_sha256 == file_sha256(cached)


def test_lpips_backbone_loads_from_the_cache_and_from_a_path(metric_weights_home, empty_torch_home):
    path = metric_weights_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    saved = torch.load(path, weights_only=True)
    lpips = build_lpips("inception", "alex", str(path), allow_download=False, allow_unpublished=True)
    assert torch.equal(lpips.metric.net.net.slice1[0].weight, saved["features.0.weight"])
    assert lpips.weights == path and not lpips.proxy
    assert torch.hub.get_dir() == str(empty_torch_home / "hub")  # the temporary cache is gone again


def test_proxy_networks_are_seeded_and_named_proxy(empty_torch_home):
    first, second = (build_extractor("proxy", None, False, False, False) for _ in range(2))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(first(images), second(images)) and first.proxy and first.weights_sha256 is None
    assert build_lpips("proxy", "alex", None, False, False).proxy


def test_uint8_quantisation_matches_save_image():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
    expected = ((x.clamp(-1, 1) + 1) / 2).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    assert torch.equal(to_uint8(x), expected)


def test_kid_is_the_unbiased_polynomial_mmd_by_hand():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(6, 4, generator=generator), torch.randn(5, 4, generator=generator) + 0.5
    kid = SubsetKID(4, subsets=3, max_subset_size=1000, seed=0)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    mean, std = kid.compute()
    assert kid.subset_size == 5  # min(max, #real, #fake), as clean-fid

    def mmd(x: np.ndarray, y: np.ndarray) -> float:
        k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3
        m = len(x)
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        return (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2

    with torch.random.fork_rng():
        torch.manual_seed(0)
        values = []
        for _ in range(3):
            x = real[torch.randperm(6)[:5]].double().numpy()
            y = fake[torch.randperm(5)[:5]].double().numpy()
            values.append(mmd(x, y))
    assert float(mean) == pytest.approx(np.mean(values), rel=1e-4)
    assert float(std) == pytest.approx(np.std(values), rel=1e-3, abs=1e-6)


def test_fid_is_the_frechet_distance_by_hand():
    generator = torch.Generator().manual_seed(1)
    real, fake = torch.randn(40, 3, generator=generator), torch.randn(30, 3, generator=generator) * 2 + 1
    metrics = DistributionMetrics(replace(SETTINGS, names=("fid",)), 3)
    metrics.update_real(real)
    metrics.update_fake(fake)
    value, _, _ = metrics.compute()["fid"]
    r, f = real.double().numpy(), fake.double().numpy()
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    expected = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s_r + s_f - 2 * linalg.sqrtm(s_r @ s_f).real)
    assert value == pytest.approx(expected, rel=1e-4)


def test_mean_kid_weights_target_and_source_as_the_ugatit_code():
    generator = torch.Generator().manual_seed(2)
    target, source, fake = (torch.randn(8, 4, generator=generator) + shift for shift in (0.0, 1.0, 0.3))
    metrics = DistributionMetrics(replace(SETTINGS, names=("kid",), kid_variant="mean"), 4)
    metrics.update_real(target, source)
    metrics.update_fake(fake)
    results = metrics.compute()
    alone = {}
    for name, real in (("target", target), ("source", source)):
        kid = SubsetKID(4, 10, 1000, 0)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        alone[name] = 100 * float(kid.compute()[0])
    assert results["kid"][0] == pytest.approx(alone["target"], rel=1e-5)
    assert results["mean_kid"][0] == pytest.approx(
        (0.02 * alone["target"] + 0.98 * alone["source"]) / 2, rel=1e-5
    )


def test_real_statistics_survive_reset():
    metrics = DistributionMetrics(SETTINGS, 4)
    metrics.update_real(torch.randn(6, 4))
    metrics.update_fake(torch.randn(6, 4))
    metrics.reset()
    assert int(metrics.fid.real_features_num_samples) == 6 and int(metrics.fid.fake_features_num_samples) == 0
    assert sum(len(f) for f in metrics.kid.real_features) == 6 and not metrics.kid.fake_features


class Shifter(torch.nn.Module):
    """A stand-in `Translator`: adds `shift` to the images."""

    def __init__(self, shift: float = 0.0, style_gap: float = 0.0) -> None:
        super().__init__()
        self.shift, self.style_gap = shift, style_gap

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def translate(self, x, direction):
        return (x + self.shift).clamp(-1, 1)


class StyleShifter(Shifter):
    """A stand-in `StyleTranslator`: style k adds k * style_gap to the shifted images."""

    def translate_styles(self, x, direction, n_styles, style_seed=None):
        return torch.stack(
            [(x + self.shift + k * self.style_gap).clamp(-1, 1) for k in range(n_styles)], dim=1
        )

    def translate_reference(self, x, direction, reference):
        raise AssertionError("LPIPS diversity samples styles")


def smooth_images(count: int, seed: int, brightness: float) -> torch.Tensor:
    """Blurred noise around a brightness, in [-1, 1]: a distribution the extractors can tell apart."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.nn.functional.avg_pool2d(torch.randn(count, 3, 32, 32, generator=generator), 5, 1, 2)
    return (brightness + noise).clamp(-1, 1)


def test_identical_sets_score_about_zero_and_different_sets_more(empty_torch_home):
    # the proxy features keep this fast; the protocol code is the same for every extractor
    a, b = smooth_images(16, 0, -0.5), smooth_images(16, 1, 0.5)
    evaluator = Evaluator(replace(SETTINGS, extractor="proxy"))
    same = {s.metric: s.value for s in evaluator.distribution_scores(Shifter(), "AtoB", a, a, 0, 1)}
    evaluator = Evaluator(SETTINGS, extractor=evaluator.extractor)
    apart = {s.metric: s.value for s in evaluator.distribution_scores(Shifter(), "AtoB", a, b, 0, 1)}
    assert abs(same["fid_proxy_AtoB"]) < 1e-3 * apart["fid_proxy_AtoB"] and apart["fid_proxy_AtoB"] > 0
    assert abs(same["kid_proxy_AtoB"]) < 0.1 * apart["kid_proxy_AtoB"] and apart["kid_proxy_AtoB"] > 0


def test_lpips_diversity_is_zero_for_one_style_and_grows_with_the_styles(torch_home):
    images = {"A": smooth_images(4, 0, 0.0), "B": smooth_images(4, 1, 0.0)}
    evaluator = Evaluator(replace(SETTINGS, names=("lpips_diversity",)))
    collapsed = evaluator.evaluate(StyleShifter(style_gap=0.0), images)
    diverse = evaluator.evaluate(StyleShifter(style_gap=0.4), images)
    assert [s.metric for s in diverse] == ["lpips_diversity_AtoB", "lpips_diversity_BtoA"]
    assert all(s.value < 1e-6 for s in collapsed) and all(s.value > 0.01 for s in diverse)
    assert (
        diverse[0].n_images == 4 and "3 pairs of 3 random-style outputs of each of 4" in diverse[0].protocol
    )
    assert evaluator.evaluate(Shifter(style_gap=0.4), images) == []  # no styles: no score


def test_proxy_scores_carry_the_proxy_suffix(empty_torch_home):
    images = {"A": smooth_images(4, 0, -0.5), "B": smooth_images(4, 1, 0.5)}
    scores = Evaluator(replace(SETTINGS, extractor="proxy")).evaluate(StyleShifter(style_gap=0.4), images)
    assert {s.metric for s in scores} == {
        f"{name}_proxy_{d}" for name in ("fid", "kid", "lpips_diversity") for d in ("AtoB", "BtoA")
    }
    assert all(s.extractor.endswith("proxy") for s in scores)
    logs = next(s for s in scores if s.name == "kid_proxy").logs()
    assert set(logs) == {"kid_proxy_AtoB", "kid_proxy_std_AtoB"}


def test_per_class_protocol_averages_over_classes(empty_torch_home):
    extractor = build_extractor("proxy", None, False, False, False)
    settings = replace(SETTINGS, extractor="proxy", kid_variant="mean")
    dark, bright = smooth_images(8, 0, -0.5), smooth_images(8, 1, 0.5)
    scores = {
        s.metric: s
        for s in per_class_scores([("cat", dark, dark), ("dog", dark, bright)], settings, extractor)
    }
    assert set(scores) == {
        "fid_proxy_cat", "kid_proxy_cat", "fid_proxy_dog", "kid_proxy_dog", "mfid_proxy", "mkid_proxy"
    }  # fmt: skip
    assert scores["mfid_proxy"].value == pytest.approx(
        (scores["fid_proxy_cat"].value + scores["fid_proxy_dog"].value) / 2
    )
    assert scores["mfid_proxy"].n_images == 16 and "mean over 2 classes" in scores["mfid_proxy"].protocol


def test_shards_are_contiguous_and_cover_the_set():
    images = torch.arange(7)
    assert torch.equal(torch.cat([shard(images, r, 2) for r in range(2)]), images)


def test_settings_refuse_bad_values():
    with pytest.raises(Exception, match=r"metrics.extractor='random' is not allowed"):
        replace(SETTINGS, extractor="random")
    with pytest.raises(Exception, match=r"metrics.lpips_styles=1 is not allowed"):
        replace(SETTINGS, lpips_styles=1)
    with pytest.raises(Exception, match=r"metrics.names='is' is not allowed"):
        replace(SETTINGS, names=("is",))
