"""Self-supervised losses of TUNIT's guiding network: MoCo's contrastive loss with its queue of
negative keys (He et al. 2020) and IIC's mutual information of cluster assignments (Ji et al. 2019).

Faithful to `clovaai/tunit:tools/ops.py` (`calc_contrastive_loss`, `calc_iic_loss`, `queue_data`,
`dequeue_data`). Both are computed in float32, so they stay exact under mixed precision.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the official `calc_iic_loss` floors probabilities at this value so that log(0) never occurs
IIC_EPS = 1e-10


def contrastive_loss(query: Tensor, key: Tensor, negatives: Tensor, temperature: float) -> Tensor:
    """Cross-entropy of picking each query's own key among [its key, every negative], logits q.k / tau.

    query, key (B, D), negatives (N, D); keys and negatives carry no gradient. Not L2-normalised
    (TUNIT's codes are raw linear outputs).
    """
    query, key, negatives = query.float(), key.detach().float(), negatives.detach().float()
    positive = (query * key).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, query @ negatives.t()], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def iic_loss(probs: Tensor, probs_tf: Tensor) -> Tensor:
    """Negative mutual information of the joint cluster distribution of two views, (B, K) softmaxes.

    The joint P = sum_b probs_b probs_tf_b^T is symmetrised and normalised; the loss is
    -sum_ij P_ij (log P_ij - log P_i - log P_j) with every probability floored at IIC_EPS
    (the floored entries pass no gradient, as the official in-place assignment).
    """
    joint = probs.float().unsqueeze(2) * probs_tf.float().unsqueeze(1)
    joint = joint.sum(dim=0)
    joint = (joint + joint.t()) / 2
    joint = joint / joint.sum()
    marginal_i = joint.sum(dim=1, keepdim=True).clamp(min=IIC_EPS)
    marginal_j = joint.sum(dim=0, keepdim=True).clamp(min=IIC_EPS)
    joint = joint.clamp(min=IIC_EPS)
    return -(joint * (joint.log() - marginal_i.log() - marginal_j.log())).sum()


class KeyQueue(nn.Module):
    """MoCo's queue of negative keys: the last `size` keys pushed, oldest first.

    Stored as buffers (a fixed (size, dim) array whose last `count` rows are in use), so checkpoints
    carry it and a resumed run continues exactly.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def negatives(self) -> Tensor:
        """The keys in the queue, (count, dim), oldest first."""
        return self.keys[self.size - int(self.count) :]

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        """Append `keys` (B, dim), dropping the oldest beyond `size`."""
        kept = torch.cat([self.negatives, keys.detach().to(self.keys.dtype)])[-self.size :]
        self.keys[self.size - len(kept) :] = kept
        self.count.fill_(len(kept))
