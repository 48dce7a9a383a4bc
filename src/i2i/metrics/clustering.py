"""Agreement of a clustering with ground-truth labels."""

import torch
from torch import Tensor


def normalized_mutual_information(labels: Tensor, clusters: Tensor) -> float:
    """NMI of two labellings of the same items (B,): I(Y; C) / ((H(Y) + H(C)) / 2), the arithmetic
    normalisation (scikit-learn's default), in [0, 1]; 1 when both labellings are constant.

    Invariant to renaming clusters; 1 exactly when the clusters are the labels up to renaming.
    """
    _, y = labels.flatten().unique(return_inverse=True)
    _, c = clusters.flatten().unique(return_inverse=True)
    joint = torch.zeros(int(y.max()) + 1, int(c.max()) + 1, dtype=torch.float64)
    joint.index_put_((y, c), torch.ones(len(y), dtype=torch.float64), accumulate=True)
    joint /= len(y)
    p_y, p_c = joint.sum(dim=1), joint.sum(dim=0)
    entropy_y, entropy_c = -(p_y * p_y.log()).sum(), -(p_c * p_c.log()).sum()
    if entropy_y + entropy_c == 0:
        return 1.0
    seen = joint > 0
    mutual = (joint[seen] * (joint[seen] / (p_y[:, None] * p_c[None, :])[seen]).log()).sum()
    return (2 * mutual / (entropy_y + entropy_c)).clamp(0, 1).item()
