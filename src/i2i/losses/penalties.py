"""Gradient penalties on the discriminator: R1 (Mescheder et al. 2018) and WGAN-GP (Gulrajani et al. 2017).

Both differentiate the discriminator's scores with respect to its input with `create_graph=True`,
so the penalty itself can be back-propagated into the discriminator's weights.
"""

import torch
from torch import Tensor

from i2i.errors import check_choice


def r1_penalty(real_scores: Tensor, real_images: Tensor, score_reduction: str = "sum") -> Tensor:
    """Squared gradient norm of D's scores w.r.t. the real images, summed per image, batch-averaged.

    `real_images` must have `requires_grad=True` before D ran on them. `score_reduction` is how the
    scores are reduced before differentiating: "sum" (TUNIT, StarGAN v2) or "mean" over every output
    element (FUNIT's `calc_grad2` differentiates `d_out.mean()`).
    """
    check_choice("score_reduction", score_reduction, ("sum", "mean"))
    # The mean's gradient is the sum's divided by the count, divided here in float32: under fp16
    # autocast, the gradient of a mean over B x H x W patches could underflow inside the backward.
    (grad,) = torch.autograd.grad(real_scores.float().sum(), real_images, create_graph=True)
    grad = grad.float() if score_reduction == "sum" else grad.float() / real_scores.numel()
    return grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(discriminator_scores, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP: mean over the batch of (||dD(x_hat)/dx_hat||_2 - 1)^2 at random interpolates x_hat.

    `discriminator_scores` maps images to the critic's scores (patch scores are summed per image).
    """
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator_scores(interpolates).float()
    (grad,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()
