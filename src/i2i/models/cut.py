"""CUT and FastCUT (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation",
ECCV 2020): one generator, one direction, kept faithful to its input by a patchwise contrastive loss
instead of a cycle.

G maps the source domain to the target domain; D scores target-domain images; F (a 2-layer MLP per
layer) projects features of G's encoder at the official layers 0, 4, 8, 12, 16 for PatchNCE
(`i2i.losses.patchnce`). Faithful to `taesungp/contrastive-unpaired-translation` (options/, models/
cut_model.py, networks.py): resnet_9blocks and the 70x70 PatchGAN with anti-aliased down/up-sampling,
instance norm, xavier init gain 0.02, LSGAN, no image pool, 256 patches per layer, temperature 0.07,
negatives from the same image, Adam 2e-4 (0.5, 0.999) for G, D and F, constant then linear decay
(stepped per iteration here). CUT: NCE weight 1 with the identity term on real target images;
FastCUT (`model=fastcut`, the same class): NCE weight 10, no identity term, flip-equivariance.
The direction it learns is `data.direction`: the datamodule swaps the domains for BtoA, as the
official `--direction`, so the batch's "A" is always the source here.

As in the official `optimize_parameters`, G translates once per iteration (`before_updates`, the
official `forward()`: the source and, for the identity term, the target in one pass), D updates on
that translation detached, then G and F update against the updated D through the same translation's
graph. F is built in `__init__` from the known channel counts of those layers (the official one is
built on the first batch), so its weights and optimizer state exist from the start.

Objective (paper Eq. 5; the official `compute_G_loss`, `compute_D_loss`):
    L_G = gan_w * LSGAN(D(G(x)), 1) + nce_w * NCE,  NCE = [PatchNCE(x, G(x)) + PatchNCE(y, G(y))] / 2
          (CUT; FastCUT: NCE = PatchNCE(x, G(x))), PatchNCE averaged over the layers
    L_D = 0.5 * [LSGAN(D(y), 1) + LSGAN(D(G(x)), 0)]
With flip-equivariance (FastCUT) each iteration flips the inputs of G horizontally with probability
1/2 and flips the translation's features back before PatchNCE, so G must commute with the flip.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from i2i.errors import ConfigError, check_choice, check_divisible
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.patchnce import patch_nce_loss, sample_patch_ids
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule, Update
from i2i.nets.batching import in_one_pass
from i2i.nets.init import WeightInit
from i2i.nets.patch_head import PatchProjection
from i2i.nets.pool import ImagePool
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch, Direction


@dataclass(frozen=True)
class CUTLoss(LossWeights):
    """Loss weights and PatchNCE settings (official lambda_GAN, lambda_NCE, nce_idt, num_patches,
    nce_T, flip_equivariance)."""

    gan_mode: str
    gan_w: float
    nce_w: float
    nce_idt: bool  # the identity term PatchNCE(y, G(y)) on real target images
    flip_equivariance: bool
    num_patches: int  # sampled per layer and image
    temperature: float

    positive = ("num_patches", "temperature")


class CUT(TranslationModule):
    def __init__(
        self,
        *,
        generator: Callable[[], nn.Module],
        discriminator: Callable[[], nn.Module],
        patch_head: Callable[..., PatchProjection],
        nce_layers: Sequence[int],
        loss: CUTLoss,
        pool_size: int,
        image_size: int,
        direction: str,
        init: WeightInit,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        check_choice("data.direction", direction, DIRECTIONS)
        self.direction: Direction = direction  # type: ignore[assignment]
        self.weights = loss
        self.nce_layers = list(nce_layers)
        self.G, self.D = generator(), discriminator()
        self.F = patch_head(in_channels=self.G.feature_channels(self.nce_layers))
        # the official order of the draws: G and D when built, F when (lazily) built after them
        init.apply(generators=(self.G,), discriminators=(self.D,))
        init.apply(generators=(self.F,), discriminators=())
        check_divisible(
            "data.image_size", image_size, self.G.downsampling_factor, "the generator halves it twice"
        )
        self.D.check_input_size(image_size)
        self.adv = AdversarialLoss(loss.gan_mode)
        self.pool = ImagePool(pool_size)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": list(self.G.parameters()),
            "discriminator": list(self.D.parameters()),
            "patch_head": list(self.F.parameters()),
        }

    def updates(self, iteration: int) -> tuple[Update, ...]:
        return (
            Update("d", ("discriminator",), self.discriminator_loss),
            Update("g", ("generator", "patch_head"), self.generator_loss),
        )

    def before_updates(self, batch: Batch, carry: Carry) -> None:
        real_x, real_y = batch["A"], batch["B"]  # source, target (the datamodule applies data.direction)
        flip = self.weights.flip_equivariance and bool(torch.rand(()) < 0.5)
        carry["flip"] = torch.tensor(flip)
        if self.weights.nce_idt:  # G translates the source and maps the target in one pass
            carry["fake_y"], carry["same_y"] = in_one_pass(
                self.G, (flipped(real_x, flip),), (flipped(real_y, flip),)
            )
        else:
            carry["fake_y"] = self.G(flipped(real_x, flip))

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        fake_y = carry["fake_y"].detach()
        # 0.5 is not a tunable weight: the official D averages its real and fake terms
        d = 0.5 * self.adv.d(self.D, batch["B"], self.pool.query(fake_y))
        return d, {"d": d}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        real_x, real_y, w = batch["A"], batch["B"], self.weights
        flip, fake_y = bool(carry["flip"]), carry["fake_y"]
        nce_idt = real_x.new_zeros(())
        if w.nce_idt:
            nce_idt = self.patch_nce(real_y, carry["same_y"], flip)
        gan = self.adv.g(self.D(fake_y))
        nce = self.patch_nce(real_x, fake_y, flip)
        contrastive = (nce + nce_idt) / 2 if w.nce_idt else nce
        total = w.gan_w * gan + w.nce_w * contrastive
        return total, {"gan": gan, "nce": nce, "nce_idt": nce_idt}

    def patch_nce(self, source: Tensor, translation: Tensor, flip: bool) -> Tensor:
        """PatchNCE between G's encoder features of `source` (the keys) and of its `translation` (the
        queries, flipped back when the source was flipped), at the same sampled positions, averaged
        over the layers."""
        w = self.weights
        queries = [flipped(f, flip) for f in self.G.features(translation, self.nce_layers)]
        with torch.no_grad():  # the keys pass no gradient (the official detaches them in the loss)
            keys = self.G.features(source, self.nce_layers)
            patch_ids = sample_patch_ids(keys, w.num_patches)
            key_patches = self.F(keys, patch_ids)
        query_patches = self.F(queries, patch_ids)
        losses = [
            patch_nce_loss(q, k, len(source), w.temperature)
            for q, k in zip(query_patches, key_patches, strict=True)
        ]
        return torch.stack(losses).mean()

    def trained_direction(self) -> Direction:
        """The one direction this CUT translates (`data.direction` when it trained)."""
        return self.direction

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction, **options: Any) -> Tensor:
        if options:
            raise TypeError(f"CUT translation takes no options, got {sorted(options)}")
        if direction != self.direction:
            raise ConfigError(
                "direction",
                direction,
                f"this CUT learned {self.direction} only (one generator); "
                f"train one with data.direction={direction} to translate {direction}",
            )
        return self.G(x)

    @torch.no_grad()
    def sample_rows(self, images: dict[str, Tensor]) -> list[tuple[str, Tensor]]:
        """The source test images, their translations, and the target test images mapped by G (what
        the identity PatchNCE keeps)."""
        source, target = SOURCE_TARGET[self.direction]
        return [
            (f"real_{source}", images[source]),
            (f"fake_{target}", self.translate(images[source], self.direction)),
            (f"identity_{target}", self.translate(images[target], self.direction)),
        ]


def flipped(x: Tensor, flip: bool) -> Tensor:
    """x mirrored left-right when `flip`, else x itself."""
    return x.flip(3) if flip else x
