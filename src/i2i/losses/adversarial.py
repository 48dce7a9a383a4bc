"""GAN objectives (LSGAN, NSGAN, hinge, WGAN) and the gradient penalties used with them.

`AdversarialLoss` hides the target labels: the discriminator calls `d_real`/`d_fake`, the
generator calls `g` on the discriminator's score of its fakes. A list of predictions (one per
discriminator scale or head) is summed, as the original MUNIT/UNIT multi-scale discriminator does.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from i2i.errors import check_choice
from i2i.nets.batching import in_one_pass

GAN_MODES = ("lsgan", "nsgan", "hinge", "wgan")
Prediction = Tensor | Sequence[Tensor]


def _summed(loss_of_one, prediction: Prediction) -> Tensor:
    if isinstance(prediction, Tensor):
        return loss_of_one(prediction)
    return torch.stack([loss_of_one(p) for p in prediction]).sum()


class AdversarialLoss:
    """The adversarial loss terms of one GAN objective.

    lsgan: mean squared error to 1 (real) / 0 (fake); nsgan: binary cross-entropy with logits;
    hinge: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))) for D and -mean(D(G(z))) for G;
    wgan: -mean(D(x)) + mean(D(G(z))) for D and -mean(D(G(z))) for G.
    """

    def __init__(self, mode: str) -> None:
        check_choice("gan_mode", mode, GAN_MODES)
        self.mode = mode

    def d(self, discriminator: Callable[[Tensor], Prediction], real: Tensor, fake: Tensor) -> Tensor:
        """The discriminator's whole loss: d_real on real images plus d_fake on fakes, detached so
        that no gradient reaches the generator. Both are scored in one pass unless the discriminator
        mixes samples (`i2i.nets.batching`)."""
        real_scores, fake_scores = in_one_pass(discriminator, (real,), (fake.detach(),))
        return self.d_real(real_scores) + self.d_fake(fake_scores)

    def d_real(self, prediction: Prediction) -> Tensor:
        return _summed(self._real, prediction)

    def d_fake(self, prediction: Prediction) -> Tensor:
        return _summed(self._fake, prediction)

    def g(self, prediction: Prediction) -> Tensor:
        return _summed(self._generator, prediction)

    def _real(self, x: Tensor) -> Tensor:
        if self.mode == "lsgan":
            return (x.float() - 1).pow(2).mean()
        if self.mode == "nsgan":
            return F.binary_cross_entropy_with_logits(x.float(), torch.ones_like(x, dtype=torch.float))
        if self.mode == "hinge":
            return F.relu(1 - x.float()).mean()
        return -x.float().mean()

    def _fake(self, x: Tensor) -> Tensor:
        if self.mode == "lsgan":
            return x.float().pow(2).mean()
        if self.mode == "nsgan":
            return F.binary_cross_entropy_with_logits(x.float(), torch.zeros_like(x, dtype=torch.float))
        if self.mode == "hinge":
            return F.relu(1 + x.float()).mean()
        return x.float().mean()

    def _generator(self, x: Tensor) -> Tensor:
        if self.mode in ("lsgan", "nsgan"):
            return self._real(x)
        return -x.float().mean()
