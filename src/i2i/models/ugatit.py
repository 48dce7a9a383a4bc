"""U-GAT-IT (Kim et al., ICLR 2020): attention-guided translation that can change shape.

G_ab maps A to B and G_ba maps B to A. Each generator carries a CAM classifier ("is this image from
my source domain?") whose weights re-weight its features, and decodes through AdaILN blocks whose
gamma and beta an MLP computes from the attended features; `light` shrinks that MLP's input from
the flattened map to its global average (research/ugatit_others.md §1.1). Each domain has a global
(7-layer, 286 px receptive field) and a local (5-layer, 70 px) spectral-norm discriminator, each
with its own CAM head, so every discriminator has two outputs: patch logits and CAM logits.

Objective (paper Eqs. 2-6; official `UGATIT.train`), with LSGAN over the four heads
{global, local} x {logit, cam_logit} of the target domain's discriminators:
    L_D = gan_w * sum_heads [(D(a) - 1)^2 + D(G_ba(b))^2 + (the same for domain B)]
    L_G = gan_w * sum_heads [(D_b(G_ab(a)) - 1)^2 + (D_a(G_ba(b)) - 1)^2]
        + cycle_w * [|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1]
        + identity_w * [|G_ba(a) - a|_1 + |G_ab(b) - b|_1]
        + cam_w * [BCE(cam_ab(a), 1) + BCE(cam_ab(b), 0) + BCE(cam_ba(b), 1) + BCE(cam_ba(a), 0)]
where cam_ab is G_ab's CAM classifier (BCE with logits). Each iteration: the discriminator step,
then the generator step, then rho of every AdaILN/ILN clipped to [0, 1] (the spine's `after_step`).

The official PyTorch and TF codes differ (§1.4; the paper's numbers come from TF). Choices:
- CAM logits: two separate bias-free linears for GAP and GMP (PyTorch; the pinned parameter
  counts are PyTorch's), not TF's one shared linear with bias. Under spectral norm the features
  are re-weighted by the normalised weights the logits use (TF), not by PyTorch's `weight_orig`.
- Biases: only on the CAM 1x1 fusions and the discriminators' feature convs (PyTorch; TF has
  biases almost everywhere, the MLP included).
- MLP width: ngf * 2**n_downsampling (PyTorch), not TF's ch * n_res, which is wrong for n_res != 4.
- Init: `model.init` in the config; `default` keeps PyTorch's own init (the PyTorch code),
  `normal` 0.02 is TF's N(0, 0.02).
- Weight decay: Adam `weight_decay` 1e-4 on every parameter (PyTorch). TF adds an L2 of 1e-4 on
  the kernels to the loss, which is the same gradient on kernels and none on rho/gamma/beta.
- Schedule: constant for the first half, then linear to 0, stepped every iteration (PyTorch; TF
  steps the same line once per epoch).
- Augmentation (folder data): flip, resize 286, random crop 256 on every image (PyTorch);
  TF draws its coin once when the graph is traced, so a whole run is augmented or not.
- GAN objective: LSGAN (both codes' default); `gan_mode` also accepts the other objectives of
  `AdversarialLoss`. TF's gradient-penalty variants are not provided.
- Norm statistics: biased variances over the true (H, W) and (C, H, W) extents (TF moments);
  PyTorch's nested `torch.var` is not the spatial variance (`i2i.nets.norms.RhoMixedNorm`).
- rho: AdaILN starts at 0.9 (PyTorch; TF's 1.0 with its default smoothing of -0.1 is the same),
  ILN at 0, clipped after every generator step in both codes.
Not copied: the official discriminator step runs both generators again with their graph and
back-propagates into them for nothing. Here the spine freezes the generators during that step and
the fakes are made under `no_grad` (two forward passes, no graph); the generator step must build
its own graph anyway, because its gradients flow through those fakes. Each discriminator scores
real and fake images in one batch (it has no batch-dependent layer, so only the number of
spectral-norm power iterations differs: one per step instead of two); each generator translates
its source and maps its target (the identity term) in one batch (its statistics are per sample);
both through `i2i.nets.batching.in_one_pass`.
The discriminators' depth follows the image size (`i2i.nets.discriminators.depth_for_size`): the
official 7/5 layers at 256 px, 5/3 at 64 px, where the official global discriminator cannot run.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import ConfigError, check_divisible
from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule, Update
from i2i.nets.batching import in_one_pass
from i2i.nets.cam import heatmap_rgb
from i2i.nets.discriminators import CAMDiscriminator
from i2i.nets.init import WeightInit
from i2i.nets.norms import clip_rho_
from i2i.nets.ugatit import GeneratorOutput, UGATITGenerator
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch, Direction


@dataclass(frozen=True)
class UGATITLoss(LossWeights):
    """Loss weights (official defaults: adv 1, cycle 10, identity 10, cam 1000; the official `adv_weight`
    is `gan_w` as in every model)."""

    gan_mode: str
    gan_w: float
    cycle_w: float
    identity_w: float
    cam_w: float


class UGATIT(TranslationModule):
    def __init__(
        self,
        *,
        generator: Callable[..., UGATITGenerator],
        discriminator_global: Callable[..., CAMDiscriminator],
        discriminator_local: Callable[..., CAMDiscriminator],
        loss: UGATITLoss,
        image_size: int,
        init: WeightInit,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        self.weights = loss
        self.G_ab, self.G_ba = generator(image_size=image_size), generator(image_size=image_size)
        critics = lambda: nn.ModuleDict(
            {
                "global": discriminator_global(image_size=image_size),
                "local": discriminator_local(image_size=image_size),
            }
        )
        self.D_a, self.D_b = critics(), critics()
        init.apply(generators=(self.G_ab, self.G_ba), discriminators=(self.D_a, self.D_b))
        check_divisible(
            "data.image_size", image_size, self.G_ab.downsampling_factor, "the generator halves it twice"
        )
        for scale, critic in self.D_a.items():
            if critic.output_size(image_size) < 1:
                minimum, key = critic.minimum_input_size(), f"model.discriminator_{scale}.reference_size"
                raise ConfigError(
                    "data.image_size",
                    image_size,
                    f"the {critic.n_layers}-layer {scale} discriminator needs at least {minimum} px "
                    f"(or set {key}=256 to scale its depth with the image)",
                )
        self.adv = AdversarialLoss(loss.gan_mode)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": [*self.G_ab.parameters(), *self.G_ba.parameters()],
            "discriminator": [*self.D_a.parameters(), *self.D_b.parameters()],
        }

    def updates(self, iteration: int) -> tuple[Update, ...]:
        return (
            Update("d", ("discriminator",), self.discriminator_loss),
            Update("g", ("generator",), self.generator_loss, after_step=self.clip_rho),
        )

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        real_a, real_b = batch["A"], batch["B"]
        with torch.no_grad():
            fake_b, fake_a = self.G_ab(real_a).image, self.G_ba(real_b).image
        # four heads per domain, {global, local} D x {patch logit, CAM logit}: terms summed over them
        d_a = summed_over(lambda critic: self.adv.d_summed(critic, real_a, fake_a), self.D_a.values())
        d_b = summed_over(lambda critic: self.adv.d_summed(critic, real_b, fake_b), self.D_b.values())
        return self.weights.gan_w * (d_a + d_b), {"d_a": d_a, "d_b": d_b}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        real_a, real_b, w = batch["A"], batch["B"], self.weights
        # each generator translates its source and, in the same batch, maps its target (identity term)
        to_b, same_b = in_one_pass(self.G_ab, (real_a,), (real_b,))
        to_a, same_a = in_one_pass(self.G_ba, (real_b,), (real_a,))
        fake_b, fake_a = to_b.image, to_a.image
        heads_b, heads_a = self._scores(self.D_b, fake_b), self._scores(self.D_a, fake_a)  # four each
        adv = summed_over(self.adv.g, heads_b) + summed_over(self.adv.g, heads_a)
        cycle = F.l1_loss(self.G_ba(fake_b).image, real_a) + F.l1_loss(self.G_ab(fake_a).image, real_b)
        identity = F.l1_loss(same_a.image, real_a) + F.l1_loss(same_b.image, real_b)
        cam = _cam_terms(to_b.cam_logit, same_b.cam_logit) + _cam_terms(to_a.cam_logit, same_a.cam_logit)
        total = w.gan_w * adv + w.cycle_w * cycle + w.identity_w * identity + w.cam_w * cam
        return total, {"adv": adv, "cycle": cycle, "identity": identity, "cam": cam}

    def clip_rho(self) -> None:
        """Keep every AdaILN/ILN rho in [0, 1] (official `RhoClipper`, after each generator step)."""
        clip_rho_(self.G_ab)
        clip_rho_(self.G_ba)

    # ------------------------------------------------------------------ loss helpers
    def _scores(self, critics: nn.ModuleDict, images: Tensor) -> list[Tensor]:
        """The four adversarial heads of one domain: (logit, cam_logit) of the global and the local D."""
        return [score for critic in critics.values() for score in critic(images)]

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction, **options: Any) -> Tensor:
        if options:
            raise TypeError(f"U-GAT-IT translation takes no options, got {sorted(options)}")
        return self._generator(direction)(x).image

    @torch.inference_mode()
    def attention_maps(self, x: Tensor, direction: Direction) -> Tensor:
        """The generator's CAM heatmap, min-max normalised per image and resized to the input."""
        return _normalised(self._generator(direction)(x), x.shape[-1])

    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """The official 7-row strip per direction: input, identity heatmap, identity, translation
        heatmap, translation, cycle heatmap, cycle (heatmaps in the jet colour map)."""
        rows = []
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            forward = self._generator(direction)
            backward = self.G_ba if forward is self.G_ab else self.G_ab
            real = images[source]
            size = real.shape[-1]
            identity, fake = backward(real), forward(real)
            cycle = backward(fake.image)
            rows += [
                (f"real_{source}", real),
                (f"cam_identity_{source}", heatmap_rgb(_normalised(identity, size))),
                (f"identity_{source}", identity.image),
                (f"cam_fake_{target}", heatmap_rgb(_normalised(fake, size))),
                (f"fake_{target}", fake.image),
                (f"cam_cycle_{source}", heatmap_rgb(_normalised(cycle, size))),
                (f"cycle_{source}", cycle.image),
            ]
        return rows

    def _generator(self, direction: Direction) -> UGATITGenerator:
        return self.G_ab if direction == "AtoB" else self.G_ba


def _cam_terms(to_translate: Tensor, already_there: Tensor) -> Tensor:
    """BCE with logits of a generator's CAM classifier: its source images are 1 ("to translate"),
    its target domain's images 0."""
    return F.binary_cross_entropy_with_logits(
        to_translate, torch.ones_like(to_translate)
    ) + F.binary_cross_entropy_with_logits(already_there, torch.zeros_like(already_there))


def _normalised(output: GeneratorOutput, size: int) -> Tensor:
    """A generator's heatmap scaled to [0, 1] per image and resized to `size` (official `cam`)."""
    heatmap = output.heatmap.float()
    low = heatmap.amin(dim=(1, 2, 3), keepdim=True)
    high = heatmap.amax(dim=(1, 2, 3), keepdim=True)
    scaled = (heatmap - low) / (high - low).clamp_min(1e-12)
    return F.interpolate(scaled, size=(size, size), mode="bilinear", align_corners=False)
