"""MUNIT: the official architecture and counts, every loss term, the update order, style sampling,
reference styles, the sample grid, and a tiny end-to-end run with multimodal translation."""

import json
from collections import Counter

import pytest
import torch
from helpers.lsgan import adversarial, assert_discriminator_loss_by_hand
from helpers.params import count
from test_train import run_cli, write_pngs
from torch import nn

from i2i import translate as translate_cli
from i2i.abilities import StyleTranslator
from i2i.errors import ConfigError
from i2i.models.munit import MUNITLoss
from i2i.nets.norms import LayerNorm2d
from i2i.train import build_model, train

SIZE = 64


def images(n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {d: torch.rand(n, 3, SIZE, SIZE, generator=generator) * 2 - 1 for d in ("A", "B")}


def prior_styles(batch: dict[str, torch.Tensor], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The styles s_a, s_b an update draws after `torch.manual_seed(seed)`, a's first as the official code."""
    torch.manual_seed(seed)
    return torch.randn(len(batch["A"]), 8), torch.randn(len(batch["B"]), 8)


def test_paper_preset_matches_the_official_parameter_count(make_cfg):
    cfg = make_cfg("model=munit", "preset=paper", "data.image_size=256", fast=False)
    with torch.device("meta"):
        model = build_model(cfg)
    assert count(model.G_a) == count(model.G_b) == 15_026_187
    assert count(model.D_a) == count(model.D_b) == 8_271_171
    assert count(model) == 46_594_716
    assert isinstance(model, StyleTranslator) and model.style_dim == 8


def test_official_optimizers_schedule_and_init(make_cfg):
    model = build_model(make_cfg("model=munit"))
    optimizers, schedulers = model.configure_optimizers()
    for optimizer in optimizers:
        assert isinstance(optimizer, torch.optim.Adam)
        group = optimizer.param_groups[0]
        assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-4, (0.5, 0.999), 1e-4)
    assert all(isinstance(s, torch.optim.lr_scheduler.StepLR) for s in schedulers)
    assert (schedulers[0].step_size, schedulers[0].gamma) == (100_000, 0.5)
    d_weights = torch.cat([m.weight.flatten() for m in model.D_a.modules() if isinstance(m, nn.Conv2d)])
    assert abs(d_weights.std().item() - 0.02) < 0.002  # gaussian re-init of the discriminators
    conv = model.G_a.content_encoder[1][1]  # kaiming, fan_in
    assert abs(conv.weight.std().item() - (2 / conv.weight[0].numel()) ** 0.5) < 0.01
    assert torch.count_nonzero(conv.bias) == 0
    norms = [m for m in model.G_a.decoder.modules() if isinstance(m, LayerNorm2d)]
    assert len(norms) == 2 and all(0 <= n.gamma.min() and n.gamma.max() <= 1 for n in norms)


def test_every_loss_term_matches_its_hand_computation(make_cfg):
    model = build_model(make_cfg("model=munit", "loss.gan_w=1.5", "loss.recon_x_cyc_w=2"))
    batch = images()
    x_a, x_b = batch["A"], batch["B"]
    (c_a, s_a_prime), (c_b, s_b_prime) = model.G_a.encode(x_a), model.G_b.encode(x_b)
    torch.manual_seed(1)
    d_loss, d_logs = model.discriminator_loss(batch, {})
    s_a, s_b = prior_styles(batch, 1)
    x_ba, x_ab = model.G_a.decode(c_b, s_a), model.G_b.decode(c_a, s_b)
    assert_discriminator_loss_by_hand(model, batch, (x_ab, x_ba), d_loss, d_logs, gan_w=1.5)

    torch.manual_seed(2)
    g_loss, logs = model.generator_loss(batch, {})
    s_a, s_b = prior_styles(batch, 2)  # the G update's own styles
    x_ba, x_ab = model.G_a.decode(c_b, s_a), model.G_b.decode(c_a, s_b)
    c_b_recon, s_a_recon = model.G_a.encode(x_ba)
    c_a_recon, s_b_recon = model.G_b.encode(x_ab)
    expected = {
        "gan": adversarial(model.D_a(x_ba), 1) + adversarial(model.D_b(x_ab), 1),
        "recon_x": (model.G_a(x_a) - x_a).abs().mean() + (model.G_b(x_b) - x_b).abs().mean(),
        "recon_s": (s_a_recon - s_a).abs().mean() + (s_b_recon - s_b).abs().mean(),
        "recon_c": (c_a_recon - c_a).abs().mean() + (c_b_recon - c_b).abs().mean(),
        "recon_x_cyc": (model.G_a.decode(c_a_recon, s_a_prime) - x_a).abs().mean()
        + (model.G_b.decode(c_b_recon, s_b_prime) - x_b).abs().mean(),
    }
    for term, value in expected.items():
        torch.testing.assert_close(logs[term], value, msg=term)
    assert logs["vgg"].item() == 0
    weighted = (
        1.5 * logs["gan"] + 10 * logs["recon_x"] + logs["recon_s"] + logs["recon_c"] + 2 * logs["recon_x_cyc"]
    )
    torch.testing.assert_close(g_loss, weighted)


def test_d_and_g_updates_each_sample_their_own_styles_as_the_official_code(make_cfg):
    model = build_model(make_cfg("model=munit"))
    updates = model.updates(0)
    assert [(u.name, u.optimizers) for u in updates] == [("d", ("discriminator",)), ("g", ("generator",))]
    calls, styles = Counter(), []
    model.G_b.mlp.register_forward_hook(lambda _, inputs, __: styles.append(inputs[0].detach()))
    model.G_a.content_encoder.register_forward_hook(lambda *args: calls.update(["content_a"]))
    model.G_a.style_encoder.register_forward_hook(lambda *args: calls.update(["style_a"]))
    batch, carry = images(), {}  # one carry for the iteration, as the spine passes it
    n = len(batch["A"])
    updates[0].loss(batch, carry)
    # D: a's content only, and G_b renders x_ab alone, from a style of its own
    assert calls == {"content_a": 1} and len(styles[0]) == n
    loss, _ = updates[1].loss(batch, carry)
    # G: encodes anew (content and style of x_a, then of x_ba) and renders x_ab with b's reconstruction
    assert calls == {"content_a": 3, "style_a": 2} and len(styles[1]) == 2 * n
    s_b_d, s_b_g = styles[0], styles[1][:n]
    assert (s_b_d - s_b_g).abs().mean() > 0.5  # independent draws from N(0, I) (a shared one differs by 0)
    loss.backward()
    assert model.G_a.content_encoder[0][1].weight.grad.abs().sum() > 0  # x_ab back-propagates to a's encoder


def test_terms_with_zero_weight_cost_nothing(make_cfg):
    model = build_model(make_cfg("model=munit", "loss.recon_s_w=0", "loss.recon_c_w=0"))
    calls = Counter()
    model.G_a.style_encoder.register_forward_hook(lambda *a: calls.update(["style"]))
    model.G_a.content_encoder.register_forward_hook(lambda *a: calls.update(["content"]))
    _, logs = model.generator_loss(images(), {})
    assert calls == {"style": 1, "content": 1}  # x_a's codes only: nothing of x_ba is encoded
    assert logs["recon_s"].item() == logs["recon_c"].item() == logs["recon_x_cyc"].item() == 0


def test_perceptual_term_uses_the_vgg_weights_file(make_cfg, vgg_file):
    model = build_model(
        make_cfg(
            "model=munit",
            "loss.vgg_w=1",
            f"loss.vgg_weights_path={vgg_file[0]}",
            "loss.allow_unpublished_weights=true",
        )
    )
    batch = images(1)
    torch.manual_seed(3)
    total, logs = model.generator_loss(batch, {})
    s_a, s_b = prior_styles(batch, 3)
    with torch.no_grad():
        x_ba = model.G_a.decode(model.G_b.content_encoder(batch["B"]), s_a)
        x_ab = model.G_b.decode(model.G_a.content_encoder(batch["A"]), s_b)
        expected = model.perceptual(x_ba, batch["B"]) + model.perceptual(x_ab, batch["A"])
    torch.testing.assert_close(logs["vgg"], expected)
    assert logs["vgg"] > 0


def test_missing_vgg_weights_stop_the_first_generator_update(make_cfg, tmp_path):
    model = build_model(
        make_cfg("model=munit", "loss.vgg_w=1", f"loss.vgg_weights_path={tmp_path / 'none.pth'}")
    )
    with pytest.raises(ConfigError, match="loss.vgg_weights_path=.*no such file"):
        model.generator_loss(images(1), {})


def test_style_sampling_is_deterministic_by_seed_and_independent_of_the_batch(make_cfg):
    model = build_model(make_cfg("model=munit")).eval()
    x = images(3)["A"]
    outputs = model.translate_styles(x, "AtoB", 4, style_seed=7)
    assert outputs.shape == (3, 4, 3, SIZE, SIZE)
    torch.testing.assert_close(model.translate_styles(x, "AtoB", 4, style_seed=7), outputs)
    torch.testing.assert_close(model.translate_styles(x[1:2], "AtoB", 4, style_seed=7)[0], outputs[1])
    assert not torch.allclose(model.translate_styles(x, "AtoB", 4, style_seed=8), outputs)
    assert not torch.allclose(outputs[:, 0], outputs[:, 1])  # k different styles
    codes = model.sample_styles(3, 4, 7, x.device)
    torch.testing.assert_close(codes, model.sample_styles(3, 4, 7, x.device))
    torch.testing.assert_close(outputs[2, 3], model.translate_codes(x[2:], "AtoB", codes[3:4])[0])
    assert model.translate(x, "BtoA").shape == (3, 3, SIZE, SIZE)  # one sampled style each


def test_reference_style_path(make_cfg):
    model = build_model(make_cfg("model=munit")).eval()
    batch = images(2)
    reference = batch["B"][:1]
    outputs = model.translate_reference(batch["A"], "AtoB", reference)
    with torch.no_grad():
        expected = model.G_b.decode(
            model.G_a.content_encoder(batch["A"]), model.G_b.style_encoder(reference).expand(2, -1)
        )
    torch.testing.assert_close(outputs, expected)
    per_input = model.translate_reference(batch["A"], "AtoB", batch["B"])
    torch.testing.assert_close(per_input[0], outputs[0])


def test_sample_grid_rows_show_reconstruction_random_styles_and_a_reference_style(make_cfg):
    model = build_model(make_cfg("model=munit", "model.grid_styles=2")).eval()
    rows = model.sample_rows(images(2))
    assert [name for name, _ in rows] == [
        "real_A", "recon_A", "fake_B_style0", "fake_B_style1", "fake_B_ref",
        "real_B", "recon_B", "fake_A_style0", "fake_A_style1", "fake_A_ref",
    ]  # fmt: skip
    assert all(row.shape == (2, 3, SIZE, SIZE) for _, row in rows)
    torch.testing.assert_close(
        dict(rows)["fake_B_style1"], model.sample_rows(images(2))[3][1]
    )  # fixed styles


def test_bad_weights_and_sizes_are_refused(make_cfg):
    with pytest.raises(ConfigError, match="loss.recon_s_w=-1 is not allowed"):
        MUNITLoss(
            gan_mode="lsgan", gan_w=1, recon_x_w=10, recon_s_w=-1, recon_c_w=1, recon_x_cyc_w=0, vgg_w=0
        )
    with pytest.raises(ConfigError, match="data.image_size=32 .* needs at least 61 px"):
        build_model(make_cfg("model=munit", "data.image_size=32"))


@pytest.mark.slow
def test_tiny_end_to_end_run_and_multimodal_translation(make_cfg, tmp_path, monkeypatch):
    metrics, objects = train(make_cfg("model=munit"))
    assert objects["model"].iteration == 4
    assert {"mode_coverage_AtoB", "mode_coverage_BtoA", "content_iou_AtoB", "domain_acc_BtoA"} <= set(metrics)
    assert all(0 <= v <= 1 for v in metrics.values())
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == metrics
    rows = (tmp_path / "samples" / "rows.txt").read_text().split()
    assert rows[:3] == ["real_A", "recon_A", "fake_B_style0"] and "fake_A_ref" in rows
    assert "train/g_recon_s" in (tmp_path / "csv" / "metrics.csv").read_text()

    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    write_pngs(tmp_path / "in", 2)
    common = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", "direction=AtoB"]
    run_cli(
        translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'k'}", "n_styles=3", "style_seed=1"
    )
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [
        f"photo{i}_s{j}.png" for i in range(2) for j in range(3)
    ]
    run_cli(
        translate_cli.main,
        monkeypatch,
        *common,
        f"output_dir={tmp_path / 'k2'}",
        "n_styles=3",
        "style_seed=1",
    )
    assert (tmp_path / "k" / "photo1_s2.png").read_bytes() == (tmp_path / "k2" / "photo1_s2.png").read_bytes()
    run_cli(
        translate_cli.main,
        monkeypatch,
        *common,
        f"output_dir={tmp_path / 'ref'}",
        f"reference={tmp_path / 'in' / 'photo0.jpg'}",
    )
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["photo0.png", "photo1.png"]
