"""PatchNCE, CUT's contrastive loss (Park et al., ECCV 2020, Eq. 2-3; official
`taesungp/contrastive-unpaired-translation:models/patchnce.py`).

Each patch of the translation (the query) must pick the patch of the input at the same position
(its positive key) among the other sampled patches of the same image (the negatives: CUT's default,
`nce_includes_all_negatives_from_minibatch` false). Logits are cosine similarities over a
temperature; the query's own position among the negatives is masked with the official -10.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: the logit the official code puts on each query's own position among the negatives (exp(-10 / T) ~ 0)
MASKED_LOGIT = -10.0


def sample_patch_ids(features: Sequence[Tensor], num_patches: int) -> list[Tensor]:
    """Per feature map (B, C, H, W), `num_patches` distinct flat positions (all of them, in random
    order, when the map has fewer), drawn from torch's global generator on the CPU and shared by every
    image of the batch: the official sampling, whose ids the translation's features reuse."""
    ids = []
    for feature in features:
        positions = feature.shape[2] * feature.shape[3]
        ids.append(torch.randperm(positions)[: min(num_patches, positions)].to(feature.device))
    return ids


def patch_nce_loss(query: Tensor, key: Tensor, batch_size: int, temperature: float) -> Tensor:
    """The mean PatchNCE loss of `query` (B * P, D) against `key` (B * P, D), both image-major and
    L2-normalised: cross-entropy of each query picking its own key among [its key, the P - 1 other
    keys of its image]. Keys carry no gradient; computed in float32 (exact under mixed precision)."""
    query, key = query.float(), key.detach().float()
    positive = (query * key).sum(dim=1, keepdim=True)
    per_image_query = query.view(batch_size, -1, query.shape[1])
    per_image_key = key.view(batch_size, -1, key.shape[1])
    negatives = per_image_query @ per_image_key.transpose(1, 2)  # (B, P, P)
    patches = negatives.shape[1]
    own = torch.eye(patches, dtype=torch.bool, device=query.device)
    negatives = negatives.masked_fill(own, MASKED_LOGIT).flatten(0, 1)
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=query.device))
