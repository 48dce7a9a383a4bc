"""DRIT / DRIT++ (Lee et al., ECCV 2018; IJCV 2020): diverse translation by disentangling a shared
content space from domain-specific attribute codes.

E^c (`ContentEncoders`, last block shared by A and B) maps an image to a content map, E^a
(`AttributeEncoders`) to an attribute code z (8-d, prior N(0, I)); G_A, G_B (`Generators`) decode a
content map with an attribute code into their domain. A->B translation decodes A's content with a
B attribute, sampled from the prior or encoded from a reference B image. D_a, D_b score translations
with encoded attributes, D_a2, D_b2 translations with random ones; D_c (`ContentDiscriminator`)
tells A's contents from B's. DRIT++ adds the mode-seeking term; `loss.mode_seeking_w=0` is DRIT.

Faithful to `HsinYingLee/DRIT@f19f50a` (research/ugatit_others.md §4): the networks of
`i2i.nets.drit` (official injection default `--concat 1`, "concat"; `model.injection=featurewise` is
`--concat 0`), the official init (N(0, 0.02) on conv weights only), sigmoid-BCE GANs (nsgan) summed
over the discriminators' 3 scales, Adam 1e-4 (0.5, 0.999) with weight decay 1e-4 for everything but
D_c (lr 1e-4 / 2.5, gradients clipped to norm 5), constant then linear decay from half the run.

Each batch splits in two halves (officially batch 2: one image each): the first is encoded, the
second is only the real images of D_a2, D_b2. A batch of 1 (the official code crashes) uses its
image for both. With x_a, x_b the encoded halves, c_a = E^c_A(x_a), (mu_a, logvar_a) = E^a_A(x_a),
z_a = mu_a + exp(logvar_a / 2) * eps, z, z' ~ N(0, I) and the same for B:
    u_a = G_A(c_b, z_a), u_b = G_B(c_a, z_b)                            (cross translations)
    v_a = G_A(E^c_B(u_b), E^a_A(u_a)), v_b = G_B(E^c_A(u_a), E^a_B(u_b))  (cross-cycle)
    r_a = G_A(c_b, z), r_a' = G_A(c_b, z'), r_b, r_b' likewise              (random attributes)
    BCE(s) = BCE(sigmoid(s), 1) for a real target, undecided(s) = [BCE(s, 1) + BCE(s, 0)] / 2
    L_EG = gan_w * [BCE(D_a(u_a), 1) + BCE(D_b(u_b), 1)]
         + content_gan_w * [undecided(D_c(c_a)) + undecided(D_c(c_b))]
         + cross_cycle_w * [|v_a - x_a| + |v_b - x_b|] + self_recon_w * [|G_A(c_a, z_a) - x_a| + ...]
         + kl_w * [KL(mu_a, logvar_a) + KL(mu_b, logvar_b)] + content_l2_w * [mean(c_a^2) + mean(c_b^2)]
    L_G = gan_w * [BCE(D_a2(r_a), 1) + BCE(D_a2(r_a'), 1) + B likewise]
        + latent_w * [|mu(E^a_A(r_a)) - z| + |mu(E^a_B(r_b)) - z|]
        + mode_seeking_w * [1 / (|r_a' - r_a| / |z' - z| + 1e-5) + B likewise]   (means of |.|)
    L_D = D_a(x_a vs u_a) + D_a2(x_a2 vs r_a) + D_a2(x_a2 vs r_a') + B likewise + D_c(c_b real, c_a fake)
KL is summed over the code and averaged over the batch (official: summed, batch 1); with
"featurewise" the code is deterministic and KL becomes mean(z^2), as the official. The D_c term of
L_EG is the official BCE against 0.5 (nsgan; another gan_mode gets the same undecided target).

Iterations (the official `train.py` with `--d_iter 3`, `full_update_every`): on two of every three
only D_c is updated, on the contents of a fresh encoding; on the third the four image Ds and D_c
(update "d"), then E^c, E^a, G on L_EG ("g"), then E^c, G on L_G ("g_random"). Departures, forced or
chosen, all documented here:
- The official G-alone step back-propagates through the graph of the forward pass made before the
  EG step, with the weights that step has since changed (PyTorch 0.4 allowed it; PyTorch >= 1.5
  refuses). "g_random" makes its own forward pass with the current weights.
- The official forward pass is shared by the D, EG and G-alone steps; here each update encodes,
  draws its attributes and translates anew (as MUNIT here), at the cost of two more forward passes.
- The official counts `--d_iter` within each epoch and always fully updates the last two batches of
  an epoch; here the count runs over iterations. Its linear decay is stepped per epoch (1 - (ep -
  600) / 601); here per iteration, reaching 0 at the end (`ConstantThenLinearDecay`).
- A reference image's attribute is its mean code mu (the official `test_transfer.py` samples
  mu + sigma * eps), so a reference gives one translation.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from i2i.errors import ConfigError, check_divisible, check_integer, check_non_negative, check_positive
from i2i.losses.adversarial import AdversarialLoss, summed_over
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule, Update
from i2i.nets.drit import AttributeEncoders, ContentDiscriminator, ContentEncoders, Domain, Generators
from i2i.nets.init import WeightInit
from i2i.rng import prior_codes
from i2i.types import DIRECTIONS, SOURCE_TARGET, Batch, Direction

# The sample grids use one fixed set of attributes, so successive grids are comparable.
GRID_STYLE_SEED = 0
# The official mode-seeking term's guard against a zero ratio (`backward_G_alone`: eps = 1e-5).
MODE_SEEKING_EPS = 1e-5
# The object boxes of a batch of images, (boxes (B, M, 4) in pixels, valid (B, M)) in the batch format of
# `i2i.data.boxes`, or None. DRIT++ decodes without them; the hook `_decode` lets DUNIT
# (`models/dunit.py`), DRIT++ with an instance branch, fuse instance features at them first.
Boxes = tuple[Tensor, Tensor] | None


def boxes_of(images: Mapping[str, Tensor], domain: Domain) -> Boxes:
    """The boxes of `domain`'s images in a batch or a sample grid's inputs, None when they have none."""
    key = f"boxes_{domain}"
    return (images[key], images[f"{key}_valid"]) if key in images else None


@dataclass(frozen=True)
class CrossTranslations:
    """The forward pass of the EG update (`DRIT.cross_translations`): the encoded halves and their
    boxes, contents, attributes (z, mu, logvar), cross translations u, self-reconstructions, the
    contents encoded back from the translations and the cross-cycle reconstructions v."""

    x_a: Tensor
    x_b: Tensor
    boxes_a: Boxes
    boxes_b: Boxes
    c_a: Tensor
    c_b: Tensor
    attribute_a: tuple[Tensor, Tensor, Tensor | None]
    attribute_b: tuple[Tensor, Tensor, Tensor | None]
    u_a: Tensor
    u_b: Tensor
    recon_a: Tensor
    recon_b: Tensor
    c_a_cycle: Tensor  # E^c_B(u_b): the content of x_a, encoded back from its translation
    c_b_cycle: Tensor
    v_a: Tensor
    v_b: Tensor


@dataclass(frozen=True)
class DRITLoss(LossWeights):
    """Loss weights of the official code (`src/model.py`); `mode_seeking_w` 0 is DRIT, 1 DRIT++."""

    gan_mode: str
    gan_w: float
    content_gan_w: float
    cross_cycle_w: float
    self_recon_w: float
    latent_w: float
    kl_w: float
    content_l2_w: float
    mode_seeking_w: float


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the code, averaged over the batch."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()


def mode_seeking(image_1: Tensor, image_2: Tensor, code_1: Tensor, code_2: Tensor) -> Tensor:
    """DRIT++'s (MSGAN's) regulariser: the inverse of how far apart two codes put their images,
    mean |image_2 - image_1| / mean |code_2 - code_1|; small when distinct codes give distinct images."""
    ratio = (image_2 - image_1).abs().mean() / (code_2 - code_1).abs().mean()
    return 1 / (ratio + MODE_SEEKING_EPS)


class DRIT(TranslationModule):
    def __init__(
        self,
        *,
        content_encoder: Callable[..., ContentEncoders],
        attribute_encoder: Callable[..., AttributeEncoders],
        generator: Callable[..., Generators],
        discriminator: Callable[[], nn.Module],
        content_discriminator: Callable[..., ContentDiscriminator],
        loss: DRITLoss,
        injection: str,
        attribute_dim: int,
        full_update_every: int,
        content_discriminator_clip: float,
        image_size: int,
        init: WeightInit,
        grid_styles: int,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        check_positive("model.attribute_dim", attribute_dim)
        check_integer("model.full_update_every", full_update_every, minimum=1)
        check_non_negative("model.content_discriminator_clip", content_discriminator_clip)
        check_positive("model.grid_styles", grid_styles)
        self.weights = loss
        self.attribute_dim = attribute_dim
        self.full_update_every = full_update_every
        self.content_discriminator_clip = content_discriminator_clip
        self.grid_styles = grid_styles
        self.E_c = content_encoder()
        self.E_a = attribute_encoder(injection=injection, attribute_dim=attribute_dim)
        self.G = generator(
            injection=injection, content_channels=self.E_c.out_channels, attribute_dim=attribute_dim
        )
        self.D_a, self.D_b, self.D_a2, self.D_b2 = (discriminator() for _ in range(4))
        check_divisible(
            "data.image_size", image_size, self.E_c.downsampling_factor, "the content encoder halves it"
        )
        content_size = image_size // self.E_c.downsampling_factor
        if content_size < 4:
            minimum = 4 * self.E_c.downsampling_factor
            raise ConfigError("data.image_size", image_size, f"the content discriminator needs {minimum} px")
        self.D_c = content_discriminator(channels=self.E_c.out_channels, content_size=content_size)
        self.D_a.check_input_size(image_size)
        init.apply(
            generators=(self.E_c, self.E_a, self.G),
            discriminators=(self.D_a, self.D_b, self.D_a2, self.D_b2, self.D_c),
        )
        self.adv = AdversarialLoss(loss.gan_mode)
        self.mode_seeking = loss.mode_seeking_w > 0  # off: DRIT, which draws one random code, not two

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": [*self.E_c.parameters(), *self.G.parameters()],
            "attribute_encoder": list(self.E_a.parameters()),
            "discriminator": [
                *self.D_a.parameters(),
                *self.D_b.parameters(),
                *self.D_a2.parameters(),
                *self.D_b2.parameters(),
            ],
            "content_discriminator": list(self.D_c.parameters()),
        }

    def updates(self, iteration: int) -> tuple[Update, ...]:
        if (iteration + 1) % self.full_update_every:
            return (Update("dc", ("content_discriminator",), self.content_discriminator_loss),)
        return (
            Update("d", ("discriminator", "content_discriminator"), self.discriminator_loss),
            Update("g", ("generator", "attribute_encoder"), self.generator_loss),
            Update("g_random", ("generator",), self.random_attribute_loss),
        )

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        content = self._optimizer("content_discriminator")
        if self.content_discriminator_clip > 0 and optimizer is getattr(content, "optimizer", content):
            self.clip_gradients(
                optimizer, gradient_clip_val=self.content_discriminator_clip, gradient_clip_algorithm="norm"
            )

    # ------------------------------------------------------------------ pieces of the objective
    @staticmethod
    def _halves(x: Tensor) -> tuple[Tensor, Tensor]:
        """(the encoded half, the real images of the random-attribute discriminators) of a batch."""
        n = max(1, x.size(0) // 2)
        return x[:n], (x[n:] if x.size(0) > 1 else x)

    def _attribute(self, x: Tensor, domain: Domain) -> tuple[Tensor, Tensor, Tensor | None]:
        """(z, mu, logvar) of images `x`: z sampled by reparameterisation, or mu itself ("featurewise")."""
        mu, logvar = self.E_a(x, domain)
        if logvar is None:
            return mu, mu, None
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar

    def _random_codes(self, n: int, device: torch.device) -> list[Tensor]:
        """One code z ~ N(0, I) per encoded image, and a second z' for the mode-seeking term."""
        return [
            torch.randn(n, self.attribute_dim, device=device) for _ in range(2 if self.mode_seeking else 1)
        ]

    def _boxes(self, batch: Batch, carry: Carry, domain: Domain, images: Tensor) -> Boxes:
        """The object boxes of `images`, the encoded half of the batch's `domain` images: DRIT++ has none."""
        return None

    def _decode(self, content: Tensor, code: Tensor, domain: Domain, boxes: Boxes) -> Tensor:
        """G_domain(content, code); `boxes` are those of the images `content` encodes, which DRIT++'s
        generator does not see."""
        return self.G(content, code, domain)

    def _decoded(self, domain: Domain, *inputs: tuple[Tensor, Tensor, Boxes]) -> list[Tensor]:
        """`_decode` of each (content, attribute, boxes), in one pass (every norm is per sample)."""
        contents, attributes, boxes = zip(*inputs, strict=True)
        joined = None if boxes[0] is None else tuple(torch.cat(parts) for parts in zip(*boxes, strict=True))
        images = self._decode(torch.cat(contents), torch.cat(attributes), domain, joined)
        return list(images.split(len(contents[0])))

    def _undecided(self, score: Tensor) -> Tensor:
        """The loss that makes a discriminator output 1/2: the mean of its real and fake losses."""
        return 0.5 * (self.adv.d_real(score) + self.adv.d_fake(score))

    def _content_discriminator_loss(self, c_a: Tensor, c_b: Tensor) -> Tensor:
        """D_c learns to call B's contents real and A's fake (the official `backward_contentD`)."""
        return self.adv.d_real(self.D_c(c_b.detach())) + self.adv.d_fake(self.D_c(c_a.detach()))

    # ------------------------------------------------------------------ the updates
    def content_discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        (x_a, _), (x_b, _) = self._halves(batch["A"]), self._halves(batch["B"])
        d_content = self._content_discriminator_loss(self.E_c(x_a, "A"), self.E_c(x_b, "B"))
        return d_content, {"d_content": d_content}

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        (x_a, x_a2), (x_b, x_b2) = self._halves(batch["A"]), self._halves(batch["B"])
        boxes_a, boxes_b = self._boxes(batch, carry, "A", x_a), self._boxes(batch, carry, "B", x_b)
        c_a, c_b = self.E_c(x_a, "A"), self.E_c(x_b, "B")
        z_a, z_b = self._attribute(x_a, "A")[0], self._attribute(x_b, "B")[0]
        codes = self._random_codes(len(x_a), x_a.device)
        u_a, *r_a = self._decoded("A", (c_b, z_a, boxes_b), *((c_b, z, boxes_b) for z in codes))
        u_b, *r_b = self._decoded("B", (c_a, z_b, boxes_a), *((c_a, z, boxes_a) for z in codes))
        # every image D scores 3 scales (model.discriminator.num_scales): terms summed over them
        d_a = self.adv.d_summed(self.D_a, x_a, u_a)
        d_b = self.adv.d_summed(self.D_b, x_b, u_b)
        d_a2 = torch.stack([self.adv.d_summed(self.D_a2, x_a2, r) for r in r_a]).sum()
        d_b2 = torch.stack([self.adv.d_summed(self.D_b2, x_b2, r) for r in r_b]).sum()
        d_content = self._content_discriminator_loss(c_a, c_b)
        total = d_a + d_b + d_a2 + d_b2 + d_content
        return total, {"d_a": d_a, "d_b": d_b, "d_a2": d_a2, "d_b2": d_b2, "d_content": d_content}

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        return self.cross_objective(self.cross_translations(batch, carry))

    def cross_translations(self, batch: Batch, carry: Carry) -> CrossTranslations:
        """The forward pass of the EG update."""
        x_a, x_b = self._halves(batch["A"])[0], self._halves(batch["B"])[0]
        boxes_a, boxes_b = self._boxes(batch, carry, "A", x_a), self._boxes(batch, carry, "B", x_b)
        c_a, c_b = self.E_c(x_a, "A"), self.E_c(x_b, "B")
        attribute_a, attribute_b = self._attribute(x_a, "A"), self._attribute(x_b, "B")
        z_a, z_b = attribute_a[0], attribute_b[0]
        u_a, recon_a = self._decoded("A", (c_b, z_a, boxes_b), (c_a, z_a, boxes_a))
        u_b, recon_b = self._decoded("B", (c_a, z_b, boxes_a), (c_b, z_b, boxes_b))
        # the cross-cycle: encode the translations, swap their attributes back, decode again
        c_b_cycle, c_a_cycle = self.E_c(u_a, "A"), self.E_c(u_b, "B")
        z_a_cycle, z_b_cycle = self._attribute(u_a, "A")[0], self._attribute(u_b, "B")[0]
        v_a = self._decode(c_a_cycle, z_a_cycle, "A", boxes_a)
        v_b = self._decode(c_b_cycle, z_b_cycle, "B", boxes_b)
        return CrossTranslations(
            x_a, x_b, boxes_a, boxes_b, c_a, c_b, attribute_a, attribute_b,
            u_a, u_b, recon_a, recon_b, c_a_cycle, c_b_cycle, v_a, v_b,
        )  # fmt: skip

    def cross_objective(self, t: CrossTranslations) -> tuple[Tensor, Logs]:
        """L_EG of the cross translations `t`, and its unweighted terms."""
        x_a, x_b, c_a, c_b, u_a, u_b, w = t.x_a, t.x_b, t.c_a, t.c_b, t.u_a, t.u_b, self.weights
        (z_a, mu_a, logvar_a), (z_b, mu_b, logvar_b) = t.attribute_a, t.attribute_b
        gan = summed_over(self.adv.g, self.D_a(u_a)) + summed_over(self.adv.g, self.D_b(u_b))  # over scales
        content_gan = self._undecided(self.D_c(c_a)) + self._undecided(self.D_c(c_b))
        cross_cycle = F.l1_loss(t.v_a, x_a) + F.l1_loss(t.v_b, x_b)
        self_recon = F.l1_loss(t.recon_a, x_a) + F.l1_loss(t.recon_b, x_b)
        if logvar_a is None or logvar_b is None:  # "featurewise": deterministic codes, kept near 0
            kl = z_a.float().pow(2).mean() + z_b.float().pow(2).mean()
        else:
            kl = kl_divergence(mu_a.float(), logvar_a.float()) + kl_divergence(mu_b.float(), logvar_b.float())
        content_l2 = c_a.float().pow(2).mean() + c_b.float().pow(2).mean()
        total = (
            w.gan_w * gan
            + w.content_gan_w * content_gan
            + w.cross_cycle_w * cross_cycle
            + w.self_recon_w * self_recon
            + w.kl_w * kl
            + w.content_l2_w * content_l2
        )
        logs = {
            "gan": gan,
            "content_gan": content_gan,
            "cross_cycle": cross_cycle,
            "self_recon": self_recon,
            "kl": kl,
            "content_l2": content_l2,
        }
        return total, logs

    def random_attribute_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        x_a, x_b, w = self._halves(batch["A"])[0], self._halves(batch["B"])[0], self.weights
        boxes_a, boxes_b = self._boxes(batch, carry, "A", x_a), self._boxes(batch, carry, "B", x_b)
        c_a, c_b = self.E_c(x_a, "A"), self.E_c(x_b, "B")
        codes = self._random_codes(len(x_a), x_a.device)
        r_a = self._decoded("A", *((c_b, z, boxes_b) for z in codes))
        r_b = self._decoded("B", *((c_a, z, boxes_a) for z in codes))
        gan = summed_over(self.adv.g, [s for r in r_a for s in self.D_a2(r)])
        gan = gan + summed_over(self.adv.g, [s for r in r_b for s in self.D_b2(r)])
        z = codes[0]  # the latent regression recovers the first code, from the attribute means
        latent = F.l1_loss(self.E_a(r_a[0], "A")[0], z) + F.l1_loss(self.E_a(r_b[0], "B")[0], z)
        diversity = x_a.new_zeros(())
        if self.mode_seeking:
            diversity = mode_seeking(*r_a, *codes) + mode_seeking(*r_b, *codes)
        total = w.gan_w * gan + w.latent_w * latent + w.mode_seeking_w * diversity
        return total, {"gan_random": gan, "latent": latent, "mode_seeking": diversity}

    # ------------------------------------------------------------------ inference
    def sample_styles(
        self, batch_size: int, n_styles: int, style_seed: int | None, device: torch.device
    ) -> Tensor:
        """(batch_size * n_styles, attribute_dim) codes from the prior, grouped per input (`prior_codes`)."""
        return prior_codes(batch_size, n_styles, self.attribute_dim, style_seed, device)

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        """x (B, 3, H, W) in the other domain, each input with one attribute sampled from the prior
        (the official `test.py`)."""
        return self.translate_styles(x, direction, 1)[:, 0]

    @torch.inference_mode()
    def translate_styles(
        self,
        x: Tensor,
        direction: Direction,
        n_styles: int,
        style_seed: int | None = None,
        boxes: Boxes = None,
    ) -> Tensor:
        """(B, n_styles, 3, H, W): x translated with `n_styles` attributes sampled from the prior each;
        `style_seed` makes them reproducible (`sample_styles`); `boxes`, x's objects, go to `_decode`."""
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        source, target = SOURCE_TARGET[direction]
        content = self.E_c(x, source)
        codes = self.sample_styles(len(x), n_styles, style_seed, x.device)
        if boxes is not None:
            boxes = (boxes[0].repeat_interleave(n_styles, dim=0), boxes[1].repeat_interleave(n_styles, dim=0))
        images = self._decode(content.repeat_interleave(n_styles, dim=0), codes, target, boxes)
        return images.view(len(x), n_styles, *images.shape[1:])

    @torch.inference_mode()
    def translate_reference(
        self, x: Tensor, direction: Direction, reference: Tensor, boxes: Boxes = None
    ) -> Tensor:
        """x translated with the mean attribute code of `reference`, images (1 or B, 3, H', W') of
        the target domain; `boxes`, x's objects, go to `_decode`."""
        source, target = SOURCE_TARGET[direction]
        code = self.E_a(reference, target)[0]
        return self._decode(self.E_c(x, source), code.expand(len(x), -1), target, boxes)

    @torch.no_grad()
    def sample_rows(self, images: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
        """Per direction: the inputs, their reconstructions (own content and mean attribute),
        `grid_styles` translations with fixed random attributes, and one translation with the
        attribute of the other domain's images (input i takes the target domain's image i)."""
        rows = []
        for direction in DIRECTIONS:
            source, target = SOURCE_TARGET[direction]
            real, boxes = images[source], boxes_of(images, source)
            recon = self._decode(self.E_c(real, source), self.E_a(real, source)[0], source, boxes)
            rows += [(f"real_{source}", real), (f"recon_{source}", recon)]
            styles = self.translate_styles(real, direction, self.grid_styles, GRID_STYLE_SEED, boxes)
            rows += [(f"fake_{target}_style{j}", styles[:, j]) for j in range(self.grid_styles)]
            reference = self.translate_reference(real, direction, images[target], boxes)
            rows.append((f"fake_{target}_ref", reference))
        return rows
