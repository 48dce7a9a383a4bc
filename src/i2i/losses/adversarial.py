"""GAN objectives (LSGAN, NSGAN, hinge, WGAN) and the gradient penalties used with them.

`AdversarialLoss` hides the target labels: the discriminator calls `d_real`/`d_fake`, the
generator calls `g` on the discriminator's score of its fakes. Each takes one prediction. A
discriminator with several outputs (MUNIT/UNIT's scales, U-GAT-IT's heads) has its terms added up
where the model writes its objective, with `summed_over` and `AdversarialLoss.d_summed`, so the sum
reads in the model file.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.errors import check_choice
from i2i.nets.batching import in_one_pass

GAN_MODES = ("lsgan", "nsgan", "hinge", "wgan")
Output = TypeVar("Output")


def summed_over(term: Callable[[Output], Tensor], outputs: Iterable[Output]) -> Tensor:
    """`term` of each of a discriminator's outputs (its scales, its heads), added up in one reduction,
    `torch.stack(...).sum()`."""
    return torch.stack([term(output) for output in outputs]).sum()


class AdversarialLoss:
    """The adversarial loss terms of one GAN objective.

    lsgan: mean squared error to 1 (real) / 0 (fake); nsgan: binary cross-entropy with logits;
    hinge: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))) for D and -mean(D(G(z))) for G;
    wgan: -mean(D(x)) + mean(D(G(z))) for D and -mean(D(G(z))) for G.
    """

    def __init__(self, mode: str) -> None:
        check_choice("gan_mode", mode, GAN_MODES)
        self.mode = mode

    def d(self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        """The whole loss of a discriminator with one output: d_real on real images plus d_fake on
        fakes, detached so that no gradient reaches the generator. Both are scored in one pass unless
        the discriminator mixes samples (`i2i.nets.batching`)."""
        real_score, fake_score = in_one_pass(discriminator, (real,), (fake.detach(),))
        return self.d_real(real_score) + self.d_fake(fake_score)

    def d_summed(
        self, discriminator: Callable[[Tensor], Sequence[Tensor]], real: Tensor, fake: Tensor
    ) -> Tensor:
        """`d` of a discriminator with several outputs: d_real summed over its outputs on real images
        plus d_fake summed over its outputs on the (detached) fakes."""
        real_scores, fake_scores = in_one_pass(discriminator, (real,), (fake.detach(),))
        return summed_over(self.d_real, real_scores) + summed_over(self.d_fake, fake_scores)

    def d_real(self, x: Tensor) -> Tensor:
        """The discriminator's loss on its score `x` of real images."""
        if self.mode == "lsgan":
            return (x.float() - 1).pow(2).mean()
        if self.mode == "nsgan":
            return F.binary_cross_entropy_with_logits(x.float(), torch.ones_like(x, dtype=torch.float))
        if self.mode == "hinge":
            return F.relu(1 - x.float()).mean()
        return -x.float().mean()

    def d_fake(self, x: Tensor) -> Tensor:
        """The discriminator's loss on its score `x` of fakes."""
        if self.mode == "lsgan":
            return x.float().pow(2).mean()
        if self.mode == "nsgan":
            return F.binary_cross_entropy_with_logits(x.float(), torch.zeros_like(x, dtype=torch.float))
        if self.mode == "hinge":
            return F.relu(1 + x.float()).mean()
        return x.float().mean()

    def g(self, x: Tensor) -> Tensor:
        """The generator's loss on the discriminator's score `x` of its fakes."""
        if self.mode in ("lsgan", "nsgan"):
            return self.d_real(x)
        return -x.float().mean()
