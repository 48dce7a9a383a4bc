"""Classification losses of conditional discriminators."""

import torch.nn.functional as F
from torch import Tensor


def multi_label_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of (B, K) attribute logits against 0/1 labels, summed over attributes
    and averaged over the batch (StarGAN's and LOMIT's `classification_loss` for CelebA)."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="sum") / logits.size(
        0
    )
