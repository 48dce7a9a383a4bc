"""MUNIT (Huang et al., ECCV 2018): multimodal translation by recombining content and style codes.

Each domain has an auto-encoder G_a, G_b (`AdaINAutoEncoder`) that splits an image into a content
code c (spatial, shared between domains) and a style code s (8-d, domain-specific, prior N(0, I)).
A->B translation decodes A's content with a B style, sampled from the prior (a new translation per
sample) or encoded from a reference B image. D_a scores domain-A images, D_b domain-B images.

Faithful to `NVlabs/MUNIT` (research/nvidia.md §1.1): the official encoders, AdaIN decoder with LN
up-sampling and tanh, 3-layer MLP, multi-scale LSGAN discriminators summed over scales; kaiming
init of everything, then N(0, 0.02) for the discriminators; Adam 1e-4 (0.5, 0.999), weight decay
1e-4, learning rate halved every 100k iterations; batch 1.

Objective (paper Eq. 5; official `gen_update`, `dis_update`), all reconstructions mean |.|:
    (c_a, s_a') = E_a(x_a), (c_b, s_b') = E_b(x_b), s_a, s_b ~ N(0, I)
    x_ba = G_a(c_b, s_a), x_ab = G_b(c_a, s_b)
    L_G = gan_w * [LSGAN(D_a(x_ba), 1) + LSGAN(D_b(x_ab), 1)]
        + recon_x_w * [|G_a(c_a, s_a') - x_a| + |G_b(c_b, s_b') - x_b|]
        + recon_s_w * [|E_a^style(x_ba) - s_a| + |E_b^style(x_ab) - s_b|]
        + recon_c_w * [|E_a^content(x_ba) - c_b| + |E_b^content(x_ab) - c_a|]   (target not detached)
        + recon_x_cyc_w * [|G_a(E_b^content(x_ab), s_a') - x_a| + |G_b(E_a^content(x_ba), s_b') - x_b|]
        + vgg_w * [P(x_ba, x_b) + P(x_ab, x_a)]      (P: domain-invariant perceptual loss)
    L_D = gan_w * [LSGAN(D_a(x_a), 1) + LSGAN(D_a(x_ba), 0) + LSGAN(D_b(x_b), 1) + LSGAN(D_b(x_ab), 0)]

Update order and draws: D, then G, as the official code, and each update encodes both images,
samples its own styles and decodes the translations anew, as the official `dis_update` and
`gen_update` do (the D update with the generators frozen, rendering the translations only).
Reusing the D update's translations in the G update would save two encodes and two decodes but let
both updates see one style sample, a departure from the official code. Each decoder renders its
translation and its reconstruction in one batch, and each discriminator scores real and fake images
in one batch (`i2i.nets.batching`: every norm here is per sample, so this is the same computation in
fewer, larger passes).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_divisible, check_positive
from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.losses.perceptual import DomainInvariantPerceptualLoss
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule
from i2i.nets.autoencoder import AdaINAutoEncoder
from i2i.nets.batching import in_one_pass
from i2i.nets.init import WeightInit
from i2i.rng import prior_codes
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch, Direction

# The sample grids use one fixed set of styles, so successive grids are comparable (the official
# display keeps fixed style noise too).
GRID_STYLE_SEED = 0


@dataclass(frozen=True)
class MUNITLoss(LossWeights):
    """Loss weights of the official configs; `vgg_weights_path` is where the perceptual loss's
    VGG16 weights are when they are not in the torch hub cache, `allow_unpublished_weights` accepts
    a VGG16 file whose digest is not the published one (False for checkpoints that predate it)."""

    gan_mode: str
    gan_w: float
    recon_x_w: float
    recon_s_w: float
    recon_c_w: float
    recon_x_cyc_w: float
    vgg_w: float
    vgg_weights_path: str | None = None
    allow_unpublished_weights: bool = False


class MUNIT(TranslationModule):
    def __init__(
        self,
        *,
        generator: Callable[[], AdaINAutoEncoder],
        discriminator: Callable[[], nn.Module],
        loss: MUNITLoss,
        image_size: int,
        init: WeightInit,
        grid_styles: int,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        check_positive("model.grid_styles", grid_styles)
        self.weights = loss
        self.grid_styles = grid_styles
        self.G_a, self.G_b = generator(), generator()
        self.D_a, self.D_b = discriminator(), discriminator()
        init.apply(generators=(self.G_a, self.G_b), discriminators=(self.D_a, self.D_b))
        check_divisible(
            "data.image_size", image_size, self.G_a.downsampling_factor, "the content encoder halves it"
        )
        self.D_a.check_input_size(image_size)
        self.style_dim = self.G_a.style_dim
        self.adv = AdversarialLoss(loss.gan_mode)
        self.perceptual = (
            DomainInvariantPerceptualLoss(loss.vgg_weights_path, loss.allow_unpublished_weights)
            if loss.vgg_w > 0
            else None
        )

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": [*self.G_a.parameters(), *self.G_b.parameters()],
            "discriminator": [*self.D_a.parameters(), *self.D_b.parameters()],
        }

    def _prior_styles(self, batch: Batch, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Styles s_a, s_b ~ N(0, I) for the translations into A and into B, drawn anew at each call."""
        x_a, x_b = batch["A"], batch["B"]
        s_a = torch.randn(x_a.size(0), self.style_dim, device=x_a.device, dtype=dtype)
        return s_a, torch.randn(x_b.size(0), self.style_dim, device=x_b.device, dtype=dtype)

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        c_a, c_b = self.G_a.content_encoder(batch["A"]), self.G_b.content_encoder(batch["B"])
        s_a, s_b = self._prior_styles(batch, c_a.dtype)
        x_ba, x_ab = self.G_a.decode(c_b, s_a), self.G_b.decode(c_a, s_b)
        # each D scores model.discriminator.num_scales (officially 3) resolutions: terms summed over them
        d_a = self.adv.d_summed(self.D_a, batch["A"], x_ba)
        d_b = self.adv.d_summed(self.D_b, batch["B"], x_ab)
        return self.weights.gan_w * (d_a + d_b), {"d_a": d_a, "d_b": d_b}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x_a, x_b, w = batch["A"], batch["B"], self.weights
        c_a, s_a_prime = self.G_a.encode(x_a)
        c_b, s_b_prime = self.G_b.encode(x_b)
        s_a, s_b = self._prior_styles(batch, s_a_prime.dtype)
        # each decoder makes the translation and the reconstruction in one pass
        x_ba, x_a_recon = in_one_pass(self.G_a.decode, (c_b, s_a), (c_a, s_a_prime))
        x_ab, x_b_recon = in_one_pass(self.G_b.decode, (c_a, s_b), (c_b, s_b_prime))
        gan = summed_over(self.adv.g, self.D_a(x_ba)) + summed_over(self.adv.g, self.D_b(x_ab))  # over scales
        recon_x = F.l1_loss(x_a_recon, x_a) + F.l1_loss(x_b_recon, x_b)
        zero = x_a.new_zeros(())
        recon_s = recon_c = recon_x_cyc = vgg = zero
        if w.recon_s_w > 0:
            s_a_recon, s_b_recon = self.G_a.style_encoder(x_ba), self.G_b.style_encoder(x_ab)
            recon_s = F.l1_loss(s_a_recon, s_a) + F.l1_loss(s_b_recon, s_b)
        if w.recon_c_w > 0 or w.recon_x_cyc_w > 0:
            c_b_recon, c_a_recon = self.G_a.content_encoder(x_ba), self.G_b.content_encoder(x_ab)
            recon_c = F.l1_loss(c_a_recon, c_a) + F.l1_loss(c_b_recon, c_b)
            if w.recon_x_cyc_w > 0:  # two more decodes, made only when the term is on
                x_aba, x_bab = self.G_a.decode(c_a_recon, s_a_prime), self.G_b.decode(c_b_recon, s_b_prime)
                recon_x_cyc = F.l1_loss(x_aba, x_a) + F.l1_loss(x_bab, x_b)
        if self.perceptual is not None:
            vgg = self.perceptual(x_ba, x_b) + self.perceptual(x_ab, x_a)
        total = (
            w.gan_w * gan
            + w.recon_x_w * recon_x
            + w.recon_s_w * recon_s
            + w.recon_c_w * recon_c
            + w.recon_x_cyc_w * recon_x_cyc
            + w.vgg_w * vgg
        )
        logs = {
            "gan": gan,
            "recon_x": recon_x,
            "recon_s": recon_s,
            "recon_c": recon_c,
            "recon_x_cyc": recon_x_cyc,
        }
        return total, logs | {"vgg": vgg}

    # ------------------------------------------------------------------ inference
    def sample_styles(
        self, batch_size: int, n_styles: int, style_seed: int | None, device: torch.device
    ) -> Tensor:
        """(batch_size * n_styles, style_dim) codes from the prior, grouped per input (`prior_codes`)."""
        return prior_codes(batch_size, n_styles, self.style_dim, style_seed, device)

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        """x (B, 3, H, W) in the other domain, each input with one style sampled from the prior."""
        return self.translate_styles(x, direction, 1)[:, 0]

    @torch.inference_mode()
    def translate_styles(
        self, x: Tensor, direction: Direction, n_styles: int, style_seed: int | None = None
    ) -> Tensor:
        """(B, n_styles, 3, H, W): x translated with `n_styles` styles sampled from the prior each;
        `style_seed` makes them reproducible (`sample_styles`)."""
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        source, target = self._source_target(direction)
        content = source.content_encoder(x)
        codes = self.sample_styles(len(x), n_styles, style_seed, x.device)
        images = target.decode(content.repeat_interleave(n_styles, dim=0), codes.to(content.dtype))
        return images.view(len(x), n_styles, *images.shape[1:])

    @torch.inference_mode()
    def translate_reference(self, x: Tensor, direction: Direction, reference: Tensor) -> Tensor:
        """x translated with the encoded style of `reference`, images (1 or B, 3, H', W') of the
        target domain."""
        return self.translate_codes(x, direction, self._source_target(direction)[1].style_encoder(reference))

    @torch.inference_mode()
    def translate_codes(self, x: Tensor, direction: Direction, style: Tensor) -> Tensor:
        """x translated with style codes (1 or B, style_dim) of the target domain."""
        source, target = self._source_target(direction)
        content = source.content_encoder(x)
        return target.decode(content, style.reshape(style.size(0), -1).to(content.dtype).expand(len(x), -1))

    def _source_target(self, direction: Direction) -> tuple[AdaINAutoEncoder, AdaINAutoEncoder]:
        """The (source, target) generators of `direction`."""
        return (self.G_a, self.G_b) if direction == "AtoB" else (self.G_b, self.G_a)

    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """Per direction: the inputs, their reconstructions, `grid_styles` translations with fixed
        random styles, and one translation in the style of the other domain's images (the
        reference of input i is the target domain's image i, shown in its own real row)."""
        rows = []
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            real = images[source]
            rows += [
                (f"real_{source}", real),
                (f"recon_{source}", (self.G_a if source == "A" else self.G_b)(real)),
            ]
            styles = self.translate_styles(real, direction, self.grid_styles, GRID_STYLE_SEED)
            rows += [(f"fake_{target}_style{j}", styles[:, j]) for j in range(self.grid_styles)]
            rows.append((f"fake_{target}_ref", self.translate_reference(real, direction, images[target])))
        return rows
