"""FUNIT and COCO-FUNIT: networks, pinned counts, the objective, R1, EMA, AMP, training, translation."""

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import configured_network, run_cli
from helpers.params import count
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from i2i import translate as translate_cli
from i2i.checkpoints import load_model
from i2i.errors import ConfigError
from i2i.losses.penalties import r1_penalty
from i2i.models.funit import FUNIT, FUNITLoss
from i2i.nets.fewshot import ContentConditionedStyle, FewShotGenerator
from i2i.train import build_model, train

FEWSHOT = ["data=shapes_fewshot"]


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def on_meta(cfg):
    with torch.device("meta"):
        return build_model(cfg)


# ---------------------------------------------------------------------------- parameter counts
def test_funit_animals_counts_are_the_official_ones(make_cfg):
    """NVlabs/FUNIT funit_animals.yaml, 119 classes (research/reference_perf.md): G 29,866,435,
    D 54,252,599."""
    model = on_meta(make_cfg("model=funit", "preset=paper", "data.image_size=128", fast=False))
    assert count(model.G) == 29_866_435 and count(model.D) == 54_252_599
    assert count(model.G_ema) == count(model.G) and not any(p.requires_grad for p in model.G_ema.parameters())


def imaginaire_discriminator_count(num_classes: int) -> int:
    """imaginaire `ResDiscriminator` (nf 64, max 1024, 6 layers): conv7, then per stage two NACNAC
    residual blocks (hidden width min(in, out), biased 1x1 shortcut when the width changes), the 1x1
    classifier and the class embedding. Spectral norm adds no parameters."""

    def res(c_in: int, c_out: int) -> int:
        hidden = min(c_in, c_out)
        return conv(c_in, hidden, 3) + conv(hidden, c_out, 3) + (conv(c_in, c_out, 1) if c_in != c_out else 0)

    widths = [64, 128, 256, 512, 1024, 1024, 1024]
    stages = sum(res(c, c) + res(c, nxt) for c, nxt in zip(widths, widths[1:]))
    return conv(3, 64, 7) + stages + conv(1024, 1, 1) + num_classes * 1024


def imaginaire_generator_count(coco: bool) -> int:
    """imaginaire's FUNITTranslator / COCOFUNITTranslator at configs/projects/{funit,coco_funit}/
    animal_faces (nf 64, mlp 256, style 64, content 4 downs, style 5 downs, usb 1024), summed layer by
    layer from generators/funit.py, generators/coco_funit.py and layers/{conv,residual,
    activation_norm}.py: every conv and linear has a bias; the content encoder's instance norms are
    affine (imaginaire's default, 2C each); each adaptive norm is one Linear(256 -> 2C); an
    UpRes2dBlock has a conv5 in->out, a conv5 out->out and a 1x1 shortcut in->out, each followed by an
    adaptive norm; imaginaire's MLP with num_mlp_blocks 3 has two layers. Instantiating the official
    modules gives the same totals (120,987,203 and 121,562,307)."""
    style = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 3 * conv(256, 256, 4) + conv(256, 64, 1)
    downs = [(3, 64, 7), (64, 128, 4), (128, 256, 4), (256, 512, 4), (512, 1024, 4)]
    content = sum(conv(i, o, k) + 2 * o for i, o, k in downs) + 2 * 2 * (conv(1024, 1024, 3) + 2 * 1024)

    def adain(c: int) -> int:
        return linear(256, 2 * c)

    decoder = 2 * 2 * (conv(1024, 1024, 3) + adain(1024))
    decoder += sum(
        conv(c, c // 2, 5) + conv(c // 2, c // 2, 5) + conv(c, c // 2, 1) + 3 * adain(c // 2)
        for c in (1024, 512, 256, 128)
    )
    decoder += conv(64, 3, 7)
    mlp = linear(64, 256) + linear(256, 256)
    conditioning = (
        linear(1024, 256) + linear(256, 64) + linear(64 + 1024, 256) + linear(256, 64) + 1024
    )  # + usb
    return style + content + decoder + mlp + (conditioning if coco else 0)


@pytest.mark.parametrize(("model", "coco"), [("funit_imaginaire", False), ("coco_funit", True)])
def test_imaginaire_presets_match_the_imaginaire_layer_tables(make_cfg, model, coco):
    built = on_meta(make_cfg(f"model={model}", "preset=paper", "data.image_size=256", fast=False))
    assert count(built.G) == imaginaire_generator_count(coco) == (121_562_307 if coco else 120_987_203)
    assert count(built.D) == imaginaire_discriminator_count(119) == 92_008_257


# ---------------------------------------------------------------------------- networks
def small_generator(style_conditioning: bool = False) -> FewShotGenerator:
    content = configured_network("funit", "content_encoder", dim=4, n_downsample=2, n_res=1)
    classes = configured_network("funit", "class_encoder", dim=4, n_downsample=3, style_dim=6)
    decoder = configured_network("funit", "decoder", in_channels=16, n_upsample=2, n_res=1)
    conditioning = None
    if style_conditioning:
        conditioning = ContentConditionedStyle(
            content_mlp=configured_network("coco_funit", "content_mlp", in_dim=16, out_dim=6, hidden_dim=8),
            style_mlp=configured_network("coco_funit", "style_mlp", in_dim=6 + 5, out_dim=6, hidden_dim=8),
            usb_dims=5,
        )
    mlp = configured_network(
        "funit", "mlp", in_dim=6, out_dim=decoder.num_adain_params, hidden_dim=8, n_blocks=2
    )
    return FewShotGenerator(
        content_encoder=content,
        class_encoder=classes,
        mlp=mlp,
        decoder=decoder,
        style_conditioning=conditioning,
    )


def test_the_class_code_is_the_mean_of_the_k_shot_codes():
    generator = small_generator()
    shots = torch.randn(2, 3, 3, 16, 16)
    codes = torch.stack([torch.stack([generator.class_encoder(s[None])[0] for s in row]) for row in shots])
    torch.testing.assert_close(generator.class_code(shots), codes.mean(dim=1))


def test_content_conditioned_style_is_the_gated_product():
    generator = small_generator(style_conditioning=True)
    module = generator.style_conditioning
    code, content = torch.randn(3, 6), torch.randn(3, 16, 4, 4)
    usb = module.usb.expand(3, -1)
    expected = module.style_mlp(torch.cat([code, usb], 1)) * module.content_mlp(content.mean((2, 3)))
    torch.testing.assert_close(module(code, content), expected)
    assert module.usb.shape == (1, 5) and module.usb.requires_grad
    assert (module(code, content) >= 0).all()  # ReLU after every layer: both factors non-negative
    assert generator(torch.randn(3, 3, 16, 16), torch.randn(3, 2, 3, 16, 16)).shape == (3, 3, 16, 16)


def test_the_discriminator_scores_each_image_on_its_own_class_channel():
    discriminator = configured_network("funit", "discriminator", num_classes=5, nf=4, n_res_blocks=4)
    x, labels = torch.randn(3, 3, 16, 16), torch.tensor([4, 0, 2])
    scores, features = discriminator(x, labels)
    every_class = discriminator.head(discriminator.features(x))
    assert scores.shape == (3, 8, 8) and features.shape == (3, 16)
    for i, label in enumerate(labels):
        torch.testing.assert_close(scores[i], every_class[i, label])


def test_the_projection_discriminator_adds_the_class_embedding_term():
    # eval: spectral norm's power iteration would otherwise move the weights between the two calls
    discriminator = configured_network(
        "funit_imaginaire", "discriminator", num_classes=5, nf=4, max_channels=8, n_layers=3
    ).eval()
    x, labels = torch.randn(2, 3, 16, 16), torch.tensor([1, 3])
    scores, pooled = discriminator(x, labels)
    unconditional = discriminator.head(discriminator.features(x))
    projection = (discriminator.embedding(labels) * pooled).sum(1).view(2, 1, 1, 1)
    torch.testing.assert_close(scores, unconditional + projection)
    assert pooled.shape == (2, 8)


def test_discriminators_refuse_images_too_small_for_their_stages():
    with pytest.raises(ConfigError, match="data.image_size=32 .* 6 stages needs at least 33 px"):
        configured_network("funit_imaginaire", "discriminator", num_classes=2, nf=4).check_input_size(32)
    # FUNIT's 5 stages take 32 px
    configured_network("funit", "discriminator", num_classes=2, nf=4).check_input_size(32)
    with pytest.raises(ConfigError, match="n_res_blocks=3"):
        configured_network("funit", "discriminator", num_classes=2, n_res_blocks=3)


# ---------------------------------------------------------------------------- R1
def test_r1_matches_a_hand_computed_gradient():
    """FUNIT's calc_grad2: d mean(D(x)) / dx, squared, summed per image, averaged over the batch."""
    batch, height, width = 2, 3, 4
    w = torch.tensor([0.5, -1.0, 2.0])
    x = torch.randn(batch, 3, height, width, requires_grad=True)
    # a linear D: each score is <w, x> at a pixel, so d mean / dx[b, c, h, w] = w_c / (B H W)
    scores = (x * w.view(1, 3, 1, 1)).sum(1)
    n = batch * height * width
    expected = height * width * (w**2).sum() / n**2
    torch.testing.assert_close(r1_penalty(scores, x, score_reduction="mean"), expected)
    # a quadratic D: d mean(sum_c x^2) / dx = 2 x / N
    quadratic = r1_penalty(x.pow(2).sum(1), x, score_reduction="mean")
    torch.testing.assert_close(quadratic, (2 * x.detach() / n).pow(2).flatten(1).sum(1).mean())


def test_r1_of_the_mean_survives_fp16_autocast():
    """Differentiating mean(D) in half precision underflows to 0 for a large patch map; the penalty
    differentiates the sum and divides in float32 (16-mixed training on a GPU)."""
    torch.manual_seed(0)
    discriminator = torch.nn.Conv2d(3, 1, 3, padding=1)
    torch.nn.init.normal_(discriminator.weight, 0, 1e-3)
    x = torch.randn(16, 3, 64, 64, requires_grad=True)
    reference = r1_penalty(discriminator(x), x, score_reduction="mean")
    with torch.autocast("cpu", dtype=torch.float16):
        scores = discriminator(x)
        assert scores.dtype == torch.float16
        half = r1_penalty(scores, x, score_reduction="mean")
    assert reference > 0
    torch.testing.assert_close(half, reference, rtol=1e-2, atol=0)


# ---------------------------------------------------------------------------- the objective
@pytest.fixture
def funit(make_cfg):
    torch.manual_seed(0)
    cfg = make_cfg("model=funit", *FEWSHOT)
    data = instantiate(cfg.data, _convert_="all")
    data.setup()
    batch = next(iter(data.train_dataloader()))
    return build_model(cfg), batch, data


def test_discriminator_loss_is_hinge_plus_r1_on_the_real_shots(funit):
    model, batch, _ = funit
    loss, logs = model.discriminator_loss(batch, {})
    w = model.weights
    torch.testing.assert_close(loss, w.gan_w * (logs["real"] + logs["fake"]) + w.r1_w * logs["r1"])
    shots = batch["class_images"][:, 0].clone().requires_grad_(True)
    scores = model.D(shots, batch["class_label"])[0]
    (grad,) = torch.autograd.grad(scores.mean(), shots)
    torch.testing.assert_close(logs["r1"], grad.pow(2).sum() / len(shots))  # official calc_grad2
    assert not batch["class_images"].requires_grad  # the batch is left untouched
    loss.backward()
    assert all(p.grad is None for p in model.G.parameters())  # the translation is made without gradients


def test_generator_loss_is_the_weighted_sum_of_its_terms(funit):
    model, batch, _ = funit
    loss, logs = model.generator_loss(batch, {})
    w = model.weights
    expected = w.gan_w * logs["gan"] + w.recon_w * logs["recon"] + w.fm_class_w * logs["fm_class"]
    torch.testing.assert_close(loss, expected + w.fm_recon_w * logs["fm_recon"])
    assert (w.gan_w, w.recon_w, w.fm_class_w, w.fm_recon_w, w.r1_w) == (1.0, 0.1, 1.0, 1.0, 10.0)
    assert [u.name for u in model.updates(0)] == ["d", "g"]  # official: dis_update, then gen_update


def test_translate_uses_the_average_with_shared_or_per_input_shots(funit):
    model, batch, _ = funit
    model.eval()
    x, shots = batch["content"], batch["class_images"][0]
    shared = model.translate_to_class(x, shots)
    per_input = model.translate_to_class(x, shots[None].expand(len(x), -1, -1, -1, -1))
    torch.testing.assert_close(shared, per_input)
    torch.testing.assert_close(shared, model.G_ema(x, shots[None].expand(len(x), -1, -1, -1, -1)))
    with pytest.raises(ValueError, match="class_images must be"):
        model.translate_to_class(x, torch.randn(3, 1, 3, 64, 64))


def test_image_size_must_suit_the_generator(make_cfg):
    with pytest.raises(ConfigError, match="data.image_size=36 .* multiple of 8"):
        on_meta(make_cfg("model=funit", *FEWSHOT, "data.image_size=36", fast=False))


def test_coco_funit_is_funit_with_its_own_generator(make_cfg):
    model = build_model(make_cfg("model=coco_funit", *FEWSHOT))
    assert isinstance(model, FUNIT) and isinstance(model.G.style_conditioning, ContentConditionedStyle)
    assert build_model(make_cfg("model=funit", *FEWSHOT)).G.style_conditioning is None


def test_a_checkpoint_naming_the_loss_where_it_lived_before_still_loads(make_cfg, tmp_path):
    """Up to bbf4374 FUNIT's loss weights were `i2i.models.fewshot.FewShotLoss`, and checkpoints say so."""
    cfg = make_cfg("model=funit", *FEWSHOT)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["loss"]["_target_"] = "i2i.models.fewshot.FewShotLoss"
    model = build_model(cfg)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": config}, tmp_path / "old.ckpt")
    loaded, loaded_config = load_model(tmp_path / "old.ckpt")
    assert loaded_config["loss"]["_target_"] == "i2i.models.funit.FUNITLoss"
    assert isinstance(loaded.weights, FUNITLoss) and loaded.weights == model.weights
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------- training
def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_average_follows_every_generator_step(make_cfg):
    cfg = make_cfg("model=funit", *FEWSHOT, "trainer.max_steps=1")
    pl.seed_everything(cfg.seed, workers=True)
    initial = build_model(cfg).G  # train() seeds and builds the same way
    _, objects = train(cfg)
    model = objects["model"]
    for (name, average), start, live in zip(
        model.G_ema.named_parameters(), initial.parameters(), model.G.parameters()
    ):
        torch.testing.assert_close(average, 0.999 * start + 0.001 * live.detach(), msg=name)
    assert not torch.equal(next(model.G.parameters()), next(initial.parameters()))


def test_a_bf16_step_takes_r1_gradients(make_cfg):
    """R1 differentiates D's gradient under autocast and the spine's manual optimization (Lightning
    turns 16-mixed into bf16-mixed on a CPU). 32 px and no callbacks: bf16 is emulated on most CPUs."""
    no_callbacks = ["~callbacks.synthetic_metrics", "~callbacks.image_grid", "~callbacks.checkpoint"]
    cfg = make_cfg(
        "model=funit",
        *FEWSHOT,
        "data.image_size=32",
        "trainer.max_steps=1",
        "trainer.precision=bf16-mixed",
        *no_callbacks,
    )
    pl.seed_everything(cfg.seed, workers=True)
    before = weights(build_model(cfg).D)
    _, objects = train(cfg)
    after = weights(objects["model"].D)
    assert all(torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["funit", "coco_funit"])
def test_tiny_end_to_end_training(make_cfg, tmp_path, model):
    metrics, objects = train(make_cfg(f"model={model}", *FEWSHOT, "callbacks.image_grid.n_images=3"))
    assert set(metrics) == {"class_acc", "colour_err", "content_iou"}
    assert all(0 <= v <= 1 for v in metrics.values()) and objects["model"].iteration == 4
    assert (tmp_path / "samples" / "rows.txt").read_text().split() == [
        "content",
        "class_example",
        "translation",
        "reconstruction",
    ]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert any(key.startswith("G_ema.") for key in state)  # the average travels in the checkpoint


@pytest.mark.slow
def test_resume_continues_exactly_with_the_weight_average(make_cfg, tmp_path):
    steps = lambda n: ["model=funit", *FEWSHOT, f"trainer.max_steps={n}"]
    _, straight = train(make_cfg(*steps(4), output_dir=tmp_path / "straight"))
    train(make_cfg(*steps(3), output_dir=tmp_path / "first"))  # stops mid-epoch
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*steps(4), f"ckpt_path={checkpoint}", output_dir=tmp_path / "resumed"))
    expected, actual = weights(straight["model"]), weights(resumed["model"])
    assert any(k.startswith("G_ema.") for k in expected) and expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


# ---------------------------------------------------------------------------- i2i-translate
def run_translate(monkeypatch, *args: str) -> None:
    run_cli(translate_cli.main, monkeypatch, *args)


def save_png(image: torch.Tensor, path: Path) -> None:
    """A (3, H, W) image in [-1, 1] as an 8-bit PNG."""
    pixels = ((image.permute(1, 2, 0) + 1) / 2 * 255).round().byte().numpy()
    Image.fromarray(pixels).save(path)


@pytest.mark.slow
def test_translate_to_an_unseen_shapes_fewshot_class_from_its_exported_examples(
    make_cfg, tmp_path, monkeypatch
):
    _, objects = train(make_cfg("model=funit", *FEWSHOT, "trainer.max_steps=1"))
    scenario = objects["datamodule"].scenario
    unseen = scenario.classes("test")[3]
    (tmp_path / "in").mkdir()
    (tmp_path / unseen).mkdir()
    for index, image in enumerate(scenario.evaluation_episodes(range(3))[0]):
        save_png(image, tmp_path / "in" / f"{index}.png")
    for index in range(scenario.num_test):  # the K examples of the unseen class, as i2i-translate reads them
        save_png(scenario.image(unseen, "test", index), tmp_path / unseen / f"{index:04d}.png")
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    common = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", f"output_dir={tmp_path / 'out'}"]
    run_translate(monkeypatch, *common, f"class_dir={tmp_path / unseen}", "k=2")
    model, _ = load_model(checkpoint)
    shots = translate_cli.load_class_images(tmp_path / unseen, 2, 64)
    assert torch.equal(shots[1], translate_cli.load_image(tmp_path / unseen / "0001.png", 64))  # the first k
    content = torch.stack([translate_cli.load_image(tmp_path / "in" / f"{i}.png", 64) for i in range(3)])
    with torch.no_grad():
        expected = (model.translate_to_class(content, shots).clamp(-1, 1) + 1) / 2 * 255
    for index in range(3):
        written = torch.from_numpy(
            np.asarray(Image.open(tmp_path / "out" / f"{index}.png"), dtype=np.float32)
        )
        assert (written.permute(2, 0, 1) - expected[index]).abs().max() <= 1.0


def write_pngs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (70, 70, 3), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )


@pytest.mark.slow
def test_few_shot_translate_cli(make_cfg, tmp_path, monkeypatch, capsys):
    train(make_cfg("model=funit", *FEWSHOT, "trainer.max_steps=1"))
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    write_pngs(tmp_path / "in", 3)
    write_pngs(tmp_path / "fox", 4)
    common = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", f"output_dir={tmp_path / 'out'}"]
    run_translate(monkeypatch, *common, f"class_dir={tmp_path / 'fox'}", "k=2")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
    assert Image.open(tmp_path / "out" / "0.png").size == (64, 64)
    shots = translate_cli.load_class_images(tmp_path / "fox", None, 64)
    assert shots.shape == (4, 3, 64, 64)  # k defaults to every image of class_dir
    for args, message in [
        ([], "error: class_dir=None is not allowed: this few-shot model needs a folder of example images"),
        ([f"class_dir={tmp_path / 'fox'}", "k=9"], "has 4 images; k=9 needs at least 9"),
    ]:
        with pytest.raises(SystemExit):
            run_translate(monkeypatch, *common, *args)
        assert message in capsys.readouterr().err
