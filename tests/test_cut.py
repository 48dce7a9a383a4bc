"""CUT and FastCUT: the official architecture and its counts, PatchNCE, the update order, the one
direction it learns (and data.direction for the other), and tiny end-to-end runs of both presets."""

import json
import math

import pytest
import torch
from conftest import FAST, FAST_SHAPES, compose_config, run_cli
from helpers.params import count
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from i2i import translate as translate_cli
from i2i.abilities import translation_directions
from i2i.errors import ConfigError
from i2i.losses.patchnce import MASKED_LOGIT, patch_nce_loss, sample_patch_ids
from i2i.nets.antialias import BlurDownsample, BlurUpsample
from i2i.train import build_model, check_data_fits_model, train


@pytest.mark.parametrize("model", ["cut", "fastcut"])
def test_paper_preset_matches_the_official_parameter_counts(make_cfg, model):
    """The counts of the official constructors at 256 px, computed outside the repository with
    `taesungp/contrastive-unpaired-translation` (models/networks.py, stylegan_networks.py) on the path:

        G = networks.define_G(3, 3, 64, "resnet_9blocks", "instance", False, "xavier", 0.02, False, False, [], None)
        D = networks.define_D(3, 64, "basic", 3, "instance", "xavier", 0.02, False, [], None)
        F = networks.define_F(3, "mlp_sample", "instance", False, "xavier", 0.02, False, [], opt)  # netF_nc 256
        F(G(torch.randn(1, 3, 256, 256), [0, 4, 8, 12, 16], encode_only=True), 256, None)  # builds F's MLPs
        sum(p.numel() for p in net.parameters())  # G 11,378,179, D 2,764,737, F 560,384
    """  # noqa: E501
    cfg = make_cfg(f"model={model}", "preset=paper", "data.image_size=256", fast=False)
    with torch.device("meta"):  # counted without allocating the weights
        cut = build_model(cfg)
    assert count(cut.G) == 11_378_179
    assert count(cut.D) == 2_764_737
    assert count(cut.F) == 560_384
    # the official encoder layers: the padded input, the two down-sampling convs, residual blocks 1 and 5
    assert cut.G.feature_channels(cut.nce_layers) == [3, 128, 256, 256, 256]


def test_encoder_features_are_the_official_layers_outputs(make_cfg):
    cut = build_model(make_cfg("model=cut"))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    features = cut.G.features(x, cut.nce_layers)
    shapes = [(2, 3, 38, 38), (2, 32, 32, 32), (2, 64, 16, 16), (2, 64, 8, 8), (2, 64, 8, 8)]
    assert [tuple(f.shape) for f in features] == shapes
    torch.testing.assert_close(features[0], torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect"))
    with pytest.raises(ConfigError, match="model.nce_layers"):
        cut.G.features(x, [4, 0])


def test_blur_resampling_keeps_constant_images_and_halves_or_doubles_the_side():
    constant = torch.full((1, 2, 8, 8), 0.3)
    down, up = BlurDownsample(2)(constant), BlurUpsample(2)(constant)
    assert down.shape == (1, 2, 4, 4) and up.shape == (1, 2, 16, 16)
    torch.testing.assert_close(down, torch.full_like(down, 0.3))
    torch.testing.assert_close(up, torch.full_like(up, 0.3))
    assert not BlurDownsample(2).state_dict()  # constants: no checkpoint entries


def hand_nce(query: list[list[float]], key: list[list[float]], temperature: float) -> float:
    """PatchNCE of one image written out: -log softmax of [q_i.k_i, q_i.k_j (j != i), -10 at j = i]."""
    losses = []
    for i, q in enumerate(query):
        dots = [sum(a * b for a, b in zip(q, k)) for k in key]
        logits = [dots[i]] + [MASKED_LOGIT if j == i else dots[j] for j in range(len(key))]
        logits = [logit / temperature for logit in logits]
        losses.append(-logits[0] + math.log(sum(math.exp(logit) for logit in logits)))
    return sum(losses) / len(losses)


def test_patch_nce_matches_a_hand_computation_and_takes_negatives_from_the_same_image():
    q1, k1 = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]]
    q2, k2 = [[0.6, 0.8], [0.8, -0.6]], [[0.0, 1.0], [1.0, 0.0]]
    loss = patch_nce_loss(torch.tensor(q1), torch.tensor(k1), batch_size=1, temperature=0.5)
    assert loss.item() == pytest.approx(hand_nce(q1, k1, 0.5), rel=1e-6)
    # two images: each query competes with the keys of its own image only
    both = patch_nce_loss(torch.tensor(q1 + q2), torch.tensor(k1 + k2), batch_size=2, temperature=0.5)
    assert both.item() == pytest.approx((hand_nce(q1, k1, 0.5) + hand_nce(q2, k2, 0.5)) / 2, rel=1e-6)
    # the keys pass no gradient
    query, key = torch.tensor(q1, requires_grad=True), torch.tensor(k1, requires_grad=True)
    patch_nce_loss(query, key, 1, 0.07).backward()
    assert query.grad is not None and key.grad is None


def test_patch_ids_are_distinct_positions_capped_by_the_map():
    torch.manual_seed(0)
    small, large = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 32, 32)
    ids_small, ids_large = sample_patch_ids([small, large], 256)
    assert sorted(ids_small.tolist()) == list(range(16))  # every position of a 4x4 map, shuffled
    assert len(ids_large) == 256 == len(set(ids_large.tolist())) and int(ids_large.max()) < 32 * 32


def test_the_translation_is_sampled_at_the_source_patch_ids(make_cfg):
    cut = build_model(make_cfg("model=cut"))
    calls = []
    cut.F.register_forward_hook(lambda module, args, output: calls.append(args))
    source, translation = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32, requires_grad=True)
    cut.patch_nce(source, translation, flip=False)
    (key_features, key_ids), (query_features, query_ids) = calls
    assert len(key_ids) == len(cut.nce_layers)
    assert all(torch.equal(k, q) for k, q in zip(key_ids, query_ids, strict=True))
    for key, feature in zip(key_features, cut.G.features(source, cut.nce_layers), strict=True):
        torch.testing.assert_close(key, feature)
    assert all(q.requires_grad and not k.requires_grad for q, k in zip(query_features, key_features))


def test_patch_head_is_built_before_the_first_batch_and_trained_with_the_generator(make_cfg):
    cut = build_model(make_cfg("model=cut"))
    optimizers = dict(zip(cut.optimizer_parameters(), cut.configure_optimizers()[0], strict=True))
    head = [p for group in optimizers["patch_head"].param_groups for p in group["params"]]
    assert len(head) == 4 * len(cut.nce_layers) and count(cut.F) == sum(p.numel() for p in head)
    assert any(key.startswith("F.mlps.4.") for key in cut.state_dict())
    assert [(u.name, u.optimizers) for u in cut.updates(0)] == [
        ("d", ("discriminator",)),
        ("g", ("generator", "patch_head")),
    ]  # the official order: D first, then G and F


def test_the_objective_is_the_weighted_sum_of_its_terms(make_cfg):
    for model, nce_terms in (("cut", {"gan", "nce", "nce_idt"}), ("fastcut", {"gan", "nce", "nce_idt"})):
        cut = build_model(make_cfg(f"model={model}"))
        batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
        carry = {}
        cut.before_updates(batch, carry)
        d_loss, d_logs = cut.discriminator_loss(batch, carry)
        assert set(d_logs) == {"d"} and torch.isfinite(d_loss)
        total, logs = cut.generator_loss(batch, carry)
        w = cut.weights
        assert set(logs) == nce_terms
        if model == "cut":
            expected = w.gan_w * logs["gan"] + 1.0 * (logs["nce"] + logs["nce_idt"]) / 2
            assert logs["nce_idt"].item() > 0
        else:
            expected = w.gan_w * logs["gan"] + 10.0 * logs["nce"]
            assert logs["nce_idt"].item() == 0
        torch.testing.assert_close(total, expected)


def test_fastcut_flips_the_inputs_and_flips_the_translation_features_back(make_cfg):
    fastcut = build_model(make_cfg("model=fastcut"))
    assert fastcut.weights.flip_equivariance and not fastcut.weights.nce_idt
    torch.manual_seed(0)
    draws = [bool(_flip_of(fastcut)) for _ in range(40)]
    assert 10 <= sum(draws) <= 30  # a fair coin per iteration
    generator_inputs, head_inputs = [], []
    fastcut.G.register_forward_hook(lambda module, args, output: generator_inputs.append(args[0]))
    fastcut.F.register_forward_hook(lambda module, args, output: head_inputs.append(args[0]))
    batch, carry = batch_of(2), {}
    # FastCUT flips when its first draw of the iteration is below 0.5: start from a seed where it is
    flipping_seed = next(s for s in range(100) if torch.manual_seed(s) is not None and torch.rand(()) < 0.5)
    torch.manual_seed(flipping_seed)
    fastcut.before_updates(batch, carry)
    fastcut.generator_loss(batch, carry)
    # one translation per iteration, shared by the D and G updates
    assert bool(carry["flip"]) and len(generator_inputs) == 1
    torch.testing.assert_close(generator_inputs[0], batch["A"].flip(3))  # G translates the mirrored input
    translation = fastcut.G(batch["A"].flip(3))
    _keys, queries = head_inputs
    for query, feature in zip(queries, fastcut.G.features(translation, fastcut.nce_layers), strict=True):
        torch.testing.assert_close(query, feature.flip(3))  # compared with the source where it came from


def test_cut_draws_no_flip(make_cfg):
    cut = build_model(make_cfg("model=cut"))
    batch, carry = batch_of(1), {}
    state = torch.get_rng_state()
    cut.before_updates(batch, carry)
    assert not bool(carry["flip"]) and torch.equal(torch.get_rng_state(), state)


def batch_of(size: int) -> dict[str, torch.Tensor]:
    return {"A": torch.rand(size, 3, 32, 32) * 2 - 1, "B": torch.rand(size, 3, 32, 32) * 2 - 1}


def _flip_of(model) -> torch.Tensor:
    carry = {}
    model.before_updates(batch_of(1), carry)
    return carry["flip"]


def test_the_other_direction_is_refused_naming_the_fix(make_cfg):
    cut = build_model(make_cfg("model=cut"))
    x = torch.zeros(1, 3, 32, 32)
    assert cut.translate(x, "AtoB").shape == x.shape and translation_directions(cut) == ("AtoB",)
    with pytest.raises(ConfigError) as refusal:
        cut.translate(x, "BtoA")
    assert str(refusal.value).count("\n") == 0 and "data.direction=BtoA" in str(refusal.value)
    with pytest.raises(TypeError, match="no options"):
        cut.translate(x, "AtoB", n_styles=3)


def test_data_direction_swaps_the_training_domains_and_the_cut_translates_that_way(make_cfg):
    forward = instantiate(make_cfg("model=cut").data, _convert_="all")
    swapped = instantiate(make_cfg("model=cut", "data.direction=BtoA").data, _convert_="all")
    forward.setup(), swapped.setup()
    key = (1, 2, 7)
    torch.testing.assert_close(swapped.train_set[key]["A"], forward.train_set.source_b.load(1, 7))
    torch.testing.assert_close(swapped.train_set[key]["B"], forward.train_set.source_a.load(2, 8))
    torch.testing.assert_close(
        swapped.test_images("A", 2), forward.test_images("A", 2)
    )  # test sets keep their domains
    cut = build_model(make_cfg("model=cut", "data.direction=BtoA"))
    assert translation_directions(cut) == ("BtoA",)
    assert [name for name, _ in cut.sample_rows(forward.sample_inputs(1))] == [
        "real_B",
        "fake_A",
        "identity_A",
    ]
    with pytest.raises(ConfigError, match="direction='AtoB'.*data.direction=AtoB"):
        cut.translate(torch.zeros(1, 3, 32, 32), "AtoB")
    with pytest.raises(InstantiationException) as wrong:
        instantiate(make_cfg("model=cut", "data.direction=sideways").data, _convert_="all")
    assert isinstance(wrong.value.__cause__, ConfigError) and "data.direction='sideways'" in str(wrong.value)


def test_a_two_sided_model_refuses_a_swapped_direction(make_cfg):
    cfg = make_cfg("model=cyclegan", "data.direction=BtoA")
    with pytest.raises(ConfigError, match="data.direction='BtoA'.*CycleGAN learns both directions"):
        check_data_fits_model(cfg, instantiate(cfg.data, _convert_="all"))
    for one_way in ("cut", "fastcut"):
        cfg = make_cfg(f"model={one_way}", "data.direction=BtoA")
        check_data_fits_model(cfg, instantiate(cfg.data, _convert_="all"))


@pytest.mark.slow
@pytest.mark.parametrize(("model", "data"), [("cut", "shapes_color"), ("fastcut", "shapes_geometry")])
def test_tiny_end_to_end_run_scores_its_one_direction(make_cfg, tmp_path, model, data):
    metrics, objects = train(make_cfg(f"model={model}", f"data={data}"))
    assert objects["model"].iteration == 4
    names = ("content_iou", "domain_acc") if data == "shapes_color" else ("shape_acc", "centroid_err")
    assert set(metrics) == {f"{name}_AtoB" for name in names}
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["iteration"] == 4 and report["metrics"] == metrics
    assert (tmp_path / "samples" / "rows.txt").read_text().split() == ["real_A", "fake_B", "identity_B"]
    csv = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/g_nce" in csv and "train/lr_patch_head" in csv


@pytest.mark.slow
def test_a_cut_trained_b_to_a_translates_b_to_a_and_the_cli_refuses_a_to_b(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    overrides = [*FAST, *FAST_SHAPES, "model=cut", "data.direction=BtoA", "trainer.max_steps=2"]
    metrics, _ = train(compose_config([*overrides, "data.image_size=32"], run))
    assert set(metrics) == {"content_iou_BtoA", "domain_acc_BtoA"}
    inputs = tmp_path / "in"
    inputs.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(inputs / "x.png")
    checkpoint = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    arguments = [checkpoint, f"input_dir={inputs}", "device=cpu"]
    run_cli(translate_cli.main, monkeypatch, *arguments, f"output_dir={tmp_path / 'out'}", "direction=BtoA")
    assert (tmp_path / "out" / "x.png").is_file()
    capsys.readouterr()  # what training and the first translation printed
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            translate_cli.main, monkeypatch, *arguments, f"output_dir={tmp_path / 'no'}", "direction=AtoB"
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: direction='AtoB'")
    assert "data.direction=AtoB" in err[0] and not (tmp_path / "no").exists()


@pytest.mark.slow
def test_fastcut_resumes_exactly_with_its_flips_and_patch_draws(make_cfg, tmp_path):
    overrides = ["model=fastcut", "model.scheduler.lr_lambda.total=6", "data.domains.num_train=4"]
    _, straight = train(make_cfg(*overrides, "trainer.max_steps=6", output_dir=tmp_path / "straight"))
    train(make_cfg(*overrides, "trainer.max_steps=3", output_dir=tmp_path / "first"))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed_cfg = make_cfg(
        *overrides, "trainer.max_steps=6", f"ckpt_path={checkpoint}", output_dir=tmp_path / "resumed"
    )
    _, resumed = train(resumed_cfg)
    assert resumed["model"].iteration == 6
    expected, actual = straight["model"].state_dict(), resumed["model"].state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


@pytest.mark.slow
def test_two_ddp_processes_on_cpu_train_cut_with_equal_weights(tmp_path):
    from test_scale import DETERMINISTIC, finish, free_port, launch

    settings = [o for o in DETERMINISTIC if not o.startswith("model")] + ["model=cut", "data.batch_size=1"]
    finish(
        launch(["trainer=ddp_cpu", *settings], tmp_path / "w", tmp_path / "run", MASTER_PORT=str(free_port()))
    )
    ranks = [torch.load(tmp_path / "w" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["iteration"] == ranks[1]["iteration"] == 3
    # each rank samples its own patches; the averaged gradients keep the networks equal
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(value, ranks[1]["state_dict"][key]), key


@pytest.mark.slow
def test_cut_optuna_searches_the_nce_weight_and_the_number_of_patches(monkeypatch, tmp_path):
    import yaml
    from test_scale import FAST_CLI

    from i2i import train as train_cli

    run_cli(
        train_cli.main,
        monkeypatch,
        "hparams_search=cut_optuna",
        "hydra.sweeper.n_trials=2",
        *[o for o in FAST_CLI if o != "model=cyclegan"],
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"loss.nce_w", "loss.num_patches"}
    reported = [json.loads((tmp_path / "sweep" / str(j) / "metrics.json").read_text()) for j in (0, 1)]
    assert results["best_value"] == max(r["metrics"]["domain_acc_AtoB"] for r in reported)
    job = yaml.safe_load((tmp_path / "sweep" / "0" / ".hydra" / "config.yaml").read_text())
    assert job["model"]["_target_"] == "i2i.models.cut.CUT"


@pytest.mark.slow
def test_image_metrics_score_the_one_direction_a_cut_learned(
    make_cfg, tmp_path, metric_weights_home, monkeypatch
):
    from test_image_metrics import IMAGE_METRICS

    monkeypatch.setenv("TORCH_HOME", str(metric_weights_home))
    train(make_cfg("model=cut", "data.direction=BtoA", *IMAGE_METRICS))
    report = json.loads((tmp_path / "image_metrics.json").read_text())
    assert [s["metric"] for s in report["scores"]] == ["fid_BtoA", "kid_BtoA"]
    assert "translations vs 2 real images of domain A" in report["scores"][1]["protocol"]
