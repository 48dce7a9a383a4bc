"""UNIT: the official master architecture and counts, the paper's layer sharing, every loss term
(reduced VAE: noise in training only, KL = mean(h^2)), the update order, and a tiny end-to-end run."""

from collections import Counter

import pytest
import torch
from helpers.params import count

from i2i.abilities import StyleTranslator
from i2i.errors import ConfigError
from i2i.models.unit import UNITLoss, kl
from i2i.train import build_model, train

SIZE = 64
RES_BLOCK_256 = 2 * (256 * 256 * 9 + 256)  # one residual block of the paper width


def images(n: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {d: torch.rand(n, 3, SIZE, SIZE, generator=generator) * 2 - 1 for d in ("A", "B")}


def adversarial(scores: list[torch.Tensor], target: float) -> torch.Tensor:
    return sum(((s - target) ** 2).mean() for s in scores)


def paper_model(make_cfg, *overrides: str):
    with torch.device("meta"):
        return build_model(make_cfg("model=unit", "preset=paper", "data.image_size=256", *overrides, fast=False))


def test_paper_preset_matches_the_official_parameter_count(make_cfg):
    model = paper_model(make_cfg)
    assert count(model.G_a) == count(model.G_b) == 11_140_483
    assert count(model.D_a) == count(model.D_b) == 8_271_171
    assert count(model) == 38_823_308
    assert not isinstance(model, StyleTranslator)


def test_shared_layers_are_one_module_trained_once(make_cfg):
    model = paper_model(make_cfg, "model.share_layers=true")
    assert model.G_a.encoder[-1] is model.G_b.encoder[-1]
    assert model.G_a.decoder.blocks[0] is model.G_b.decoder.blocks[0]
    assert model.G_a.encoder[-2] is not model.G_b.encoder[-2]
    assert count(model) == 38_823_308 - 2 * RES_BLOCK_256
    generator = model.optimizer_parameters()["generator"]
    assert len(generator) == len({id(p) for p in generator}) == len(list(model.G_a.parameters())) * 2 - 8


def test_every_loss_term_matches_its_hand_computation(make_cfg):
    model = build_model(make_cfg("model=unit", "loss.gan_w=1.5"))
    batch, carry = images(), {}
    x_a, x_b = batch["A"], batch["B"]
    d_loss, d_logs = model.discriminator_loss(batch, carry)
    h_a, h_b = model.G_a.encode(x_a), model.G_b.encode(x_b)
    torch.testing.assert_close(carry["h_a"], h_a)
    noise = carry["z_a"] - h_a
    assert abs(noise.std().item() - 1) < 0.05  # z = h + N(0, I) in training
    torch.testing.assert_close(carry["x_ab"], model.G_b.decode(carry["z_a"]))
    d_b = adversarial(model.D_b(x_b), 1) + adversarial(model.D_b(carry["x_ab"]), 0)
    torch.testing.assert_close(d_logs["d_b"], d_b)
    torch.testing.assert_close(d_loss, 1.5 * (d_logs["d_a"] + d_logs["d_b"]))

    torch.manual_seed(1)
    g_loss, logs = model.generator_loss(batch, carry)
    torch.manual_seed(1)  # the same cycle noise, drawn in the same order
    h_a_recon, h_b_recon = model.G_b.encode(carry["x_ab"]), model.G_a.encode(carry["x_ba"])
    x_aba = model.G_a.decode(h_a_recon + torch.randn_like(h_a_recon))
    x_bab = model.G_b.decode(h_b_recon + torch.randn_like(h_b_recon))
    expected = {
        "gan": adversarial(model.D_a(carry["x_ba"]), 1) + adversarial(model.D_b(carry["x_ab"]), 1),
        # the official G update decodes x_a's reconstruction from the same noisy code as x_ab
        "recon_x": (model.G_a.decode(carry["z_a"]) - x_a).abs().mean() + (model.G_b.decode(carry["z_b"]) - x_b).abs().mean(),
        "recon_kl": h_a.pow(2).mean() + h_b.pow(2).mean(),
        "recon_x_cyc": (x_aba - x_a).abs().mean() + (x_bab - x_b).abs().mean(),
        "recon_kl_cyc": h_a_recon.pow(2).mean() + h_b_recon.pow(2).mean(),
    }
    for term, value in expected.items():
        torch.testing.assert_close(logs[term], value, msg=term)
    weighted = 1.5 * logs["gan"] + 10 * logs["recon_x"] + 0.01 * logs["recon_kl"] + 10 * logs["recon_x_cyc"]
    torch.testing.assert_close(g_loss, weighted + 0.01 * logs["recon_kl_cyc"])


def test_kl_is_the_mean_square_of_the_code():
    assert kl(torch.tensor([[1.0, -2.0], [0.0, 3.0]])).item() == pytest.approx((1 + 4 + 0 + 9) / 4)


def test_d_then_g_encode_once_and_cycle_terms_off_cost_nothing(make_cfg):
    model = build_model(make_cfg("model=unit", "loss.recon_x_cyc_w=0", "loss.recon_kl_cyc_w=0"))
    updates = model.updates(0)
    assert [(u.name, u.records) for u in updates] == [("d", ("generator",)), ("g", ())]
    calls = Counter()
    model.G_a.encoder.register_forward_hook(lambda *args: calls.update(["encode_a"]))
    model.G_a.decoder.register_forward_hook(lambda *args: calls.update(["decode_a"]))
    batch, carry = images(), {}
    updates[0].loss(batch, carry)
    assert calls == {"encode_a": 1, "decode_a": 1}  # x_ba and x_a's reconstruction in one pass
    _, logs = updates[1].loss(batch, carry)
    assert calls == {"encode_a": 1, "decode_a": 1}
    assert logs["recon_x_cyc"].item() == logs["recon_kl_cyc"].item() == 0


def test_translation_decodes_the_mean_without_noise(make_cfg):
    model = build_model(make_cfg("model=unit")).eval()
    x = images()["A"]
    torch.testing.assert_close(model.translate(x, "AtoB"), model.translate(x, "AtoB"))
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "AtoB"), model.G_b.decode(model.G_a.encode(x)))
    with pytest.raises(TypeError, match="unimodal"):
        model.translate(x, "AtoB", n_styles=2)


def test_negative_weight_is_refused():
    with pytest.raises(ConfigError, match="loss.recon_kl_w=-0.1 is not allowed"):
        UNITLoss(gan_mode="lsgan", gan_w=1, recon_x_w=10, recon_kl_w=-0.1, recon_x_cyc_w=10, recon_kl_cyc_w=0.01, vgg_w=0)


@pytest.mark.slow
@pytest.mark.parametrize("share_layers", [False, True])
def test_tiny_end_to_end_run(make_cfg, tmp_path, share_layers):
    metrics, objects = train(make_cfg("model=unit", f"model.share_layers={share_layers}"))
    model = objects["model"]
    assert model.iteration == 4 and (model.G_a.encoder[-1] is model.G_b.encoder[-1]) == share_layers
    assert set(metrics) == {"content_iou_AtoB", "content_iou_BtoA", "domain_acc_AtoB", "domain_acc_BtoA"}
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "train/g_recon_kl_cyc" in (tmp_path / "csv" / "metrics.csv").read_text()
