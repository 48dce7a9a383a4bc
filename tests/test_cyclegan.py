"""CycleGAN: the official architecture, its losses and update order, and a tiny end-to-end run."""

import json

import pytest
import torch
from helpers.params import count

from i2i.errors import ConfigError
from i2i.models.cyclegan import CycleGANLoss
from i2i.train import build_model, train


def test_paper_preset_matches_the_official_parameter_count(make_cfg):
    cfg = make_cfg("model=cyclegan", "preset=paper", "data.image_size=256", fast=False)
    with torch.device("meta"):  # counted without allocating the weights
        model = build_model(cfg)
    assert count(model.G_ab) == count(model.G_ba) == 11_378_179
    assert count(model.D_a) == count(model.D_b) == 2_764_737
    assert count(model) == 28_285_832


def test_losses_are_finite_and_hand_fakes_from_the_generator_to_the_discriminator(make_cfg):
    model = build_model(make_cfg("model=cyclegan"))
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    updates = model.updates(0)
    assert [u.name for u in updates] == ["g", "d"]  # the official order: G first
    carry = {}
    g_loss, g_logs = updates[0].loss(batch, carry)
    assert set(g_logs) == {"gan", "cycle", "identity"} and torch.isfinite(g_loss)
    assert not carry["fake_A"].requires_grad and carry["fake_B"].shape == (2, 3, 32, 32)
    d_loss, d_logs = updates[1].loss(batch, carry)
    assert set(d_logs) == {"d_a", "d_b"} and torch.isfinite(d_loss)
    expected = model.weights.gan_w * g_logs["gan"] + 10 * g_logs["cycle"] + 5 * g_logs["identity"]
    torch.testing.assert_close(g_loss, expected)


def test_identity_term_is_skipped_when_its_weight_is_zero(make_cfg):
    model = build_model(make_cfg("model=cyclegan", "loss.identity_w=0"))
    calls = []
    model.G_ab.register_forward_hook(lambda *args: calls.append(1))
    batch = {"A": torch.zeros(1, 3, 32, 32), "B": torch.zeros(1, 3, 32, 32)}
    _, logs = model.generator_loss(batch, {})
    assert logs["identity"].item() == 0 and len(calls) == 2  # A->B and the cycle of B, no identity


def test_translate_runs_each_direction_and_refuses_options(make_cfg):
    model = build_model(make_cfg("model=cyclegan"))
    x = torch.zeros(2, 3, 32, 32)
    assert model.translate(x, "AtoB").shape == model.translate(x, "BtoA").shape == (2, 3, 32, 32)
    with pytest.raises(TypeError, match="no options"):
        model.translate(x, "AtoB", n_styles=3)


def test_negative_weight_and_unknown_gan_mode_name_the_key():
    with pytest.raises(ConfigError, match="loss.cycle_w=-1 is not allowed: must be >= 0"):
        CycleGANLoss(gan_mode="lsgan", gan_w=1, cycle_w=-1, identity_w=5)
    with pytest.raises(ConfigError, match="loss.gan_mode='wasserstein'"):
        CycleGANLoss(gan_mode="wasserstein", gan_w=1, cycle_w=10, identity_w=5)


def test_image_size_must_suit_the_generator(make_cfg):
    with pytest.raises(ConfigError, match="data.image_size=30 .* multiple of 4"):
        build_model(make_cfg("model=cyclegan", "data.image_size=30"))


@pytest.mark.slow
def test_tiny_end_to_end_run_writes_samples_metrics_and_a_checkpoint(make_cfg, tmp_path):
    metrics, objects = train(make_cfg("model=cyclegan"))
    assert objects["model"].iteration == 4
    assert set(metrics) == {"content_iou_AtoB", "content_iou_BtoA", "domain_acc_AtoB", "domain_acc_BtoA"}
    assert all(0 <= v <= 1 for v in metrics.values())
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "iter_0000002.png",
        "iter_0000004.png",
    ]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["iteration"] == 4 and report["metrics"] == metrics
    assert "train/g_cycle" in (tmp_path / "csv" / "metrics.csv").read_text()
