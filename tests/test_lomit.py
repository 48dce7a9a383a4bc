"""LOMIT: Highway AdaIN, mask network, discriminator, losses against the official update, schedule,
parameter count, user masks, a tiny end-to-end run and the translate CLI with an exemplar."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import configured_network, run_cli
from helpers.params import count
from PIL import Image

from i2i import translate as translate_cli
from i2i.abilities import Translator
from i2i.errors import ConfigError
from i2i.losses.classification import multi_label_bce
from i2i.losses.masks import mask_similarity, mask_total_variation
from i2i.models.lomit import LOMITLoss
from i2i.models.schedules import ConstantThenStepDecay
from i2i.nets.adain import adaptive_instance_norm, highway_adaptive_instance_norm
from i2i.nets.discriminators import AttributeDiscriminator
from i2i.nets.masks import upsample_mask
from i2i.train import build_model, train

LOMIT = ["model=lomit", "data=shapes_local"]


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def test_paper_preset_parameter_count_follows_from_the_layer_table(make_cfg):
    """The official layer table (research/ugatit_others.md §3.1, model.py) at 128 px with CelebA's
    4 attributes; each norm of width C (IN affine, GroupNorm(1), BN) adds 2C."""
    res_blocks = 4 * 2 * (conv(256, 256, 3) + 2 * 256)
    content = conv(3, 64, 7) + 128 + conv(64, 128, 4) + 256 + conv(128, 256, 4) + 512 + res_blocks
    style = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 2 * conv(256, 256, 4) + conv(256, 8, 1)
    mask = linear(256, 512) + linear(512, 256) + 6 * (conv(256, 256, 3) + 512) + conv(256, 1, 1)
    mlp = linear(8, 256) + linear(256, 256) + linear(256, 512)
    decoder = res_blocks + conv(256, 128, 5) + 256 + conv(128, 64, 5) + 128 + conv(64, 3, 7)
    widths = [3, 64, 128, 256, 512, 1024, 2048]
    critic = sum(conv(a, b, 4) for a, b in zip(widths, widths[1:])) + conv(2048, 1, 3) + 2048 * 4 * 2 * 2 + 4
    assert (content, style, mask, mlp, decoder, critic) == (
        5_390_848,
        2_764_936,
        3_806_721,
        199_680,
        5_758_723,
        44_753_861,
    )

    attributes = "model.attributes=[Black_Hair,Blond_Hair,Brown_Hair,Smiling]"
    cfg = make_cfg(*LOMIT, "preset=paper", "data.image_size=128", attributes, fast=False)
    with torch.device("meta"):
        model = build_model(cfg)
    assert (count(model.G.E_c), count(model.G.E_s), count(model.G.M)) == (content, style, mask)
    networks = (model.G.mlp_f, model.G.mlp_b, model.G.Dec, model.D)
    assert tuple(count(net) for net in networks) == (mlp, mlp, decoder, critic)
    assert count(model) == 62_874_449


# ---------------------------------------------------------------------- blocks
def test_highway_adain_is_adain_of_the_foreground_under_the_mask_and_of_the_background_outside():
    x, fg, bg = torch.randn(2, 3, 4, 5) * 3 + 1, torch.randn(2, 6), torch.randn(2, 6)
    mask = torch.zeros(2, 1, 4, 5)
    mask[..., :2, :] = 1
    mask[..., 3, :] = 0.25
    out = highway_adaptive_instance_norm(x, mask, fg, bg)
    adain_f, adain_b = adaptive_instance_norm(x, fg), adaptive_instance_norm(x, bg)
    torch.testing.assert_close(out[..., :2, :], adain_f[..., :2, :])
    torch.testing.assert_close(out[..., 2, :], adain_b[..., 2, :])
    torch.testing.assert_close(out[..., 3, :], 0.25 * adain_f[..., 3, :] + 0.75 * adain_b[..., 3, :])


def test_highway_adain_takes_a_bf16_mask_with_float32_parameters():
    """Under bf16 autocast (found on a GPU) the mask network's output is bf16, the MLP's
    [mean | std] float32."""
    x, mask = torch.randn(2, 3, 4, 5), torch.rand(2, 1, 4, 5).bfloat16()
    fg, bg = torch.randn(2, 6), torch.randn(2, 6)
    expected = highway_adaptive_instance_norm(x, mask.float(), fg, bg)
    torch.testing.assert_close(highway_adaptive_instance_norm(x, mask, fg, bg), expected)


def test_highway_adain_std_of_std_reproduces_the_official_normalisation():
    x, mask = torch.randn(2, 3, 4, 5), torch.rand(2, 1, 4, 5)
    fg, bg = torch.randn(2, 6), torch.randn(2, 6)
    # official highway_AdaIN: (c - mean) / (std(std(c, dim=W), dim=H) + eps), then the two affines
    mean = x.mean(3).mean(2)[..., None, None]
    std = torch.std(torch.std(x, dim=3), dim=2)[..., None, None]
    normalised = (x - mean) / (std + 1e-5)
    (mf, sf), (mb, sb) = (p[..., None, None].chunk(2, 1) for p in (fg, bg))
    official = mask * (sf * normalised + mf) + (1 - mask) * (sb * normalised + mb)
    torch.testing.assert_close(highway_adaptive_instance_norm(x, mask, fg, bg, std="std_of_std"), official)
    assert not torch.allclose(highway_adaptive_instance_norm(x, mask, fg, bg), official)


def test_highway_adain_refuses_an_unknown_normalisation():
    with pytest.raises(ConfigError, match="hadain_std='true'"):
        highway_adaptive_instance_norm(
            torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 2), torch.zeros(1, 2), std="true"
        )


def test_mask_network_gives_a_soft_mask_at_content_resolution_attended_by_the_other_code():
    net = configured_network("lomit", "mask", channels=8).eval()
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 6
    content, other = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    mask = net(content, other)
    assert mask.shape == (2, 1, 6, 6) and 0 <= mask.min() and mask.max() <= 1
    assert not torch.allclose(mask, net(content, other * 3 + 1))  # the attention reads the other code


def test_mask_up_sampling_is_the_official_bilinear_x4():
    mask, image = torch.rand(2, 1, 8, 8), torch.zeros(2, 3, 32, 32)
    official = F.interpolate(mask, None, 4, "bilinear", align_corners=False)
    torch.testing.assert_close(upsample_mask(mask, image), official)


def test_attribute_discriminator_scores_patches_and_classifies_attributes():
    scores, logits = AttributeDiscriminator(image_size=32, num_attributes=3, ndf=4, n_layers=4)(
        torch.randn(2, 3, 32, 32)
    )
    assert scores.shape == (2, 1, 2, 2) and logits.shape == (2, 3)
    with pytest.raises(ConfigError, match="data.image_size=64 .* multiple of 64 that is at least 128"):
        configured_network("lomit", "discriminator", image_size=64, num_attributes=3)  # the official 6 layers
    with pytest.raises(ConfigError, match="num_attributes=0"):
        AttributeDiscriminator(image_size=32, num_attributes=0, ndf=4, n_layers=4)


# ---------------------------------------------------------------------- losses
def test_multi_label_bce_sums_attributes_and_averages_the_batch():
    logits, labels = torch.tensor([[2.0, -1.0], [0.0, 3.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # -log sigmoid(z) for a 1 label, -log(1 - sigmoid(z)) = log(1 + e^z) for a 0 label
    terms = [math.log1p(math.exp(-2)), math.log1p(math.exp(-1)), math.log(2), math.log1p(math.exp(-3))]
    assert multi_label_bce(logits, labels).item() == pytest.approx(sum(terms) / 2)


def test_mask_similarity_matches_the_pairwise_definition():
    mask, features = torch.rand(2, 1, 2, 3), torch.randn(2, 4, 2, 3)
    f, m = features.flatten(2), mask.flatten(1)
    expected = torch.zeros(())
    for b in range(2):
        for i in range(6):
            for j in range(6):
                expected += F.cosine_similarity(f[b, :, i], f[b, :, j], dim=0) * (m[b, i] - m[b, j]).abs()
    assert mask_similarity(mask, features).item() == pytest.approx(expected.item() / (2 * 36), rel=1e-5)


def test_mask_similarity_is_zero_for_a_uniform_mask_and_total_variation_sums_neighbour_steps():
    assert mask_similarity(torch.full((1, 1, 3, 3), 0.7), torch.randn(1, 4, 3, 3)).item() == pytest.approx(
        0, abs=1e-6
    )
    mask = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
    assert mask_total_variation(mask).item() == pytest.approx(1.0 + 0.0 + 0.5 + 0.5)


def official_terms(model, batch):
    """`update_G` of the official run.py, one direction at a time, with the model's own networks."""
    x_a, x_b, label_a, label_b = batch["A"], batch["B"], batch["attr_A"], batch["attr_B"]
    l1 = F.l1_loss

    def styles(x, m):
        up = F.interpolate(m, None, 4, "bilinear", align_corners=False)
        return model.G.E_s(up * x), model.G.E_s((1 - up) * x)

    def decode(c, m, s_f, s_b):
        return model.G.decode(c, m, s_f, s_b)

    c_a, c_b = model.G.E_c(x_a), model.G.E_c(x_b)
    m_a, m_b = model.G.M(c_a, c_b), model.G.M(c_b, c_a)
    (s_fa, s_ba), (s_fb, s_bb) = styles(x_a, m_a), styles(x_b, m_b)
    x_ab, x_ba = decode(c_a, m_a, s_fb, s_ba), decode(c_b, m_b, s_fa, s_bb)
    (src_ab, cls_ab), (src_ba, cls_ba) = model.D(x_ab), model.D(x_ba)
    c_ab, c_ba = model.G.E_c(x_ab), model.G.E_c(x_ba)
    m_ab, m_ba = model.G.M(c_ab, c_ba), model.G.M(c_ba, c_ab)
    (s_fab, s_bab), (s_fba, s_bba) = styles(x_ab, m_ab), styles(x_ba, m_ba)
    x_aba, x_bab = decode(c_ab, m_ab, s_fba, s_bab), decode(c_ba, m_ba, s_fab, s_bba)
    m_aa, m_bb = model.G.M(c_a, c_a), model.G.M(c_b, c_b)
    x_aa, x_bb = decode(c_a, m_aa, s_fa, s_ba), decode(c_b, m_bb, s_fb, s_bb)
    masks_a, masks_b = [m_a, m_ab, m_aa], [m_b, m_ba, m_bb]
    return {
        "gan": -(src_ab.mean() + src_ba.mean()),
        "cls": multi_label_bce(cls_ab, label_b) + multi_label_bce(cls_ba, label_a),
        "recon_x": l1(x_aa, x_a) + l1(x_bb, x_b),
        "cycle_x": l1(x_aba, x_a) + l1(x_bab, x_b),
        "style_f": l1(s_fab, s_fb) + l1(s_fba, s_fa),
        "style_b": l1(s_bab, s_ba) + l1(s_bba, s_bb),
        "content": l1(c_ab, c_a) + l1(c_ba, c_b),
        "mask_min": sum(m.mean() for m in masks_a + masks_b),
        "mask_sim": sum(mask_similarity(m, c_a.detach()) for m in masks_a)
        + sum(mask_similarity(m, c_b.detach()) for m in masks_b),
        "mask_smooth": sum(mask_total_variation(m) for m in masks_a + masks_b),
        "style_reg": -l1(s_fa, s_fb),
    }


def batch_of(size: int = 2, pixels: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = lambda: torch.rand(size, 3, pixels, pixels, generator=generator) * 2 - 1
    labels = torch.eye(2)[torch.arange(size) % 2]
    return {"A": images(), "B": images(), "attr_A": labels, "attr_B": 1 - labels}


def test_every_generator_term_equals_the_official_update_and_the_total_is_their_weighted_sum(make_cfg):
    model = build_model(make_cfg(*LOMIT, "loss.mask_smooth_w=0.01", "loss.style_reg_w=0.5"))
    batch = batch_of()
    torch.manual_seed(0)
    total, logs = model.generator_loss(batch, {})
    expected = official_terms(model, batch)
    assert logs.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(logs[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)
    w = model.weights
    weights = {
        "gan": w.gan_w, "cls": w.cls_w, "recon_x": 10, "cycle_x": 10, "style_f": 1, "style_b": 1,
        "content": 1, "mask_min": 1e-4, "mask_sim": 0.1, "mask_smooth": 0.01, "style_reg": 0.5,
    }  # fmt: skip
    torch.testing.assert_close(total, sum(weights[k] * logs[k] for k in logs))


def test_terms_with_zero_weight_are_not_computed(make_cfg):
    _, logs = build_model(make_cfg(*LOMIT)).generator_loss(batch_of(), {})
    assert logs["mask_smooth"].item() == 0 and logs["style_reg"].item() == 0


def test_discriminator_loss_is_the_official_wgan_gp_with_attribute_classification(make_cfg):
    model = build_model(make_cfg(*LOMIT))
    batch = batch_of()
    torch.manual_seed(3)
    total, logs = model.discriminator_loss(batch, {})
    torch.manual_seed(3)  # the same interpolation draws, A's first as in the official update_D
    fake = model.G.translate_pairs(torch.cat([batch["A"], batch["B"]])).output.detach()
    expected_gan, expected_gp, expected_cls = 0, 0, 0
    for real, fake_half, label in zip(
        (batch["A"], batch["B"]), fake.chunk(2), (batch["attr_A"], batch["attr_B"])
    ):
        src, cls = model.D(real)
        expected_gan = expected_gan - src.mean() + model.D(fake_half)[0].mean()
        alpha = torch.rand(real.size(0), 1, 1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake_half).requires_grad_(True)
        (grad,) = torch.autograd.grad(model.D(x_hat)[0].sum(), x_hat)
        expected_gp = expected_gp + ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        expected_cls = expected_cls + multi_label_bce(cls, label)
    for key, value in (("gan", expected_gan), ("gp", expected_gp), ("cls", expected_cls)):
        torch.testing.assert_close(logs[key], value, rtol=1e-4, atol=1e-5, msg=key)
    torch.testing.assert_close(total, logs["gan"] + 10 * logs["gp"] + logs["cls"])


def test_the_critic_updates_every_iteration_and_the_generator_every_n_critic(make_cfg):
    model = build_model(make_cfg(*LOMIT))
    schedule = [[u.name for u in model.updates(i)] for i in range(11)]
    assert schedule == [["d", "g"] if i in (4, 9) else ["d"] for i in range(11)]
    assert [u.optimizers for u in model.updates(4)] == [("discriminator",), ("generator",)]


def test_the_learning_rate_halves_every_step_after_the_decay_start():
    schedule = ConstantThenStepDecay(total=200_000, decay_from=0.5, step=0.05, gamma=0.5)
    values = [schedule(i) for i in (0, 99_999, 100_000, 109_999, 110_000, 150_000, 199_999)]
    assert values == [1, 1, 1, 1, 0.5, 0.5**5, 0.5**9]


def test_negative_weights_and_bad_model_settings_name_the_key(make_cfg):
    weights = {k: 1.0 for k in LOMITLoss.__dataclass_fields__ if k != "gan_mode"}
    with pytest.raises(ConfigError, match="loss.mask_sim_w=-1"):
        LOMITLoss(gan_mode="wgan", **{**weights, "mask_sim_w": -1})
    with pytest.raises(ConfigError, match="model.n_critic=0"):
        build_model(make_cfg(*LOMIT, "model.n_critic=0"))
    with pytest.raises(ConfigError, match="model.hadain_std='paper'"):
        build_model(make_cfg(*LOMIT, "model.hadain_std=paper"))
    with pytest.raises(ConfigError, match=r"model.initial_mask=1.0 .*\(0, 1\)"):
        build_model(make_cfg(*LOMIT, "model.initial_mask=1.0"))


@pytest.mark.parametrize("initial_mask", [0.25, 0.5])
def test_masks_start_near_the_initial_mask_value(make_cfg, initial_mask):
    torch.manual_seed(0)
    model = build_model(make_cfg(*LOMIT, f"model.initial_mask={initial_mask}"))
    assert model.G.M.out.bias.item() == pytest.approx(math.log(initial_mask / (1 - initial_mask)))
    batch = batch_of(size=4)
    with torch.no_grad():
        content = model.G.E_c(batch["A"])
        masks = model.G.M(content, content.roll(1, 0))
    assert masks.mean().item() == pytest.approx(initial_mask, abs=0.1)


# ---------------------------------------------------------------------- inference
def test_user_masks_replace_the_predicted_ones(make_cfg):
    model = build_model(make_cfg(*LOMIT)).eval()
    batch = batch_of()
    x, reference = batch["A"], batch["B"]
    output, input_mask, reference_mask = model.translate_with_masks(x, reference)
    assert input_mask.shape == reference_mask.shape == (2, 1, 32, 32)
    torch.testing.assert_close(output, model.translate_like(x, reference))
    # an empty input mask keeps the whole input: no exemplar reaches the output
    nothing = torch.zeros(1, 1, 32, 32)
    kept = model.translate_with_masks(x, reference, nothing)[0]
    torch.testing.assert_close(kept, model.translate_with_masks(x, reference.flip(0), nothing)[0])
    # a full mask on both sides: the exemplar's whole image is the foreground style
    everything = torch.ones(1, 1, 32, 32)
    out, given_in, given_ref = model.translate_with_masks(x, reference, everything, everything)
    assert torch.equal(given_in, everything.expand(2, 1, 32, 32)) and torch.equal(given_ref, given_in)
    G = model.G
    expected = G.decode(G.E_c(x), torch.ones(2, 1, 8, 8), G.E_s(reference), G.E_s(0 * x))
    torch.testing.assert_close(out, expected)


def test_one_exemplar_serves_a_whole_batch_and_decides_the_target(make_cfg):
    model = build_model(make_cfg(*LOMIT)).eval()
    x, reference = batch_of(3)["A"], batch_of(1)["B"]
    torch.testing.assert_close(
        model.translate_like(x, reference), model.translate_like(x, reference.expand(3, -1, -1, -1))
    )
    assert not isinstance(model, Translator)  # no translation by direction: the exemplar decides


def test_sample_rows_show_input_exemplar_translation_and_both_masks(make_cfg):
    rows = build_model(make_cfg(*LOMIT)).eval().sample_rows(batch_of())
    assert [name for name, _ in rows] == ["input", "exemplar", "translation", "input_mask", "exemplar_mask"]
    assert all(row.shape == (2, 3, 32, 32) and -1 <= row.min() and row.max() <= 1 for _, row in rows)


def test_weights_saved_before_the_generator_was_one_module_still_load(make_cfg):
    """Checkpoints written before issue 25 name the generator's networks at the top level (E_c.*)."""
    torch.manual_seed(0)
    saved = build_model(make_cfg(*LOMIT)).state_dict()
    old_layout = {key.removeprefix("G."): value for key, value in saved.items()}
    assert any(key.startswith("E_c.") for key in old_layout)
    torch.manual_seed(1)
    model = build_model(make_cfg(*LOMIT))
    model.load_state_dict(old_layout)  # strict: every tensor found its place
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


# ---------------------------------------------------------------------- end to end
@pytest.fixture
def lomit_checkpoint(make_cfg, tmp_path):
    metrics, objects = train(make_cfg(*LOMIT, "trainer.max_steps=6", output_dir=tmp_path / "run"))
    return metrics, objects, tmp_path / "run"


@pytest.mark.slow
def test_tiny_end_to_end_run_then_translate_with_an_exemplar_and_user_masks(
    lomit_checkpoint, tmp_path, monkeypatch, capsys
):
    metrics, objects, run = lomit_checkpoint
    assert objects["model"].iteration == 6
    assert set(metrics) == {f"{m}_{d}" for m in ("domain_acc", "bg_err") for d in ("AtoB", "BtoA")}
    assert all(0 <= v <= 1 for v in metrics.values())
    assert json.loads((run / "metrics.json").read_text())["metrics"] == metrics
    assert (run / "samples" / "rows.txt").read_text().split() == [
        "input",
        "exemplar",
        "translation",
        "input_mask",
        "exemplar_mask",
    ]
    log = (run / "csv" / "metrics.csv").read_text()
    assert "train/g_mask_sim" in log and "train/d_gp" in log

    scenario = objects["datamodule"].domains
    (tmp_path / "in").mkdir()
    for i in range(2):
        save_png(scenario.image("A", "test", i), tmp_path / "in" / f"blue{i}.png")
    save_png(scenario.image("B", "test", 0), tmp_path / "orange.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "all.png")
    checkpoint = run / "checkpoints" / "last.ckpt"
    common = [
        f"ckpt_path={checkpoint}",
        f"input_dir={tmp_path / 'in'}",
        f"exemplar={tmp_path / 'orange.png'}",
    ]

    run_translate(monkeypatch, *common, f"output_dir={tmp_path / 'predicted'}")
    written = sorted(p.name for p in (tmp_path / "predicted").iterdir())
    assert written == [f"blue{i}{suffix}.png" for i in range(2) for suffix in ("", "_exemplar_mask", "_mask")]

    run_translate(
        monkeypatch, *common, f"output_dir={tmp_path / 'user'}", f"input_mask={tmp_path / 'all.png'}"
    )
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == [
        f"blue{i}{s}.png" for i in range(2) for s in ("", "_exemplar_mask")
    ]

    with pytest.raises(SystemExit):
        run_translate(monkeypatch, f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", "output_dir=o")
    assert (
        "error: exemplar=None is not allowed: LOMIT translates towards an exemplar" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        run_translate(monkeypatch, *common, "output_dir=o", f"input_mask={tmp_path / 'none.png'}")
    assert f"error: cannot read mask {tmp_path / 'none.png'}" in capsys.readouterr().err


def save_png(image: torch.Tensor, path) -> None:
    Image.fromarray(((image.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(path)


def run_translate(monkeypatch, *args: str) -> None:
    run_cli(translate_cli.main, monkeypatch, *args)


@pytest.mark.slow
def test_resume_mid_epoch_continues_exactly(make_cfg, tmp_path):
    """The exemplar pairing, the critic schedule and the mask network's batch-norm statistics resume
    (G updates at iterations 4 and 9, after the interruption at 3)."""
    settings = lambda n: [
        *LOMIT,
        f"trainer.max_steps={n}",
        "model.scheduler.lr_lambda.total=10",
        "data.domains.num_train=4",
    ]
    _, straight = train(make_cfg(*settings(10), output_dir=tmp_path / "straight"))
    train(make_cfg(*settings(3), output_dir=tmp_path / "first"))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*settings(10), f"ckpt_path={checkpoint}", output_dir=tmp_path / "resumed"))
    expected, actual = straight["model"].state_dict(), resumed["model"].state_dict()
    assert expected.keys() == actual.keys() and any("running_mean" in key for key in expected)
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
