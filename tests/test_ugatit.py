"""U-GAT-IT: AdaILN/ILN maths, CAM, the discriminators' depth, the official parameter counts, the
losses and update order, attention maps, and a tiny end-to-end run."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import configured_network
from helpers.params import count
from omegaconf import OmegaConf
from PIL import Image
from test_train import run_cli, write_pngs
from torch import nn

from i2i import translate as translate_cli
from i2i.abilities import AttentionMaps
from i2i.errors import ConfigError
from i2i.models.ugatit import UGATITLoss
from i2i.nets.adailn import AdaILN, AdaILNResidualBlock
from i2i.nets.cam import CAM, heatmap_rgb
from i2i.nets.discriminators import CAMDiscriminator, depth_for_size
from i2i.nets.init import init_weights
from i2i.nets.norms import ILN, clip_rho_, make_norm
from i2i.train import build_model, train

UGATIT = ["model=ugatit", "data=shapes_geometry", "model.generator.light=true"]


def by_hand(x: torch.Tensor, rho: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """rho * IN + (1 - rho) * LN with biased variances, one sample and one channel at a time."""
    out = torch.empty_like(x)
    eps = 1e-5
    for b in range(x.shape[0]):
        sample = x[b]
        ln_mean, ln_var = sample.mean(), ((sample - sample.mean()) ** 2).mean()
        for c in range(x.shape[1]):
            channel = sample[c]
            in_mean, in_var = channel.mean(), ((channel - channel.mean()) ** 2).mean()
            instance = (channel - in_mean) / torch.sqrt(in_var + eps)
            layer = (channel - ln_mean) / torch.sqrt(ln_var + eps)
            mixed = rho[c] * instance + (1 - rho[c]) * layer
            g = gamma[b, c] if gamma.dim() == 2 else gamma[c]
            bt = beta[b, c] if beta.dim() == 2 else beta[c]
            out[b, c] = mixed * g + bt
    return out


def test_adailn_matches_hand_computation_with_per_sample_gamma_beta():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 4) * 3 + torch.tensor([1.0, -2.0, 5.0]).view(1, 3, 1, 1)
    norm = AdaILN(3)
    assert torch.equal(norm.rho.data, torch.full((3,), 0.9))
    norm.rho.data = torch.tensor([0.0, 0.3, 1.0])
    gamma, beta = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(
        norm(x, gamma, beta), by_hand(x, norm.rho.data, gamma, beta), rtol=1e-5, atol=1e-5
    )


def test_iln_matches_hand_computation_and_starts_as_layer_norm():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 3, 3) + torch.arange(4.0).view(1, 4, 1, 1)
    norm = make_norm("iln", 4)
    assert isinstance(norm, ILN)
    assert (
        norm.rho.abs().sum() == 0
        and torch.equal(norm.gamma.data, torch.ones(4))
        and norm.beta.abs().sum() == 0
    )
    layer_norm = F.layer_norm(x, x.shape[1:], eps=1e-5)  # rho 0 is LN over (C, H, W), without affine
    torch.testing.assert_close(norm(x), layer_norm, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        norm.rho.copy_(torch.tensor([0.2, 0.5, 0.7, 1.0]))
        norm.gamma.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        norm.beta.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    torch.testing.assert_close(norm(x), by_hand(x, norm.rho, norm.gamma, norm.beta), rtol=1e-5, atol=1e-5)


def test_rho_mixed_norms_keep_the_input_dtype_and_memory_format():
    x = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last)
    out = make_norm("iln", 4)(x)
    assert out.dtype == x.dtype and out.is_contiguous(memory_format=torch.channels_last)
    assert make_norm("iln", 4)(x.bfloat16()).dtype == torch.bfloat16


def test_clip_rho_clamps_every_rho_to_the_unit_interval():
    block = nn.Sequential(AdaILNResidualBlock(4), ILN(4))
    with torch.no_grad():
        block[0].norm1.rho.copy_(torch.tensor([-0.5, 0.2, 1.7, 1.0]))
        block[1].rho.fill_(3.0)
    clip_rho_(block)
    assert block[0].norm1.rho.tolist() == pytest.approx([0.0, 0.2, 1.0, 1.0])
    assert block[1].rho.tolist() == [1.0] * 4 and block[0].norm2.rho.tolist() == pytest.approx([0.9] * 4)


def test_cam_logits_reweighting_and_heatmap_match_the_official_formula():
    torch.manual_seed(2)
    cam = CAM(6, activation="relu", spectral_norm=False)
    x = torch.randn(2, 6, 5, 5)
    features, logits, heatmap = cam(x)
    w_gap, w_gmp = cam.gap_fc.weight, cam.gmp_fc.weight
    assert logits.shape == (2, 2) and features.shape == x.shape and heatmap.shape == (2, 1, 5, 5)
    torch.testing.assert_close(logits[:, 0], (x.mean(dim=(2, 3)) * w_gap).sum(1))
    torch.testing.assert_close(logits[:, 1], (x.amax(dim=(2, 3)) * w_gmp).sum(1))
    # official: concatenate the two re-weighted maps, then the 1x1 conv (the fused kernel is equal)
    official = F.relu(cam.conv1x1(torch.cat([x * w_gap.view(1, -1, 1, 1), x * w_gmp.view(1, -1, 1, 1)], 1)))
    torch.testing.assert_close(features, official, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(heatmap, official.sum(1, keepdim=True), rtol=1e-5, atol=1e-5)


def test_spectral_norm_cam_reweights_with_the_normalised_weight():
    cam = CAM(4, activation="lrelu", spectral_norm=True).eval()  # eval: no power iteration
    x = torch.randn(1, 4, 3, 3)
    _, logits, _ = cam(x)
    original = cam.gap_fc.parametrizations.weight.original
    normalised = original / original.norm()  # a 1 x C matrix's spectral norm is its Euclidean norm
    torch.testing.assert_close(cam.gap_fc.weight, normalised, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(logits[:, 0], (x.mean(dim=(2, 3)) * normalised).sum(1), rtol=1e-4, atol=1e-6)


def test_discriminator_depth_follows_the_image_size():
    assert [depth_for_size(7, 256, s) for s in (512, 256, 128, 96, 64, 32, 16)] == [7, 7, 6, 6, 5, 4, 3]
    assert [depth_for_size(5, 256, s) for s in (256, 128, 64, 32)] == [5, 4, 3, 3]
    assert depth_for_size(7, None, 64) == 7
    local = configured_network("ugatit", "discriminator_local", ndf=4, image_size=64)  # 5 layers at 256 px
    logits, cam_logits = local(torch.randn(2, 3, 64, 64))
    assert local.n_layers == 3 and logits.shape == (2, 1, 30, 30) and cam_logits.shape == (2, 2)


def test_fixed_depth_below_its_minimum_size_is_one_line_naming_the_minimum(make_cfg):
    cfg = make_cfg(*UGATIT, "data.image_size=64", "model.discriminator_global.reference_size=null")
    with pytest.raises(ConfigError) as error:
        build_model(cfg)
    assert str(error.value) == (
        "data.image_size=64 is not allowed: the 7-layer global discriminator needs at least 96 px "
        "(or set model.discriminator_global.reference_size=256 to scale its depth with the image)"
    )
    build_model(make_cfg(*UGATIT, "data.image_size=96", "model.discriminator_global.reference_size=null"))


@pytest.mark.parametrize(
    ("light", "size", "generator", "total"),
    [
        (True, 256, 10_589_888, 134_021_248),
        (False, 256, 278_959_808, 670_761_088),
        (False, 128, 77_633_216, None),
    ],
)
def test_paper_preset_matches_the_official_parameter_counts(make_cfg, light, size, generator, total):
    """The full generator's MLP reads the flattened (size / 4)^2 x 256 map, so its count depends on
    the image size; the discriminators keep the official 7/5 layers at 128 and 256 px here."""
    cfg = make_cfg(
        "model=ugatit",
        "preset=paper",
        f"model.generator.light={light}",
        f"data.image_size={size}",
        fast=False,
    )
    with torch.device("meta"):  # counted without allocating the weights
        model = build_model(cfg)
    assert count(model.G_ab) == count(model.G_ba) == generator
    if total is not None:
        assert count(model.D_a["global"]) == count(model.D_b["global"]) == 53_130_176
        assert count(model.D_a["local"]) == count(model.D_b["local"]) == 3_290_560
        assert count(model) == total


def test_losses_are_the_weighted_sums_and_the_order_is_d_g_then_rho_clip(make_cfg):
    model = build_model(make_cfg(*UGATIT))
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    d, g = model.updates(0)
    assert (d.name, d.optimizers, d.after_step) == ("d", ("discriminator",), None)
    assert (g.name, g.optimizers, g.after_step) == ("g", ("generator",), model.clip_rho)
    d_loss, d_logs = d.loss(batch, {})
    assert set(d_logs) == {"d_a", "d_b"} and torch.isfinite(d_loss)
    torch.testing.assert_close(d_loss, d_logs["d_a"] + d_logs["d_b"])
    d_loss.backward()
    assert all(p.grad is None for p in model.G_ab.parameters())  # the D step's fakes carry no graph
    g_loss, g_logs = g.loss(batch, {})
    assert set(g_logs) == {"adv", "cycle", "identity", "cam"}
    expected = g_logs["adv"] + 10 * g_logs["cycle"] + 10 * g_logs["identity"] + 1000 * g_logs["cam"]
    torch.testing.assert_close(g_loss, expected)


def test_discriminator_terms_are_lsgan_over_both_scales_and_both_heads(make_cfg):
    model = build_model(make_cfg(*UGATIT)).eval()  # eval: spectral norm runs no power iteration
    real, other = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    _, logs = model.discriminator_loss({"A": real, "B": other}, {})
    fake = model.G_ba(other).image
    expected = sum(
        (score_real - 1).pow(2).mean() + score_fake.pow(2).mean()
        for critic in (model.D_a["global"], model.D_a["local"])
        for score_real, score_fake in zip(critic(real), critic(fake))
    )
    torch.testing.assert_close(logs["d_a"], expected)


def test_generator_cam_loss_labels_source_images_one_and_target_images_zero(make_cfg):
    model = build_model(make_cfg(*UGATIT))
    real_a, real_b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    _, logs = model.generator_loss({"A": real_a, "B": real_b}, {})
    bce = F.binary_cross_entropy_with_logits
    generators, images = {"ab": model.G_ab, "ba": model.G_ba}, {"a": real_a, "b": real_b}
    logits = {(g, x): generators[g](images[x]).cam_logit for g in generators for x in images}
    expected = (
        bce(logits["ab", "a"], torch.ones(1, 2))
        + bce(logits["ab", "b"], torch.zeros(1, 2))
        + bce(logits["ba", "b"], torch.ones(1, 2))
        + bce(logits["ba", "a"], torch.zeros(1, 2))
    )
    torch.testing.assert_close(logs["cam"], expected, rtol=1e-5, atol=1e-6)


def test_translate_attention_maps_and_the_seven_row_strip(make_cfg):
    model = build_model(make_cfg(*UGATIT)).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert model.translate(x, "AtoB").shape == (2, 3, 32, 32)
    maps = model.attention_maps(x, "BtoA")
    assert maps.shape == (2, 1, 32, 32) and maps.min() >= 0 and maps.max() <= 1
    heatmap = model.G_ba(x).heatmap  # 8 x 8: min-max scaled per image, then resized (official `cam`)
    low, high = heatmap.amin(dim=(1, 2, 3), keepdim=True), heatmap.amax(dim=(1, 2, 3), keepdim=True)
    expected = F.interpolate((heatmap - low) / (high - low), size=(32, 32), mode="bilinear")
    torch.testing.assert_close(maps, expected)
    rows = model.sample_rows({"A": x, "B": x})
    assert [name for name, _ in rows] == [
        "real_A", "cam_identity_A", "identity_A", "cam_fake_B", "fake_B", "cam_cycle_A", "cycle_A",
        "real_B", "cam_identity_B", "identity_B", "cam_fake_A", "fake_A", "cam_cycle_B", "cycle_B",
    ]  # fmt: skip
    assert all(row.shape == (2, 3, 32, 32) and row.min() >= -1 and row.max() <= 1 for _, row in rows)
    with pytest.raises(TypeError, match="no options"):
        model.translate(x, "AtoB", n_styles=2)


def test_heatmaps_use_the_jet_colour_map():
    rgb = (heatmap_rgb(torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1)).view(3, 3) + 1) / 2
    assert rgb.tolist() == [[0.0, 0.0, 0.5], [0.5, 1.0, 0.5], [0.5, 0.0, 0.0]]  # dark blue, green, dark red


def test_model_has_attention_maps_and_cyclegan_does_not(make_cfg):
    assert isinstance(build_model(make_cfg(*UGATIT)), AttentionMaps)
    assert not isinstance(build_model(make_cfg("model=cyclegan")), AttentionMaps)


def test_negative_weight_and_unknown_gan_mode_name_the_key():
    with pytest.raises(ConfigError, match="loss.cam_w=-1 is not allowed: must be >= 0"):
        UGATITLoss(gan_mode="lsgan", gan_w=1, cycle_w=10, identity_w=10, cam_w=-1)
    with pytest.raises(ConfigError, match="loss.gan_mode='wgan-gp'"):
        UGATITLoss(gan_mode="wgan-gp", gan_w=1, cycle_w=10, identity_w=10, cam_w=1000)


@pytest.mark.slow
def test_tiny_end_to_end_run_of_light_then_translate_with_attention(make_cfg, tmp_path, monkeypatch):
    metrics, objects = train(make_cfg(*UGATIT, "data.image_size=48"))
    model = objects["model"]
    assert model.iteration == 4
    assert set(metrics) == {"shape_acc_AtoB", "shape_acc_BtoA", "centroid_err_AtoB", "centroid_err_BtoA"}
    rhos = [m.rho for m in model.G_ab.modules() if hasattr(m, "rho")]
    assert all(0 <= r.min() and r.max() <= 1 for r in rhos)
    rows = (tmp_path / "samples" / "rows.txt").read_text().splitlines()
    assert rows[:3] == ["real_A", "cam_identity_A", "identity_A"] and len(rows) == 14
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == metrics
    assert "train/g_cam" in (tmp_path / "csv" / "metrics.csv").read_text()
    write_pngs(tmp_path / "in", 2)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    out = tmp_path / "out"
    arguments = [
        f"ckpt_path={checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        f"output_dir={out}",
        "save_attention=true",
    ]
    run_cli(translate_cli.main, monkeypatch, *arguments)
    written = ["photo0.png", "photo0_attention.png", "photo1.png", "photo1_attention.png"]
    assert sorted(p.name for p in out.iterdir()) == written
    assert Image.open(out / "photo1_attention.png").size == (48, 48)


def test_translate_refuses_save_attention_for_a_model_without_attention_maps(
    make_cfg, tmp_path, monkeypatch, capsys
):
    cfg = make_cfg("model=cyclegan")
    checkpoint = tmp_path / "cyclegan.ckpt"
    config = OmegaConf.to_container(cfg, resolve=True)
    torch.save({"hyper_parameters": config, "state_dict": build_model(cfg).state_dict()}, checkpoint)
    write_pngs(tmp_path / "in", 1)
    arguments = [
        f"ckpt_path={checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        "output_dir=o",
        "save_attention=true",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(translate_cli.main, monkeypatch, *arguments)
    assert exit_info.value.code == 2
    message = "error: save_attention=True is not allowed: CycleGAN has no attention maps to save"
    assert capsys.readouterr().err.strip() == message


def test_normal_init_reaches_the_weights_behind_spectral_norm():
    critic = CAMDiscriminator(ndf=8, n_layers=3, reference_size=None, image_size=32)
    init_weights(critic, "normal", 0.02)
    conv = critic.features[1][1]
    assert conv.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.1)
    assert conv.bias.abs().sum() == 0
