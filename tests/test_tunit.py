"""TUNIT: its blocks, losses against hand computations, the phase schedule, the official parameter
counts, exact resume (queue and averages included) and a tiny end-to-end run."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import configured_network
from helpers.params import count
from torch import nn

from i2i.errors import ConfigError
from i2i.losses.contrastive import KeyQueue, contrastive_loss, iic_loss
from i2i.models.tunit import TUNITLoss
from i2i.nets.blocks import PreNormResidualBlock
from i2i.nets.norms import FilterResponseNorm2d, make_norm
from i2i.train import build_model, train

SMALL = ["model=tunit", "data=shapes_unlabeled", "data.batch_size=4"]


def batch(size: int = 4, pixels: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {k: torch.rand(size, 3, pixels, pixels, generator=generator) * 2 - 1 for k in ("x", "x_tf")}


# ---------------------------------------------------------------- blocks
def test_frn_divides_by_the_root_mean_square_and_thresholds_at_tau():
    norm = FilterResponseNorm2d(1)
    with torch.no_grad():
        norm.gamma.fill_(2.0), norm.beta.fill_(-0.5), norm.tau.fill_(0.1)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    rms = math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6)
    expected = torch.tensor([[[[max(2 * v / rms - 0.5, 0.1) for v in row] for row in ((1, 2), (3, 4))]]])
    torch.testing.assert_close(norm(x), expected)
    assert isinstance(make_norm("frn", 8), FilterResponseNorm2d) and count(make_norm("frn", 8)) == 24


def test_pre_norm_residual_block_averages_shortcut_and_residual():
    block = PreNormResidualBlock(4, 4, norm="none", downsample=True)
    nn.init.zeros_(block.conv2.weight), nn.init.zeros_(block.conv2.bias)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), F.avg_pool2d(x, 2) / math.sqrt(2))  # zero residual
    wider = PreNormResidualBlock(4, 8, norm="frn")
    assert wider(x).shape == (2, 8, 8, 8) and wider.shortcut.bias is None


def test_discriminator_picks_the_logit_of_each_image_s_domain():
    discriminator = configured_network(
        "tunit", "discriminator", image_size=32, num_domains=3, dim=8, max_dim=16
    )
    x, domain = torch.randn(4, 3, 32, 32), torch.tensor([2, 0, 1, 2])
    logits = discriminator.logits(x)
    assert logits.shape == (4, 3)
    torch.testing.assert_close(discriminator(x, domain), logits[torch.arange(4), domain])
    with pytest.raises(ConfigError, match="data.image_size=48 .* power of two"):
        configured_network("tunit", "discriminator", image_size=48, num_domains=3)


def test_guide_heads_and_official_initialisation():
    guide = configured_network("tunit", "guide")  # 10 clusters, style 128
    style, logits = guide(torch.randn(3, 3, 32, 32))
    assert style.shape == (3, 128) and logits.shape == (3, 10)
    assert sum(isinstance(m, nn.Conv2d) for m in guide.modules()) == 8  # VGG11
    assert sum(isinstance(m, nn.MaxPool2d) for m in guide.modules()) == 5
    assert abs(guide.style.weight.std().item() - 0.01) < 1e-3 and not guide.style.bias.any()
    last_conv = [m for m in guide.modules() if isinstance(m, nn.Conv2d)][-1]  # kaiming, fan_out = 9 * 512
    assert abs(last_conv.weight.std().item() - math.sqrt(2 / (9 * 512))) < 2e-3


def test_generator_scales_every_residual_by_a_tenth_and_keeps_the_size():
    generator = configured_network("tunit", "generator", image_size=64, style_dim=8, dim=8, mlp_dim=16)
    assert generator.encode(torch.randn(2, 3, 64, 64)).shape == (2, 32, 16, 16)  # content 16 x 16
    assert generator(torch.randn(2, 3, 64, 64), torch.randn(2, 8)).shape == (2, 3, 64, 64)
    scales = [m.res_scale for m in generator.modules() if hasattr(m, "res_scale")]
    assert scales == [0.1] * 4  # 2 encoder blocks, 2 AdaIN decoder blocks
    with pytest.raises(ConfigError, match="data.image_size=48 .* 16 x a power of two"):
        configured_network("tunit", "generator", image_size=48, style_dim=8)


# ---------------------------------------------------------------- losses
def test_iic_of_confident_consistent_balanced_clusters_is_minus_log_k():
    probs = torch.eye(3)
    torch.testing.assert_close(iic_loss(probs, probs), torch.tensor(-math.log(3)))
    uniform = torch.full((4, 3), 1 / 3)
    torch.testing.assert_close(iic_loss(uniform, uniform), torch.tensor(0.0), atol=1e-6, rtol=0)


def test_iic_matches_the_mutual_information_of_the_symmetrised_joint():
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    probs_tf = torch.tensor([[0.6, 0.4], [0.1, 0.9]])
    # joint = sum_b p_b p_tf_b^T = [[0.44, 0.46], [0.26, 0.84]]; symmetrised, over its sum 2:
    joint = [[0.22, 0.18], [0.18, 0.42]]
    marginal = [0.40, 0.60]
    mutual = sum(
        joint[i][j] * math.log(joint[i][j] / (marginal[i] * marginal[j])) for i in range(2) for j in range(2)
    )
    torch.testing.assert_close(iic_loss(probs, probs_tf), torch.tensor(-mutual))


def test_contrastive_loss_is_the_cross_entropy_of_the_positive_key():
    query, key = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits / tau = [2, 0, -2] for tau 0.5, the positive first
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    torch.testing.assert_close(contrastive_loss(query, key, negatives, 0.5), torch.tensor(expected))
    query.requires_grad_(True)
    contrastive_loss(query, key.requires_grad_(True), negatives, 0.07).backward()
    assert query.grad is not None and key.grad is None  # keys are constants


def test_queue_keeps_the_newest_keys_oldest_first_and_round_trips():
    queue = KeyQueue(size=3, dim=1)
    assert queue.negatives.shape == (0, 1)
    queue.push(torch.tensor([[1.0], [2.0]]))
    assert queue.negatives.flatten().tolist() == [1, 2]
    queue.push(torch.tensor([[3.0], [4.0]]))
    assert queue.negatives.flatten().tolist() == [2, 3, 4] and int(queue.count) == 3
    restored = KeyQueue(size=3, dim=1)
    restored.load_state_dict(queue.state_dict())
    assert torch.equal(restored.negatives, queue.negatives)


def test_bad_loss_weights_name_the_key():
    weights = dict(
        temperature=0.07,
        moco_w=1,
        iic_w=5,
        guide_gan_phase_scale=0.1,
        gan_mode="hinge",
        gan_w=1,
        r1_w=10,
        recon_w=0.1,
        style_w=0.01,
    )
    with pytest.raises(ConfigError, match="loss.temperature=0"):
        TUNITLoss(**weights | {"temperature": 0})
    with pytest.raises(ConfigError, match="loss.iic_w=-1"):
        TUNITLoss(**weights | {"iic_w": -1})


# ---------------------------------------------------------------- the model
def test_paper_preset_matches_the_parameter_counts_of_the_layer_tables(make_cfg):
    """Counted on the meta device at 128 px, K 10, style 128, and equal to the layer tables of
    research/ugatit_others.md §5.1 (conv k x k: k^2 in out + out; BN and FRN 2 and 3 per channel):
    C: sum over VGG11 convs (3-64-128-256-256-512-512-512-512) of 9 in out + 3 out, + 512*10+10 + 512*128+128
    G: conv7 3-64, conv4 64-128-256-512, 2 IN res blocks + 2 AdaIN res blocks at 512 (2 conv3 each),
       conv5 512-256-128-64, conv7 64-3, MLP 128-256-256-4992 (4992 AdaIN parameters)
    D: conv3 3-64, per stage (64,128) (128,256) (256,512) (512,1024) (1024,1024) two blocks of 2 FRN
       + 2 conv3 (+ a 1x1 shortcut when widening), conv4 1024-1024, conv1 1024-10."""
    cfg = make_cfg("model=tunit", "data=shapes_unlabeled", "preset=paper", "data.image_size=128", fast=False)
    with torch.device("meta"):
        model = build_model(cfg)
    assert count(model.C) == count(model.C_ema) == 9_296_778
    assert count(model.G) == count(model.G_ema) == 27_333_763
    assert count(model.D) == 70_935_242


def test_phase_schedule_guide_alone_then_guide_discriminator_and_generator(make_cfg):
    model = build_model(make_cfg(*SMALL, "model.separated=5"))
    assert [(u.name, u.optimizers) for u in model.updates(4)] == [("c", ("guide",))]
    assert [(u.name, u.optimizers) for u in model.updates(5)] == [
        ("c", ("guide",)),
        ("d", ("discriminator",)),
        ("g", ("generator", "guide")),
    ]
    data = batch()
    before, _ = model.guide_loss(data, {})
    model.iteration = 5
    after, logs = model.guide_loss(data, {})
    torch.testing.assert_close(after, 0.1 * before)  # the official scales L_C once the GAN trains
    torch.testing.assert_close(after, 0.1 * (logs["moco"] + 5 * logs["iic"]))


def test_losses_are_the_weighted_sums_and_the_generator_loss_trains_the_guide(make_cfg):
    model = build_model(make_cfg(*SMALL, "model.separated=0"))
    data, carry = batch(), {}
    _, _ = model.guide_loss(data, carry)
    assert carry["keys"].shape == (4, 128) and not carry["keys"].requires_grad
    d_loss, d_logs = model.discriminator_loss(data, carry)
    torch.testing.assert_close(d_loss, d_logs["real"] + d_logs["fake"] + 10 * d_logs["r1"])
    with torch.no_grad():
        assert torch.equal(carry["domain"], model.C(data["x"])[1].argmax(dim=1))  # pseudo-labels
    assert sorted(carry["perm"].tolist()) == [0, 1, 2, 3]
    g_loss, g_logs = model.generator_loss(data, carry)
    torch.testing.assert_close(g_loss, g_logs["gan"] + 0.1 * g_logs["recon"] + 0.01 * g_logs["style"])
    g_loss.backward()
    assert all(p.grad is not None for p in [*model.C.trunk.parameters(), *model.C.style.parameters()])
    assert model.C.cluster.weight.grad is None  # only the style head and the trunk serve G
    assert all(p.grad is None for p in model.C_ema.parameters())


def test_after_updates_queues_the_keys_and_moves_the_momentum_guide(make_cfg):
    model = build_model(make_cfg(*SMALL))
    with torch.no_grad():
        for p in model.C.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.C_ema.parameters()]
    keys = torch.randn(4, 128)
    model.after_updates(batch(), {"keys": keys})
    assert torch.equal(model.queue.negatives, keys)
    for average, old, live in zip(model.C_ema.parameters(), before, model.C.parameters()):
        torch.testing.assert_close(average, 0.999 * old + 0.001 * live)
    assert all(torch.equal(a, b) for a, b in zip(model.C_ema.buffers(), model.C.buffers()))


def test_translate_follows_the_reference_with_the_averaged_networks(make_cfg):
    model = build_model(make_cfg(*SMALL, "model.reference_guide=average")).eval()  # the official (tiny: live)
    x, references = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    out = model.translate_like(x, references)
    assert out.shape == x.shape
    torch.testing.assert_close(
        model.translate_like(x, references[:1]), model.translate_like(x, references[:1].expand(3, -1, -1, -1))
    )
    with torch.no_grad():
        for p in model.G.parameters():
            p.add_(1.0)
    assert torch.equal(model.translate_like(x, references), out)  # G_EMA, not G


def test_translate_can_encode_references_with_the_live_guide(make_cfg):
    model = build_model(make_cfg(*SMALL, "model.reference_guide=live")).eval()
    x, references = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        for p in model.C.parameters():
            p.add_(0.01)  # the live guide now differs from its average
        style, _ = model.C(references)
        expected = model.G_ema(x, style)
        for p in model.C_ema.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model.translate_like(x, references), expected)
    with pytest.raises(ConfigError, match="model.reference_guide='ema'"):
        build_model(make_cfg(*SMALL, "model.reference_guide=ema"))


def test_inconsistent_cluster_counts_are_refused(make_cfg):
    with pytest.raises(ConfigError, match="model.discriminator.num_domains=3 .* 10 clusters"):
        build_model(make_cfg(*SMALL, "model.discriminator.num_domains=3"))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# Crosses both phases, the G_EMA start and epoch boundaries (8 images, batch 4).
RESUME = [
    *SMALL,
    "trainer.max_steps={n}",
    "model.separated=2",
    "callbacks.ema.start_iteration=3",
    "data.domains.num_train=2",
    "model.queue_size=6",
]


@pytest.mark.slow
def test_tiny_run_trains_both_phases_and_resumes_exactly(make_cfg, tmp_path):
    overrides = lambda n: [o.format(n=n) for o in RESUME]
    metrics, straight = train(make_cfg(*overrides(6), output_dir=tmp_path / "straight"))
    assert straight["model"].iteration == 6
    assert set(metrics) == {"cluster_nmi", "domain_acc", "content_iou"} and all(
        0 <= v <= 1 for v in metrics.values()
    )
    assert (tmp_path / "straight" / "samples" / "rows.txt").read_text().split() == [
        "source",
        "reference",
        "translation",
        "reconstruction",
    ]
    log = (tmp_path / "straight" / "csv" / "metrics.csv").read_text()
    assert "train/c_iic" in log and "train/d_r1" in log and "train/g_style" in log
    train(make_cfg(*overrides(3), output_dir=tmp_path / "first"))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    _, resumed = train(make_cfg(*overrides(6), f"ckpt_path={checkpoint}", output_dir=tmp_path / "resumed"))
    expected, actual = weights(straight["model"]), weights(resumed["model"])
    assert expected.keys() == actual.keys() and {"queue.keys", "queue.count"} <= expected.keys()
    assert int(expected["queue.count"]) == 6  # full: the queue has wrapped
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert not torch.equal(expected["G_ema.mlp.0.0.weight"], expected["G.mlp.0.0.weight"])  # averaging


def test_the_quality_bar_checks_metrics_without_a_direction():
    from bench.quality import BARS, check

    verdicts = check({"cluster_nmi": 0.9, "domain_acc": 0.7, "content_iou": 0.5}, BARS["tunit"])
    assert verdicts == {"cluster_nmi": True, "domain_acc": False}
