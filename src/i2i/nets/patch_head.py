"""CUT's patch-sampling head F (`taesungp/contrastive-unpaired-translation:models/networks.py
PatchSampleF` with `use_mlp`): picks patch positions of a list of feature maps and projects each
picked feature vector with a 2-layer MLP per map, then L2-normalises it."""

from collections.abc import Sequence

from torch import Tensor, nn

from i2i.nets.blocks import MLP

#: the official L2 normalisation divides by the norm plus this, so a zero vector stays finite
NORM_EPS = 1e-7


def l2_normalised(x: Tensor) -> Tensor:
    """Each row of x (N, D) divided by its L2 norm (+ NORM_EPS), as the official `Normalize(2)`."""
    return x / (x.pow(2).sum(1, keepdim=True).pow(0.5) + NORM_EPS)


def pick_patches(feature: Tensor, patch_ids: Tensor) -> Tensor:
    """The feature vectors of `feature` (B, C, H, W) at the flat positions `patch_ids` (P,) of every
    image, as (B * P, C), image-major (the patches of image 0 first)."""
    return feature.permute(0, 2, 3, 1).flatten(1, 2)[:, patch_ids, :].flatten(0, 1)


class PatchProjection(nn.Module):
    """One MLP in_channels -> dim -> dim (ReLU between) per feature map, built from the maps' channel
    counts (`in_channels`), so its weights exist before the first batch (the official head is built
    lazily on the first batch). `forward(features, patch_ids)` returns, per map, the picked patches
    projected and L2-normalised, (B * P, dim)."""

    def __init__(self, *, in_channels: Sequence[int], dim: int) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            MLP(channels, dim, hidden_dim=dim, n_blocks=2, activation="relu", final_activation="none")
            for channels in in_channels
        )

    def forward(self, features: Sequence[Tensor], patch_ids: Sequence[Tensor]) -> list[Tensor]:
        return [
            l2_normalised(mlp(pick_patches(feature, ids)))
            for mlp, feature, ids in zip(self.mlps, features, patch_ids, strict=True)
        ]
