"""DRIT++: the official architecture and counts, the shared content block, concat vs feature-wise
injection, the loss terms on known cases, the update schedule, attribute sampling and references,
and a tiny end-to-end run with multimodal translation and a checkpoint round trip."""

import pytest
import torch
from helpers.params import count
from test_train import run_cli, write_pngs
from torch import nn

from i2i import translate as translate_cli
from i2i.abilities import StyleTranslator
from i2i.checkpoints import load_model
from i2i.errors import ConfigError
from i2i.models.drit import DRIT, MODE_SEEKING_EPS, DRITLoss, kl_divergence, mode_seeking
from i2i.nets.drit import ContentDiscriminator
from i2i.train import build_model, train

SIZE = 64

# the tiny preset's parameter count of each network at 64 px (DUNIT's tests count on them too)
TINY_COUNTS = {
    "E_c": 568_000,
    "E_a": 171_328,
    "G": 713_510,
    "D_a": 519_507,
    "D_b": 519_507,
    "D_a2": 519_507,
    "D_b2": 519_507,
    "D_c": 266_433,
}


def images(n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {d: torch.rand(n, 3, SIZE, SIZE, generator=generator) * 2 - 1 for d in ("A", "B")}


def paper_model(make_cfg, injection: str) -> nn.Module:
    cfg = make_cfg(
        "model=drit", "preset=paper", "data.image_size=216", f"model.injection={injection}", fast=False
    )
    with torch.device("meta"):
        return build_model(cfg)


@pytest.mark.parametrize(
    ("injection", "attribute", "generator", "total"),
    [("concat", 2_688_160, 9_564_710, 65_039_315), ("featurewise", 5_529_872, 17_146_374, 75_462_691)],
)
def test_paper_preset_matches_the_official_parameter_counts(make_cfg, injection, attribute, generator, total):
    """The numbers are those of the official constructors (HsinYingLee/DRIT@f19f50a src/model.py
    `DRIT(opts)` with --concat 1 and 0, --dis_scale 3, 3 input channels), counted with
    sum(p.numel()) per network: enc_c 9,018,112, enc_a and gen as here, disA, disB, disA2, disB2
    8,271,171 each, disContent 10,683,649. Loading the official weights into these networks (by
    parameter order) also gives the official outputs, to float rounding; both checked outside the
    repository with the fetched code."""
    model = paper_model(make_cfg, injection)
    assert count(model.E_c) == 9_018_112
    assert count(model.E_a) == attribute and count(model.G) == generator
    assert count(model.D_a) == count(model.D_b) == count(model.D_a2) == count(model.D_b2) == 8_271_171
    assert count(model.D_c) == 10_683_649 and model.D_c.n_strided == 3
    assert count(model) == total


def test_tiny_preset_counts(make_cfg):
    with torch.device("meta"):
        model = build_model(make_cfg("model=drit", "preset=tiny", "data.image_size=64", fast=False))
    counts = {name: count(module) for name, module in model.named_children()}
    assert counts == TINY_COUNTS
    assert model.D_c.n_strided == 1  # a 16 px content map takes one k7 s2 conv of the official three


def test_the_last_content_block_is_one_module_shared_by_both_domains(make_cfg):
    model = build_model(make_cfg("model=drit"))
    encoders, x = model.E_c, images(1)["A"]
    encoders(x, "A").square().mean().backward()
    stem_a, stem_b, shared = (
        list(m.parameters()) for m in (encoders.stems["A"], encoders.stems["B"], encoders.shared)
    )
    assert all(p.grad is not None for p in stem_a + shared) and all(p.grad is None for p in stem_b)
    names = [name for name, _ in model.named_parameters() if name.startswith("E_c.shared")]
    assert names and len(set(names)) == len(names)  # registered once, used by both domains
    encoders.eval()
    before_a, before_b = encoders(x, "A"), encoders(x, "B")
    with torch.no_grad():
        next(encoders.shared.parameters()).add_(1.0)
    assert not torch.equal(encoders(x, "A"), before_a) and not torch.equal(encoders(x, "B"), before_b)


def test_content_noise_is_added_in_training_only(make_cfg):
    encoders, x = build_model(make_cfg("model=drit")).E_c, images(1)["A"]
    assert not torch.equal(encoders(x, "A"), encoders(x, "A"))
    encoders.eval()
    torch.testing.assert_close(encoders(x, "A"), encoders(x, "A"))


def test_concat_is_the_default_injection_and_featurewise_the_option(make_cfg):
    concat = build_model(make_cfg("model=drit")).eval()
    featurewise = build_model(make_cfg("model=drit", "model.injection=featurewise")).eval()
    x = images(2)["A"]
    mu, logvar = concat.E_a(x, "A")
    assert mu.shape == logvar.shape == (2, 8)  # variational (E_attr_concat)
    z, none = featurewise.E_a(x, "A")
    assert z.shape == (2, 8) and none is None  # deterministic (E_attr)
    assert isinstance(concat.G.shared, nn.Module) and count(concat.G.shared) > 0  # dec_share
    assert count(featurewise.G.shared) == 0
    content = concat.E_c(x, "A")
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    for model in (concat, featurewise):
        one, two = model.G(content, z1, "B"), model.G(content, z2, "B")
        assert one.shape == (2, 3, SIZE, SIZE) and not torch.allclose(one, two)
    with pytest.raises(ConfigError, match="model.injection='add'"):
        build_model(make_cfg("model=drit", "model.injection=add"))


def test_official_optimizers_schedule_and_init(make_cfg):
    model = build_model(make_cfg("model=drit"))
    optimizers, schedulers = model.configure_optimizers()
    names = ["generator", "attribute_encoder", "discriminator", "content_discriminator"]
    assert list(model.optimizer_parameters()) == names
    for name, optimizer in zip(names, optimizers, strict=True):
        group = optimizer.param_groups[0]
        lr = 4e-5 if name == "content_discriminator" else 1e-4
        assert (group["lr"], group["betas"], group["weight_decay"]) == (lr, (0.5, 0.999), 1e-4)
    assert schedulers[0].lr_lambdas[0].decay_from == 0.5
    convs = [m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert abs(torch.cat(convs).std().item() - 0.02) < 0.002
    fc = model.E_a.encoders["A"].mu  # linear layers and biases keep PyTorch's init, as the official
    assert fc.weight.std().item() > 0.03 and torch.count_nonzero(model.E_c.stems["A"][0][1].bias) > 0


def test_two_of_three_iterations_update_only_the_content_discriminator(make_cfg):
    model = build_model(make_cfg("model=drit"))
    plan = [[(u.name, u.optimizers) for u in model.updates(i)] for i in range(6)]
    content_only = [("dc", ("content_discriminator",))]
    full = [
        ("d", ("discriminator", "content_discriminator")),
        ("g", ("generator", "attribute_encoder")),
        ("g_random", ("generator",)),
    ]
    assert plan == [content_only, content_only, full] * 2
    every = build_model(make_cfg("model=drit", "model.full_update_every=1"))
    assert all([u.name for u in every.updates(i)] == ["d", "g", "g_random"] for i in range(3))


def test_kl_divergence_of_known_gaussians():
    zero = torch.zeros(3, 8)
    assert kl_divergence(zero, zero).item() == 0
    mu, logvar = torch.full((2, 8), 1.0), torch.full((2, 8), 2.0)
    # per dimension 0.5 * (exp(logvar) + mu^2 - 1 - logvar), summed over 8, averaged over the batch
    expected = 8 * 0.5 * (torch.exp(torch.tensor(2.0)) + 1 - 1 - 2)
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = torch.distributions.kl_divergence(posterior, prior).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), reference)


def test_mode_seeking_is_the_inverse_of_image_distance_per_code_distance():
    image = torch.zeros(2, 3, 4, 4)
    codes = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    value = mode_seeking(image, image + 0.5, *codes)  # 0.5 apart per pixel, 2 per code dimension
    torch.testing.assert_close(value, torch.tensor(1 / (0.25 + MODE_SEEKING_EPS)))
    assert mode_seeking(image, image, *codes).item() == pytest.approx(1 / MODE_SEEKING_EPS)


def test_every_term_of_every_update_is_finite_and_mode_seeking_switches_off(make_cfg):
    batch = images(2)
    drit_pp = build_model(make_cfg("model=drit"))
    _, logs = drit_pp.discriminator_loss(batch, {})
    assert set(logs) == {"d_a", "d_b", "d_a2", "d_b2", "d_content"}
    total, logs = drit_pp.generator_loss(batch, {})
    assert set(logs) == {"gan", "content_gan", "cross_cycle", "self_recon", "kl", "content_l2"}
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in logs.values())
    _, logs = drit_pp.random_attribute_loss(batch, {})
    assert logs["mode_seeking"] > 0 and torch.isfinite(logs["latent"])
    drit = build_model(make_cfg("model=drit", "loss.mode_seeking_w=0"))
    assert len(drit._random_codes(1, batch["A"].device)) == 1  # DRIT draws one random code, DRIT++ two
    total, logs = drit.random_attribute_loss(batch, {})
    assert logs["mode_seeking"] == 0 and torch.isfinite(total)
    with pytest.raises(ConfigError, match="loss.mode_seeking_w=-1"):
        DRITLoss(
            gan_mode="nsgan",
            gan_w=1,
            content_gan_w=1,
            cross_cycle_w=10,
            self_recon_w=10,
            latent_w=10,
            kl_w=0.01,
            content_l2_w=0.01,
            mode_seeking_w=-1,
        )


def test_the_content_adversarial_target_is_one_half(make_cfg):
    """For nsgan, undecided(s) is the official BCE(sigmoid(s), 0.5): minimal where D_c outputs 1/2."""
    model = build_model(make_cfg("model=drit"))
    scores = torch.tensor([-2.0, 0.0, 3.0])
    expected = nn.functional.binary_cross_entropy(torch.sigmoid(scores), torch.full_like(scores, 0.5))
    torch.testing.assert_close(model._undecided(scores), expected)


def test_a_batch_of_one_serves_both_halves(make_cfg):
    model = build_model(make_cfg("model=drit"))
    x = images(3)["A"]
    encoded, random_real = model._halves(x)
    assert torch.equal(encoded, x[:1]) and torch.equal(random_real, x[1:])
    one = x[:1]
    assert all(torch.equal(half, one) for half in model._halves(one))
    total, _ = model.discriminator_loss({"A": one, "B": one}, {})
    assert torch.isfinite(total)


def test_attribute_sampling_is_seeded_and_a_reference_decides_the_translation(make_cfg):
    model = build_model(make_cfg("model=drit")).eval()
    assert isinstance(model, StyleTranslator)
    batch = images(3)
    outputs = model.translate_styles(batch["A"], "AtoB", 4, style_seed=7)
    assert outputs.shape == (3, 4, 3, SIZE, SIZE)
    torch.testing.assert_close(
        model.translate_styles(batch["A"][1:2], "AtoB", 4, style_seed=7)[0], outputs[1]
    )
    assert not torch.allclose(outputs[:, 0], outputs[:, 1])
    reference = batch["B"][:1]
    translated = model.translate_reference(batch["A"], "AtoB", reference)
    with torch.no_grad():
        expected = model.G(model.E_c(batch["A"], "A"), model.E_a(reference, "B")[0].expand(3, -1), "B")
    torch.testing.assert_close(translated, expected)
    torch.testing.assert_close(model.translate_reference(batch["A"], "AtoB", reference), translated)
    assert model.translate(batch["B"], "BtoA").shape == (3, 3, SIZE, SIZE)


def test_sample_grid_rows(make_cfg):
    model = build_model(make_cfg("model=drit", "model.grid_styles=2")).eval()
    rows = model.sample_rows(images(2))
    assert [name for name, _ in rows] == [
        "real_A", "recon_A", "fake_B_style0", "fake_B_style1", "fake_B_ref",
        "real_B", "recon_B", "fake_A_style0", "fake_A_style1", "fake_A_ref",
    ]  # fmt: skip
    assert all(row.shape == (2, 3, SIZE, SIZE) for _, row in rows)


def test_the_content_discriminator_takes_as_many_strided_convs_as_fit():
    sizes = {54: 3, 64: 3, 32: 2, 16: 1, 8: 0}
    for side, depth in sizes.items():
        discriminator = ContentDiscriminator(channels=4, n_strided=3, content_size=side)
        assert discriminator.n_strided == depth
        assert discriminator(torch.zeros(1, 4, side, side)).shape[1] == 1
    assert (
        ContentDiscriminator(channels=4, n_strided=3, content_size=54)(torch.zeros(1, 4, 54, 54)).numel() == 1
    )


def test_bad_sizes_are_refused(make_cfg):
    with pytest.raises(ConfigError, match="data.image_size=32 .* needs at least"):
        build_model(make_cfg("model=drit", "data.image_size=32"))
    with pytest.raises(ConfigError, match="data.image_size=66 .* multiple of 4"):
        build_model(make_cfg("model=drit", "data.image_size=66"))


@pytest.mark.slow
def test_tiny_end_to_end_run_translation_and_checkpoint_round_trip(make_cfg, tmp_path, monkeypatch):
    clipped = []  # (parameter count of the clipped optimizer, norm bound) of every clipping
    original = DRIT.clip_gradients

    def recording(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
        clipped.append(
            (sum(p.numel() for g in optimizer.param_groups for p in g["params"]), gradient_clip_val)
        )
        original(
            self,
            optimizer,
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
        )

    monkeypatch.setattr(DRIT, "clip_gradients", recording)
    metrics, objects = train(make_cfg("model=drit", "data.batch_size=2", "trainer.max_steps=6"))
    assert objects["model"].iteration == 6
    # the content discriminator's 6 steps (4 alone, 2 in full iterations), and nothing else
    assert clipped == [(count(objects["model"].D_c), 5.0)] * 6
    assert {"mode_coverage_AtoB", "mode_coverage_BtoA", "content_iou_AtoB", "domain_acc_BtoA"} <= set(metrics)
    log = (tmp_path / "csv" / "metrics.csv").read_text()
    for key in ("train/dc_loss", "train/d_d_content", "train/g_cross_cycle", "train/g_random_mode_seeking"):
        assert key in log
    rows = (tmp_path / "samples" / "rows.txt").read_text().split()
    assert rows[:3] == ["real_A", "recon_A", "fake_B_style0"] and "fake_A_ref" in rows

    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    trained = objects["model"].eval()
    loaded, _ = load_model(checkpoint)
    assert loaded.iteration == 6
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in loaded.state_dict().items())
    x = images(2)["A"]
    torch.testing.assert_close(
        loaded.translate_styles(x, "AtoB", 2, style_seed=3),
        trained.translate_styles(x, "AtoB", 2, style_seed=3),
    )

    write_pngs(tmp_path / "in", 2)
    common = [f"ckpt_path={checkpoint}", f"input_dir={tmp_path / 'in'}", "direction=AtoB"]
    run_cli(
        translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'k'}", "n_styles=3", "style_seed=1"
    )
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [
        f"photo{i}_s{j}.png" for i in range(2) for j in range(3)
    ]
    reference = f"reference={tmp_path / 'in' / 'photo0.jpg'}"
    run_cli(translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'ref'}", reference)
    run_cli(translate_cli.main, monkeypatch, *common, f"output_dir={tmp_path / 'ref2'}", reference)
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["photo0.png", "photo1.png"]
    assert (tmp_path / "ref" / "photo1.png").read_bytes() == (tmp_path / "ref2" / "photo1.png").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides", [["loss.mode_seeking_w=0"], ["model.injection=featurewise", "data.batch_size=2"]]
)
def test_drit_without_mode_seeking_and_featurewise_injection_train(make_cfg, overrides):
    _, objects = train(make_cfg("model=drit", "trainer.max_steps=3", *overrides))
    assert objects["model"].iteration == 3


def assert_resume_continues_exactly(make_cfg, tmp_path, *model):
    """Stopped after iteration 4, resumed to 6: the weights of a straight run (`model`: the overrides
    choosing the model and its data; DUNIT's tests use it too)."""
    run = lambda n, name, *more: train(
        make_cfg(
            *model,
            f"trainer.max_steps={n}",
            "model.scheduler.lr_lambda.total=6",
            "data.batch_size=2",
            *more,
            output_dir=tmp_path / name,
        )
    )[1]["model"]
    straight = run(6, "straight")
    run(4, "first")
    resumed = run(6, "resumed", f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")
    assert resumed.iteration == 6
    expected, actual = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def ddp_trained_ranks(tmp_path, *model) -> list[dict]:
    """Two gloo processes train `model` (overrides choosing it and its data) for 3 iterations; each
    rank's saved state, whose weights are asserted equal (DUNIT's tests use it too)."""
    from test_scale import finish, free_port, launch

    arguments = [
        *model,
        "trainer=ddp_cpu",
        "trainer.max_steps=3",
        "data.image_size=64",
        "data.batch_size=2",
        "data.domains.num_train=8",
        "data.domains.num_test=4",
        "~callbacks",
        "~logger",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "print_config=false",
    ]
    finish(launch(arguments, tmp_path / "weights", tmp_path / "run", MASTER_PORT=str(free_port())))
    ranks = [torch.load(tmp_path / "weights" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["iteration"] == ranks[1]["iteration"] == 3
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(value, ranks[1]["state_dict"][key]), key
    return ranks


@pytest.mark.slow
def test_resume_continues_exactly_across_content_only_iterations(make_cfg, tmp_path):
    """Stopped after iteration 4 (a content-only one follows), resumed to 6: the same weights as a
    straight run, so the iteration counter (which picks the updates) and the draws are restored."""
    assert_resume_continues_exactly(make_cfg, tmp_path, "model=drit")


@pytest.mark.slow
def test_two_ddp_processes_on_cpu_train_drit_in_step(tmp_path):
    """Each rank draws its own attributes and noise; the averaged gradients keep the ranks' weights
    equal through every kind of update (content-only, D, EG, G with random attributes)."""
    ddp_trained_ranks(tmp_path, "model=drit")
