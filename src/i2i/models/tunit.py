"""TUNIT (Baek et al., ICCV 2021): translation between domains that nobody labelled.

A guiding network C clusters the training images (IIC) and embeds their styles (MoCo); a FUNIT
generator G renders an image's content in a reference image's style; a multi-domain discriminator D
judges every image against its pseudo-domain y = argmax C(x). Faithful to `clovaai/tunit@405a77c`
(research/ugatit_others.md §5): VGG11-BN guide with K-way cluster and 128-d style heads, FUNIT
generator with residuals x + 0.1 r, StarGAN v2 discriminator with FRN, hinge loss with R1 on real
references, Adam 1e-4 (wd 1e-3) for C, RMSprop 1e-4 (wd 1e-4) for G and D. Training has two
phases: C alone until `separated`, then C, D and G every iteration.

One iteration (official `trainGAN_UNSUP`), x a batch, x_tf its augmented view, x_ref = x[perm]:
    "c": L_C = scale * [moco_w * MoCo(C_s(x), C_ema_s(x_tf), queue) + iic_w * IIC(C_y(x), C_y(x_tf))]
         with scale 1 before `separated`, guide_gan_phase_scale (0.1) after
    "d": hinge(D(x_ref, y_ref), D(G(x, C_s(x_ref)), y_ref)) + r1_w * R1(D, x_ref)
    "g" (steps G and C): gan_w * [hinge_g(D(G(x, s_ref), y_ref)) + hinge_g(D(G(x, s_x), y))]
         + recon_w * |G(x, s_x) - x|_1 + style_w * MoCo(C_s(G(x, s_ref)), C_ema_s(x_ref), queue)
    then: the keys C_ema_s(x_tf) join the queue, and C_ema moves towards C (every iteration).
G_ema is averaged from `ema_start` on by the `callbacks.ema` callback that `model=tunit` adds.
`translate_like` (and every metric, grid and i2i-translate output built on it) renders with G_ema and
encodes the references with the guide named by `reference_guide`: "average", C_ema, as the official
validation (the default), or "live", C, the guide whose styles G trained on. C_ema is also MoCo's key
encoder, so its decay must stay slow (0.999); it trails C by ~1000 iterations, which vanishes in the
official 200k-iteration run but not in a run of a few thousand, where G_ema (decay set in
`callbacks.ema`) then receives styles that G never saw.

Where the computation differs from the official code, the values do not: each C pass computes both
heads, so C runs once on x where the official runs `C.moco(x)` and `C.iic(x)` separately; and the
reference styles are C_s(x)[perm] rather than a second pass on x[perm] (batch norm sees the same
batch either way, so the statistics and outputs are equal).
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError, check_choice, check_non_negative, check_positive
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.contrastive import KeyQueue, contrastive_loss, iic_loss
from i2i.losses.penalties import r1_penalty
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule, Update
from i2i.nets.init import WeightInit
from i2i.types import Batch


@dataclass(frozen=True)
class TUNITLoss(LossWeights):
    """Loss weights (official `main.py` flags and `train_unsupervised.py` literals)."""

    temperature: float  # MoCo's tau, for the guide's and the generator's contrastive terms
    moco_w: float
    iic_w: float
    guide_gan_phase_scale: float  # the official multiplies L_C by 0.1 once the GAN trains
    gan_mode: str
    gan_w: float  # w_adv, on the translation and on the reconstruction
    r1_w: float  # w_gp
    recon_w: float  # w_rec
    style_w: float  # w_vec

    positive = ("temperature",)
    non_negative = ("guide_gan_phase_scale",)


class TUNIT(TranslationModule):
    data_kind = "unlabeled"

    def __init__(
        self,
        *,
        guide: Callable[[], nn.Module],
        generator: Callable[[], nn.Module],
        discriminator: Callable[[], nn.Module],
        loss: TUNITLoss,
        queue_size: int,
        guide_ema_decay: float,
        separated: int,
        reference_guide: str,
        init: WeightInit,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        check_positive("model.queue_size", queue_size)
        check_choice("model.reference_guide", reference_guide, ("average", "live"))
        check_non_negative("model.separated", separated)
        if not 0 <= guide_ema_decay < 1:
            raise ConfigError("model.guide_ema_decay", guide_ema_decay, "must be in [0, 1)")
        self.weights = loss
        self.C, self.G, self.D = guide(), generator(), discriminator()
        if self.D.num_domains != self.C.num_clusters:
            raise ConfigError(
                "model.discriminator.num_domains",
                self.D.num_domains,
                f"must equal the guide's {self.C.num_clusters} clusters",
            )
        init.apply(generators=(self.G,), discriminators=(self.D,))  # the guide has its own scheme
        # the averaged copies start equal to the live networks (official `load_state_dict` at start)
        self.C_ema = copy.deepcopy(self.C).requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.queue = KeyQueue(queue_size, self.C.style_dim)
        self.guide_ema_decay = guide_ema_decay
        self.separated = separated
        self.reference_guide = reference_guide
        self.adv = AdversarialLoss(loss.gan_mode)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "guide": list(self.C.parameters()),
            "generator": list(self.G.parameters()),
            "discriminator": list(self.D.parameters()),
        }

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """G_ema follows G (`callbacks.ema`); C_ema is advanced by the model itself in `after_updates`."""
        return [(self.G_ema, self.G)]

    def updates(self, iteration: int) -> tuple[Update, ...]:
        guide = Update("c", ("guide",), self.guide_loss)
        if iteration < self.separated:
            return (guide,)
        return (
            guide,
            Update("d", ("discriminator",), self.discriminator_loss),
            Update("g", ("generator", "guide"), self.generator_loss),
        )

    def guide_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x, x_tf, w = batch["x"], batch["x_tf"], self.weights
        with torch.no_grad():
            keys, _ = self.C_ema(x_tf)
        if int(self.queue.count) == 0:  # the official fills the queue with one batch of keys before training
            self.queue.push(keys)
        carry["keys"] = keys
        style, logits = self.C(x)
        _, logits_tf = self.C(x_tf)
        moco = contrastive_loss(style, keys, self.queue.negatives, w.temperature)
        iic = iic_loss(logits.softmax(dim=1), logits_tf.softmax(dim=1))
        scale = w.guide_gan_phase_scale if self.iteration >= self.separated else 1.0
        total = scale * (w.moco_w * moco + w.iic_w * iic)
        return total, {"moco": moco, "iic": iic}

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x, w = batch["x"], self.weights
        with torch.no_grad():
            style, logits = self.C(x)
            domain = logits.argmax(dim=1)
            perm = torch.randperm(len(x), device=x.device)
            fake = self.G(x, style[perm])
        carry["perm"], carry["domain"] = perm, domain
        reference = x[perm].detach().requires_grad_(True)  # a copy: R1 differentiates w.r.t. it
        real_scores = self.D(reference, domain[perm])
        real, fake = self.adv.d_real(real_scores), self.adv.d_fake(self.D(fake, domain[perm]))
        r1 = r1_penalty(real_scores, reference, score_reduction="sum")
        total = real + fake + w.r1_w * r1
        return total, {"real": real, "fake": fake, "r1": r1}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x, w = batch["x"], self.weights
        perm, domain = carry["perm"], carry["domain"]
        style, _ = self.C(x)  # with gradients: this loss trains the guide too
        content = self.G.encode(x)
        fake, recon = self.G.decode(content, style[perm]), self.G.decode(content, style)
        gan = self.adv.g(self.D(fake, domain[perm])) + self.adv.g(self.D(recon, domain))
        recon_l1 = F.l1_loss(recon, x)
        with torch.no_grad():
            reference_keys, _ = self.C_ema(x[perm])
        fake_style, _ = self.C(fake)
        style_term = contrastive_loss(fake_style, reference_keys, self.queue.negatives, w.temperature)
        total = w.gan_w * gan + w.recon_w * recon_l1 + w.style_w * style_term
        return total, {"gan": gan, "recon": recon_l1, "style": style_term}

    @torch.no_grad()
    def after_updates(self, batch: Batch, carry: Carry) -> None:
        self.queue.push(carry["keys"])
        for average, live in zip(self.C_ema.parameters(), self.C.parameters()):
            average.lerp_(live, 1 - self.guide_ema_decay)
        # batch-norm statistics are copied, not averaged (official `copy_norm_params`, there once per epoch)
        for average, live in zip(self.C_ema.buffers(), self.C.buffers()):
            average.copy_(live)

    @torch.inference_mode()
    def translate_like(self, x: Tensor, reference: Tensor) -> Tensor:
        """Render each image of `x` with G_ema in the style of its `reference` image (one reference
        (1, 3, H, W) serves the whole batch), encoded by the `reference_guide`. TUNIT has no named
        domains: the reference decides the target."""
        style, _ = (self.C_ema if self.reference_guide == "average" else self.C)(reference)
        return self.G_ema(x, style.expand(len(x), -1))

    @torch.inference_mode()
    def cluster(self, x: Tensor) -> Tensor:
        """The guide's cluster of each image, (B,) indices in [0, K) (the official `cluster_eval` uses
        the live C)."""
        _, logits = self.C(x)
        return logits.argmax(dim=1)

    @torch.no_grad()
    def sample_rows(self, images: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
        """From test images {"x": ...}: the sources, references (the sources shifted by one), the
        reference-guided translations and the reconstructions (each image its own reference)."""
        x = images["x"]
        reference = x.roll(1, dims=0)
        return [
            ("source", x),
            ("reference", reference),
            ("translation", self.translate_like(x, reference)),
            ("reconstruction", self.translate_like(x, x)),
        ]
