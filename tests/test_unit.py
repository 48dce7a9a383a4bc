"""UNIT: the official master architecture and counts, the paper's layer sharing, every loss term
(reduced VAE: noise in training only, KL = mean(h^2)), the update order, and a tiny end-to-end run."""

from collections import Counter

import pytest
import torch
from helpers.lsgan import adversarial, assert_discriminator_loss_by_hand
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


def paper_model(make_cfg, *overrides: str):
    with torch.device("meta"):
        return build_model(
            make_cfg("model=unit", "preset=paper", "data.image_size=256", *overrides, fast=False)
        )


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
    batch = images()
    x_a, x_b = batch["A"], batch["B"]
    h_a, h_b = model.G_a.encode(x_a), model.G_b.encode(x_b)
    torch.manual_seed(1)
    d_loss, d_logs = model.discriminator_loss(batch, {})
    torch.manual_seed(1)  # z = h + N(0, I) in training, a's noise drawn first as the official encode
    z_a, z_b = h_a + torch.randn_like(h_a), h_b + torch.randn_like(h_b)
    x_ab, x_ba = model.G_b.decode(z_a), model.G_a.decode(z_b)
    assert_discriminator_loss_by_hand(model, batch, (x_ab, x_ba), d_loss, d_logs, gan_w=1.5)

    torch.manual_seed(2)
    g_loss, logs = model.generator_loss(batch, {})
    torch.manual_seed(2)  # the G update's own noise, then the cycle noise in the official order (b's first)
    z_a, z_b = h_a + torch.randn_like(h_a), h_b + torch.randn_like(h_b)
    x_ab, x_ba = model.G_b.decode(z_a), model.G_a.decode(z_b)
    h_a_recon, h_b_recon = model.G_b.encode(x_ab), model.G_a.encode(x_ba)
    noise_b, noise_a = torch.randn_like(h_b_recon), torch.randn_like(h_a_recon)
    x_aba, x_bab = model.G_a.decode(h_a_recon + noise_a), model.G_b.decode(h_b_recon + noise_b)
    expected = {
        "gan": adversarial(model.D_a(x_ba), 1) + adversarial(model.D_b(x_ab), 1),
        # the official G update decodes x_a's reconstruction from the same noisy code as x_ab
        "recon_x": (model.G_a.decode(z_a) - x_a).abs().mean() + (model.G_b.decode(z_b) - x_b).abs().mean(),
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


def test_d_and_g_updates_each_draw_their_own_noise_as_the_official_code(make_cfg):
    model = build_model(make_cfg("model=unit", "loss.recon_x_cyc_w=0", "loss.recon_kl_cyc_w=0"))
    updates = model.updates(0)
    assert [(u.name, u.optimizers) for u in updates] == [("d", ("discriminator",)), ("g", ("generator",))]
    calls, codes = Counter(), []
    model.G_a.encoder.register_forward_hook(lambda *args: calls.update(["encode_a"]))
    model.G_a.decoder.register_forward_hook(lambda *args: calls.update(["decode_a"]))
    model.G_b.decoder.register_forward_hook(lambda _, inputs, __: codes.append(inputs[0].detach()))
    batch, carry = images(), {}  # one carry for the iteration, as the spine passes it
    n = len(batch["A"])
    updates[0].loss(batch, carry)
    assert calls == {"encode_a": 1, "decode_a": 1} and len(codes[0]) == n  # D: the translations only
    _, logs = updates[1].loss(batch, carry)
    # G: encodes anew; one pass of each decoder renders translation and reconstruction
    assert calls == {"encode_a": 2, "decode_a": 2} and len(codes[1]) == 2 * n
    h_a = model.G_a.encode(batch["A"]).detach()
    noise_d, noise_g = codes[0] - h_a, codes[1][:n] - h_a  # the noise of x_ab = G_b(h_a + n_a) in each update
    assert abs(noise_d.std().item() - 1) < 0.05 and abs(noise_g.std().item() - 1) < 0.05
    assert (noise_d - noise_g).abs().mean() > 0.5  # independent draws (equal ones would differ by 0)
    assert logs["recon_x_cyc"].item() == logs["recon_kl_cyc"].item() == 0  # cycle terms off cost nothing


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
        UNITLoss(
            gan_mode="lsgan",
            gan_w=1,
            recon_x_w=10,
            recon_kl_w=-0.1,
            recon_x_cyc_w=10,
            recon_kl_cyc_w=0.01,
            vgg_w=0,
        )


@pytest.mark.slow
@pytest.mark.parametrize("share_layers", [False, True])
def test_tiny_end_to_end_run(make_cfg, tmp_path, share_layers):
    metrics, objects = train(make_cfg("model=unit", f"model.share_layers={share_layers}"))
    model = objects["model"]
    assert model.iteration == 4 and (model.G_a.encoder[-1] is model.G_b.encoder[-1]) == share_layers
    assert set(metrics) == {"content_iou_AtoB", "content_iou_BtoA", "domain_acc_AtoB", "domain_acc_BtoA"}
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "train/g_recon_kl_cyc" in (tmp_path / "csv" / "metrics.csv").read_text()
