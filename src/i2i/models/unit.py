"""UNIT (Liu et al., NeurIPS 2017): translation through a shared latent space of two VAE-GANs.

Each domain has an auto-encoder G_a, G_b (`AutoEncoder`): the encoder gives the mean h of a
spatial latent code, the decoder renders a code into an image of its domain. A->B translation is
G_b.decode(G_a.encode(x)); D_a scores domain-A images, D_b domain-B images.

The default is the official master code (`mingyuliutw/UNIT:trainer.py UNIT_Trainer`, identical to
`NVlabs/MUNIT`'s; research/nvidia.md §1.2): two independent generators (nothing shared) and a
reduced VAE, z = h + N(0, I) with the std fixed at 1, noise only in training (translation decodes
h), KL = mean(h^2). Multi-scale LSGAN discriminators summed over scales, kaiming init then
N(0, 0.02) for the discriminators, Adam 1e-4 (0.5, 0.999) weight decay 1e-4, learning rate halved
every 100k iterations, batch 1.

`share_layers=true` is the paper's weight sharing as in the original NeurIPS code
(`mingyuliutw/UNIT@version_02:src/trainers/cocogan_nets.py COCOResGen2`, research/nvidia.md §1.3):
the last residual block of the encoders and the first residual block of the decoders are one
module used by both domains, which ties the two latent spaces together. Only the sharing is taken
from that version; the layers, losses and weights stay those of master.

Objective (official `gen_update`, `dis_update`), all reconstructions mean |.|, n ~ N(0, I):
    h_a = E_a(x_a), h_b = E_b(x_b), x_ab = G_b(h_a + n_a), x_ba = G_a(h_b + n_b)
    h_a' = E_b(x_ab), h_b' = E_a(x_ba)
    L_G = gan_w * [LSGAN(D_a(x_ba), 1) + LSGAN(D_b(x_ab), 1)]
        + recon_x_w * [|G_a(h_a + n_a) - x_a| + |G_b(h_b + n_b) - x_b|]
        + recon_kl_w * [mean(h_a^2) + mean(h_b^2)]
        + recon_x_cyc_w * [|G_a(h_a' + n) - x_a| + |G_b(h_b' + n) - x_b|]
        + recon_kl_cyc_w * [mean(h_a'^2) + mean(h_b'^2)]
        + vgg_w * [P(x_ba, x_b) + P(x_ab, x_a)]      (P: domain-invariant perceptual loss)
    L_D = gan_w * [LSGAN(D_a(x_a), 1) + LSGAN(D_a(x_ba), 0) + LSGAN(D_b(x_b), 1) + LSGAN(D_b(x_ab), 0)]

Update order and draws: D, then G, as the official code, and each update encodes both images and
draws its own noise, as the official `dis_update` and `gen_update` do: the D update decodes the two
translations only, with the generators frozen; the G update makes every code, translation and
reconstruction anew. (Reusing the D update's translations in the G update saves a pass but lets
both updates see one noise sample; on real photos that scored below the official trainer.) The
official G update reuses its noise n_a for both x_a's reconstruction and x_ab; so does this one.
Each decoder renders its translation and its reconstruction in one batch, and each discriminator
scores real and fake images in one batch (`i2i.nets.batching`: the norms are per sample, so this is
the same computation in fewer, larger passes).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_divisible
from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.losses.perceptual import DomainInvariantPerceptualLoss
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule
from i2i.nets.autoencoder import AutoEncoder
from i2i.nets.batching import in_one_pass
from i2i.nets.init import WeightInit
from i2i.types import Batch, Direction


@dataclass(frozen=True)
class UNITLoss(LossWeights):
    """Loss weights of the official configs (their `recon_h_w` is read by no code and is left out);
    `vgg_weights_path` is where the perceptual loss's VGG16 weights are when they are not in the
    torch hub cache, `allow_unpublished_weights` accepts a VGG16 file whose digest is not the
    published one (False for checkpoints that predate it)."""

    gan_mode: str
    gan_w: float
    recon_x_w: float
    recon_kl_w: float
    recon_x_cyc_w: float
    recon_kl_cyc_w: float
    vgg_w: float
    vgg_weights_path: str | None = None
    allow_unpublished_weights: bool = False


def kl(hidden: Tensor) -> Tensor:
    """The reduced VAE's KL term, mean(h^2): the KL to N(0, I) of N(h, I), up to constants."""
    return hidden.pow(2).mean()


class UNIT(TranslationModule):
    def __init__(
        self,
        *,
        generator: Callable[[], AutoEncoder],
        discriminator: Callable[[], nn.Module],
        loss: UNITLoss,
        image_size: int,
        share_layers: bool,
        init: WeightInit,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        self.weights = loss
        self.G_a, self.G_b = generator(), generator()
        if share_layers:
            self.G_b.encoder[-1] = self.G_a.encoder[-1]
            self.G_b.decoder.blocks[0] = self.G_a.decoder.blocks[0]
        self.D_a, self.D_b = discriminator(), discriminator()
        init.apply(generators=(self.G_a, self.G_b), discriminators=(self.D_a, self.D_b))
        check_divisible("data.image_size", image_size, self.G_a.downsampling_factor, "the encoder halves it")
        self.D_a.check_input_size(image_size)
        self.adv = AdversarialLoss(loss.gan_mode)
        self.perceptual = (
            DomainInvariantPerceptualLoss(loss.vgg_weights_path, loss.allow_unpublished_weights)
            if loss.vgg_w > 0
            else None
        )

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        # dict.fromkeys drops the second copy of the blocks shared under share_layers
        generators = list(dict.fromkeys([*self.G_a.parameters(), *self.G_b.parameters()]))
        return {"generator": generators, "discriminator": [*self.D_a.parameters(), *self.D_b.parameters()]}

    def _codes(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The latent means h_a, h_b of both images and the noisy codes z = h + N(0, I) the decoders
        get, the noise drawn anew at each call (a before b, as the official `encode`)."""
        h_a, h_b = self.G_a.encode(batch["A"]), self.G_b.encode(batch["B"])
        return h_a, h_b, h_a + torch.randn_like(h_a), h_b + torch.randn_like(h_b)

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        _, _, z_a, z_b = self._codes(batch)
        x_ba, x_ab = self.G_a.decode(z_b), self.G_b.decode(z_a)
        # each D scores model.discriminator.num_scales (officially 3) resolutions: terms summed over them
        d_a = self.adv.d_summed(self.D_a, batch["A"], x_ba)
        d_b = self.adv.d_summed(self.D_b, batch["B"], x_ab)
        return self.weights.gan_w * (d_a + d_b), {"d_a": d_a, "d_b": d_b}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x_a, x_b, w = batch["A"], batch["B"], self.weights
        h_a, h_b, z_a, z_b = self._codes(batch)
        # each decoder makes the translation and the reconstruction in one pass
        x_ba, x_a_recon = in_one_pass(self.G_a.decode, (z_b,), (z_a,))
        x_ab, x_b_recon = in_one_pass(self.G_b.decode, (z_a,), (z_b,))
        gan = summed_over(self.adv.g, self.D_a(x_ba)) + summed_over(self.adv.g, self.D_b(x_ab))  # over scales
        recon_x = F.l1_loss(x_a_recon, x_a) + F.l1_loss(x_b_recon, x_b)
        recon_kl = kl(h_a) + kl(h_b)
        zero = x_a.new_zeros(())
        recon_x_cyc = recon_kl_cyc = vgg = zero
        if w.recon_x_cyc_w > 0 or w.recon_kl_cyc_w > 0:
            h_a_recon, h_b_recon = self.G_b.encode(x_ab), self.G_a.encode(x_ba)
            recon_kl_cyc = kl(h_a_recon) + kl(h_b_recon)
            if w.recon_x_cyc_w > 0:  # two more decodes, made only when the term is on
                noise_b, noise_a = torch.randn_like(h_b_recon), torch.randn_like(h_a_recon)  # official order
                x_aba = self.G_a.decode(h_a_recon + noise_a)
                x_bab = self.G_b.decode(h_b_recon + noise_b)
                recon_x_cyc = F.l1_loss(x_aba, x_a) + F.l1_loss(x_bab, x_b)
        if self.perceptual is not None:
            vgg = self.perceptual(x_ba, x_b) + self.perceptual(x_ab, x_a)
        total = (
            w.gan_w * gan
            + w.recon_x_w * recon_x
            + w.recon_kl_w * recon_kl
            + w.recon_x_cyc_w * recon_x_cyc
            + w.recon_kl_cyc_w * recon_kl_cyc
            + w.vgg_w * vgg
        )
        logs = {"gan": gan, "recon_x": recon_x, "recon_kl": recon_kl, "recon_x_cyc": recon_x_cyc}
        return total, logs | {"recon_kl_cyc": recon_kl_cyc, "vgg": vgg}

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction, **options: Any) -> Tensor:
        """The deterministic translation: the other domain's decoding of the latent mean (no noise)."""
        if options:
            raise TypeError(f"UNIT translation takes no options (it is unimodal), got {sorted(options)}")
        source, target = (self.G_a, self.G_b) if direction == "AtoB" else (self.G_b, self.G_a)
        return target.decode(source.encode(x))
