"""CycleGAN (Zhu et al., ICCV 2017): two generators tied together by cycle consistency.

G_ab maps A to B and G_ba maps B to A; D_a scores domain-A images, D_b domain-B images.
Faithful to `junyanz/pytorch-CycleGAN-and-pix2pix` (research/ugatit_others.md §2.1): resnet_9blocks
generators, 70x70 PatchGAN discriminators, instance norm without affine, N(0, 0.02) init, LSGAN,
cycle weight 10, identity weight 0.5 x 10 = 5 (stored absolute), image pools of 50, Adam 2e-4
(0.5, 0.999), constant then linear decay. As in the official `optimize_parameters`, the generators
update first and the discriminators then score the same fakes, detached and passed through the
pools, so each iteration runs every generator once per loss term and never twice. Where the norms
are per sample (instance norm, the default), each generator maps its source and its target (the
identity term) in one batch, and each discriminator scores real and fake images in one batch
(`i2i.nets.batching`: the same computation in fewer, larger passes).

Objective (paper Eq. 3 and §5.2):
    L_G = gan_w * [LSGAN(D_b(G_ab(a)), 1) + LSGAN(D_a(G_ba(b)), 1)]
        + cycle_w * [|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1]
        + identity_w * [|G_ab(b) - b|_1 + |G_ba(a) - a|_1]
    L_D = 0.5 * [LSGAN(D_a(a), 1) + LSGAN(D_a(pool(G_ba(b))), 0)] + (the same for D_b)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.errors import check_divisible
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.weights import LossWeights
from i2i.models.base import Carry, Logs, TranslationModule, Update
from i2i.nets.batching import in_one_pass
from i2i.nets.init import WeightInit
from i2i.nets.pool import ImagePool
from i2i.types import Batch, Direction


@dataclass(frozen=True)
class CycleGANLoss(LossWeights):
    """Loss weights, absolute (the official identity weight is 0.5 relative to the cycle weight)."""

    gan_mode: str
    gan_w: float
    cycle_w: float
    identity_w: float


class CycleGAN(TranslationModule):
    def __init__(
        self,
        *,
        generator: Callable[[], nn.Module],
        discriminator: Callable[[], nn.Module],
        loss: CycleGANLoss,
        pool_size: int,
        image_size: int,
        init: WeightInit,
        **spine: Any,
    ) -> None:
        super().__init__(**spine)
        self.weights = loss
        self.G_ab, self.G_ba = generator(), generator()
        self.D_a, self.D_b = discriminator(), discriminator()
        init.apply(generators=(self.G_ab, self.G_ba), discriminators=(self.D_a, self.D_b))
        check_divisible(
            "data.image_size", image_size, self.G_ab.downsampling_factor, "the generator halves it twice"
        )
        self.D_a.check_input_size(image_size)
        self.adv = AdversarialLoss(loss.gan_mode)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)

    def optimizer_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": [*self.G_ab.parameters(), *self.G_ba.parameters()],
            "discriminator": [*self.D_a.parameters(), *self.D_b.parameters()],
        }

    def updates(self, iteration: int) -> tuple[Update, ...]:
        return (
            Update("g", ("generator",), self.generator_loss),
            Update("d", ("discriminator",), self.discriminator_loss),
        )

    def generator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        real_a, real_b, w = batch["A"], batch["B"], self.weights
        identity = real_a.new_zeros(())
        if w.identity_w > 0:  # each generator translates its source and maps its target in one pass
            fake_b, same_b = in_one_pass(self.G_ab, (real_a,), (real_b,))
            fake_a, same_a = in_one_pass(self.G_ba, (real_b,), (real_a,))
            identity = F.l1_loss(same_b, real_b) + F.l1_loss(same_a, real_a)
        else:
            fake_b, fake_a = self.G_ab(real_a), self.G_ba(real_b)
        gan = self.adv.g(self.D_b(fake_b)) + self.adv.g(self.D_a(fake_a))
        cycle = F.l1_loss(self.G_ba(fake_b), real_a) + F.l1_loss(self.G_ab(fake_a), real_b)
        carry["fake_A"], carry["fake_B"] = fake_a.detach(), fake_b.detach()
        total = w.gan_w * gan + w.cycle_w * cycle + w.identity_w * identity
        return total, {"gan": gan, "cycle": cycle, "identity": identity}

    def discriminator_loss(self, batch: Batch, carry: Carry) -> tuple[Tensor, Logs]:
        fake_a, fake_b = self.pool_a.query(carry["fake_A"]), self.pool_b.query(carry["fake_B"])
        # 0.5 is not a tunable weight: the official D averages its real and fake terms
        d_a, d_b = (
            0.5 * self.adv.d(self.D_a, batch["A"], fake_a),
            0.5 * self.adv.d(self.D_b, batch["B"], fake_b),
        )
        return d_a + d_b, {"d_a": d_a, "d_b": d_b}

    @torch.inference_mode()
    def translate(self, x: Tensor, direction: Direction, **options: Any) -> Tensor:
        if options:
            raise TypeError(f"CycleGAN translation takes no options, got {sorted(options)}")
        return self.G_ab(x) if direction == "AtoB" else self.G_ba(x)
