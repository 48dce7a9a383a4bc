"""LOMIT's generator (Cho et al., arXiv 1906.03598): content and style encoders, the co-segmentation
mask network and the Highway AdaIN decoder, wired as the official `model.py` wires them.

E_c(x) is the content code c at a quarter of the image's size. M(c, c_other) is a soft mask of x at
that size, attended by the other image's code. One style encoder E_s, shared by the foreground and
the background (the official heads are built from the same layer objects), reads an image through a
mask up-sampled x4; the foreground and background MLPs turn its codes into [mean | log-variance] of
every content channel, and Highway AdaIN (`nets.adain`) conditions c on both under the mask before
the decoder Dec renders it:
    x_ab = Dec(m_a * AdaIN(c_a, MLP_f(s_f(b))) + (1 - m_a) * AdaIN(c_a, MLP_b(s_b(a))))

Training runs both directions at once on stacked pairs [x_a; x_b] (`stacked`): every network
without batch statistics makes one pass over both, each half's partner is `swap`ped in, and a loss
is summed over the two halves (`both`), as the official code sums its two directions.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.nets.adain import highway_adaptive_instance_norm
from i2i.nets.masks import upsample_mask
from i2i.types import Batch


@dataclass(frozen=True)
class Translation:
    """One generator pass over stacked pairs [x_a; x_b]: codes, masks and styles of the inputs and
    each input translated towards the other's foreground style."""

    content: Tensor
    masks: Tensor
    style_f: Tensor
    style_b: Tensor
    output: Tensor


def stacked(batch: Batch) -> Tensor:
    """The pairs of a batch as one tensor [x_a; x_b]: every network without batch statistics runs
    once over both directions."""
    return torch.cat([batch["A"], batch["B"]])


def swap(x: Tensor) -> Tensor:
    """[x_a; x_b] -> [x_b; x_a]: each row's partner."""
    return x.roll(len(x) // 2, dims=0)


def both(loss: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
    """`loss` of the A rows plus `loss` of the B rows of stacked pairs: the official code sums its
    two directions, each averaged over its own batch."""
    halves = [t.chunk(2) for t in tensors]
    return loss(*(h[0] for h in halves)) + loss(*(h[1] for h in halves))


def mean_and_std(mean_logvar: Tensor) -> Tensor:
    """The MLPs' [mean | log-variance] as AdaIN's [mean | std], std = exp(logvar / 2)."""
    mean, logvar = mean_logvar.chunk(2, dim=1)
    return torch.cat([mean, torch.exp(0.5 * logvar)], dim=1)


class LOMITGenerator(nn.Module):
    """E_c, E_s, M, the foreground and background MLPs and Dec; see the module docstring.

    Args:
        content_encoder, style_encoder: factories of the encoders (Hydra `_partial_`).
        mask, mlp, decoder: factories taking the widths that follow from the encoders: the mask
            network and the decoder work at the content code's width, the MLPs map a style code to
            [mean | log-variance] of every content channel.
        hadain_std: how Highway AdaIN measures the content's spread (`nets.adain.HADAIN_STDS`).
    """

    def __init__(
        self,
        *,
        content_encoder: Callable[[], nn.Module],
        style_encoder: Callable[[], nn.Module],
        mask: Callable[..., nn.Module],
        mlp: Callable[..., nn.Module],
        decoder: Callable[..., nn.Module],
        hadain_std: str,
    ) -> None:
        super().__init__()
        self.hadain_std = hadain_std
        self.E_c = content_encoder()
        channels = self.E_c.out_channels
        self.E_s = style_encoder()
        self.M = mask(channels=channels)
        self.mlp_f = mlp(in_dim=self.E_s.style_dim, out_dim=2 * channels)
        self.mlp_b = mlp(in_dim=self.E_s.style_dim, out_dim=2 * channels)
        self.Dec = decoder(in_channels=channels)

    def masks(self, content: Tensor, other: Tensor) -> Tensor:
        """Masks of stacked pairs; one M call per half, as the official code (M has batch norm)."""
        (content_a, content_b), (other_a, other_b) = content.chunk(2), other.chunk(2)
        return torch.cat([self.M(content_a, other_a), self.M(content_b, other_b)])

    def styles(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(foreground, background) styles of images x under image-resolution masks."""
        style_f, style_b = self.E_s(torch.cat([mask * x, (1 - mask) * x])).chunk(2)
        return style_f, style_b

    def decode(self, content: Tensor, mask: Tensor, style_f: Tensor, style_b: Tensor) -> Tensor:
        """Dec(HAdaIN(content)) with `mask` at the content's resolution."""
        foreground, background = mean_and_std(self.mlp_f(style_f)), mean_and_std(self.mlp_b(style_b))
        mixed = highway_adaptive_instance_norm(content, mask, foreground, background, std=self.hadain_std)
        return self.Dec(mixed)

    def translate_pairs(self, x: Tensor) -> Translation:
        """Each half of the stacked pairs x = [x_a; x_b] translated towards the other half."""
        content = self.E_c(x)
        masks = self.masks(content, swap(content))
        style_f, style_b = self.styles(x, upsample_mask(masks, x))
        output = self.decode(content, masks, swap(style_f), style_b)
        return Translation(content, masks, style_f, style_b, output)

    def translate_with_masks(
        self, x: Tensor, reference: Tensor, input_mask: Tensor | None, reference_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(x translated towards `reference`, input mask, reference mask), the masks (B, 1, H, W) in
        [0, 1] at image size; a given mask replaces the predicted one (an input mask is area-averaged to
        the content resolution for HAdaIN). One reference image serves the whole batch."""
        reference = reference.expand_as(x) if len(reference) == 1 else reference
        content, content_ref = self.E_c(x), self.E_c(reference)
        if input_mask is None:
            mask = self.M(content, content_ref)
            input_mask = upsample_mask(mask, x)
        else:
            input_mask = input_mask.to(x).expand(len(x), 1, *x.shape[-2:])
            mask = F.adaptive_avg_pool2d(input_mask, content.shape[-2:])
        if reference_mask is None:
            reference_mask = upsample_mask(self.M(content_ref, content), reference)
        else:
            reference_mask = reference_mask.to(x).expand(len(x), 1, *x.shape[-2:])
        style_f, style_b = self.E_s(reference_mask * reference), self.E_s((1 - input_mask) * x)
        return self.decode(content, mask, style_f, style_b), input_mask, reference_mask
